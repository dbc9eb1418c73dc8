"""Counting what a store asks of MongoDB, on the wire: a PyMongo command listener."""

from collections import Counter

from pymongo import monitoring


class CommandLog(monitoring.CommandListener):
    """The commands sent to one database, by command and collection ("insert orders")."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database:
            name = event.command_name
            self.counts[f"{name} {event.command.get(name)}"] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def on(self, collection: str) -> dict[str, int]:
        return {key: n for key, n in self.counts.items() if key.endswith(f" {collection}")}
