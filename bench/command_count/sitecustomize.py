"""Loaded at start-up (``sitecustomize``) by a process the tagger bench starts with this
directory on ``PYTHONPATH`` and ``ORDERTAG_BENCH_COMMANDS=FILE``: every MongoDB command the
process sends, counted by command and collection and written to FILE as JSON (every half second
and at exit), so a run can say what each batch asks of the store."""

import atexit
import json
import os
import threading
import time
from collections import Counter
from typing import Any

from pymongo import monitoring

_PATH = os.environ.get("ORDERTAG_BENCH_COMMANDS")


class _Counter(monitoring.CommandListener):
    def __init__(self, path: str) -> None:
        self.path = path
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        target = event.command.get("collection") if name == "getMore" else event.command.get(name)
        key = f"{name} {target}" if isinstance(target, str) else name
        with self.lock:
            self.counts[key] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def dump(self) -> None:
        with self.lock:
            counts: dict[str, Any] = dict(self.counts)
        with open(self.path + ".tmp", "w") as out:
            json.dump(counts, out)
        os.replace(self.path + ".tmp", self.path)


def _dump_every(listener: _Counter, seconds: float) -> None:
    while True:
        time.sleep(seconds)
        listener.dump()


if _PATH:
    _listener = _Counter(_PATH)
    monitoring.register(_listener)
    atexit.register(_listener.dump)
    threading.Thread(target=_dump_every, args=(_listener, 0.5), daemon=True).start()
