"""Tagger configuration (``ORDERTAG_TAGGER_*`` on top of the shared settings)."""

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from shared.settings import Settings

DEFAULT_RULES_FILE = Path(__file__).parent / "rules" / "default_rules.yaml"


class Role(StrEnum):
    """What one tagger process does; replicas of each role scale on their own."""

    CONSUMER = "consumer"  # order events from Kafka: tag, store, publish
    API = "api"  # the Tag API over HTTP
    JOBS = "jobs"  # bulk tag changes (by filter, rename, merge)


class TaggerSettings(Settings):
    tagger_group_id: str = "tagger"
    tagger_host: str = "127.0.0.1"
    tagger_port: int = 8002
    # ``consumer,api,jobs`` (all, the default for the demo) or any of them; ``--role`` overrides
    tagger_roles: Annotated[frozenset[Role], NoDecode] = frozenset(Role)
    tagger_batch_max_records: int = 500
    tagger_batch_timeout_ms: int = 100
    # A batch is tagged in this many concurrent lanes (split by customer): rule work of one
    # lane overlaps another's MongoDB and Redis round trips.
    tagger_lanes: int = Field(default=4, ge=1, le=64)
    tagger_rules_file: Path = DEFAULT_RULES_FILE
    tagger_max_tags_per_order: int = 20
    # A bulk job's lease: how long a replica that died holds its job before another takes over
    tagger_job_lease_s: float = Field(default=30.0, gt=0)
    tagger_allow_free_tags: bool = False  # manual tags outside the catalog
    # How often the jobs role looks for customers whose tags time alone changed (lapsed)
    tagger_customer_review_s: float = Field(default=60.0, gt=0)
    # How long counts over every order and customer are kept (the Tags page's usage, the Rules
    # page's hits); a rename, merge or rule activation asks for fresh ones
    tagger_counts_max_age_s: float = Field(default=30.0, ge=0)
    # Tag API: request bodies over this are answered 413 (a bulk change of 1,000 orders is ~80 KB)
    tagger_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Seconds a client is told to wait (Retry-After) when MongoDB or Redis is unreachable
    tagger_retry_after_s: int = Field(default=5, ge=1)
    # How long a request waits for MongoDB before answering 503 (the driver's default is 30 s)
    tagger_mongo_timeout_ms: int = Field(default=5000, ge=100)
    # Served without a key; switch off where the API is reachable from outside
    tagger_docs_enabled: bool = True  # /docs and /openapi.json
    tagger_metrics_enabled: bool = True  # /metrics

    @field_validator("tagger_roles", mode="before")
    @classmethod
    def _roles(cls, value: Any) -> Any:
        return parse_roles(value) if isinstance(value, str) else value


def parse_roles(spec: str | list[str]) -> frozenset[Role]:
    """``"consumer,api"`` or ``["consumer", "api"]`` into roles; ``all`` means every role."""
    items = [spec] if isinstance(spec, str) else spec
    names = {part.strip() for item in items for part in item.split(",") if part.strip()}
    if "all" in names:
        return frozenset(Role)
    if not names:
        raise ValueError("name at least one role: consumer, api or jobs")
    try:
        return frozenset(Role(name) for name in names)
    except ValueError:
        raise ValueError(
            f"unknown role in {sorted(names)}: choose from consumer, api, jobs, all"
        ) from None
