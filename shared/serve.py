"""Starting a service: logging from its settings, then its ASGI app under uvicorn."""

from collections.abc import Callable
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from shared.auth import ensure_safe_to_start
from shared.diagnostics import dump_tasks_on_sigusr1
from shared.gc_tuning import tune_gc
from shared.logging import configure_logging
from shared.settings import Settings

S = TypeVar("S", bound=Settings)


def serve(create_app: Callable[[S], FastAPI], settings: S, host: str, port: int) -> None:
    configure_logging(settings.log_level, json=settings.log_json)
    ensure_safe_to_start(settings)  # every service: no public dev key or keyless production
    dump_tasks_on_sigusr1()  # kill -USR1: where every task waits, for a stalled process
    app = create_app(settings)
    tune_gc()
    # uvicorn's own graceful shutdown on SIGTERM runs the app's lifespan exit: consumers stop
    # and commit what they finished before the process ends.
    # The standard event loop, not uvloop (uvicorn's choice when it is installed): uvloop raises
    # RuntimeError ("the handler is closed") where asyncio raises OSError or ignores a write to
    # a closed transport, and aiokafka handles only the latter, so a broker restart killed its
    # fetch and metadata tasks and the consumer stopped for good (shared/kafka_health.py).
    # Measured on ingest, 3 alternating rounds: the same CPU per order within the noise.
    uvicorn.run(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=20,
        loop="asyncio",
        **proxy_options(settings),
    )


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn believes X-Forwarded-For and X-Forwarded-Proto only from the configured proxies
    (``forwarded_allow_ips``), and from nobody when none is: its own default trusts 127.0.0.1,
    any local process, and reads FORWARDED_ALLOW_IPS, a variable outside the settings."""
    trusted = list(settings.forwarded_allow_ips)
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted}
