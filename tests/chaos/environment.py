"""Where the run finds the stack and the services: the same environment variables as
deploy/local/stack.sh and the services read, with their defaults."""

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from shared.settings import Settings, Topics

ROOT = Path(__file__).resolve().parents[2]


def _port(variable: str, default: int) -> int:
    return int(os.environ.get(variable, default))


@dataclass(frozen=True)
class Environment:
    """Ports, paths and the run's own topics, database and consumer groups."""

    run_id: str
    settings: Settings  # connections and the run's topics and database
    stack_dir: Path
    stack_script: Path
    kafka_port: int
    mongo_port: int
    redis_port: int
    ingest_port: int
    tagger_port: int
    notifier_port: int
    receiver_ports: tuple[int, int]  # desk, risk

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ingest_port}"

    @property
    def run_dir(self) -> Path:
        return self.stack_dir / "chaos" / self.run_id

    @classmethod
    def from_environ(cls, run_id: str | None = None) -> "Environment":
        run_id = run_id or f"chaos{uuid.uuid4().hex[:8]}"
        receiver_base = int(os.environ.get("ORDERTAG_CHAOS_RECEIVER_PORT", "0"))
        receivers = (receiver_base, receiver_base + 1) if receiver_base else (0, 0)
        return cls(
            run_id=run_id,
            settings=Settings(mongo_database=run_id, topics=Topics.prefixed(run_id)),
            stack_dir=Path(os.environ.get("ORDERTAG_STACK_DIR", ROOT / ".local")),
            stack_script=ROOT / "deploy" / "local" / "stack.sh",
            kafka_port=_port("ORDERTAG_KAFKA_PORT", 9092),
            mongo_port=_port("ORDERTAG_MONGO_PORT", 27017),
            redis_port=_port("ORDERTAG_REDIS_PORT", 6379),
            ingest_port=_port("ORDERTAG_INGEST_PORT", 8001),
            tagger_port=_port("ORDERTAG_TAGGER_PORT", 8002),
            notifier_port=_port("ORDERTAG_NOTIFIER_PORT", 8003),
            receiver_ports=receivers,
        )

    def service_env(self, routing_file: Path, log_level: str) -> dict[str, str]:
        """What the three service processes run with: the run's topics, database, consumer
        groups and routing file on top of the caller's environment."""
        topics = self.settings.topics
        return {
            **os.environ,
            "ORDERTAG_MONGO_DATABASE": self.settings.mongo_database,
            "ORDERTAG_TOPICS__ORDERS": topics.orders,
            "ORDERTAG_TOPICS__TAGGED": topics.tagged,
            "ORDERTAG_TOPICS__DEAD_LETTER": topics.dead_letter,
            "ORDERTAG_TOPICS__ALERTS": topics.alerts,
            "ORDERTAG_TAGGER_GROUP_ID": f"tagger-{self.run_id}",
            "ORDERTAG_NOTIFIER_GROUP_ID": f"notifier-{self.run_id}",
            "ORDERTAG_NOTIFIER_ROUTING_FILE": str(routing_file),
            "ORDERTAG_INGEST_PORT": str(self.ingest_port),
            "ORDERTAG_TAGGER_PORT": str(self.tagger_port),
            "ORDERTAG_NOTIFIER_PORT": str(self.notifier_port),
            "ORDERTAG_LOG_LEVEL": log_level,
            "ORDERTAG_CHAOS_WEBHOOK_SECRET": f"chaos-webhook-secret-{self.run_id}",
        }
