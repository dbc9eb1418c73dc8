"""Configuration from environment variables, with defaults that point at the local stack.

Every variable is prefixed ``ORDERTAG_``; nested groups use ``__`` (``ORDERTAG_TOPICS__ORDERS``).
"""

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.auth import ApiKey, default_api_keys


class Environment(StrEnum):
    """``ORDERTAG_ENV``: ``local`` (the default: the local stack and tests) relaxes what must be
    set in production (keys, session secrets, secure cookies); ``production`` refuses to start
    without them."""

    LOCAL = "local"
    PRODUCTION = "production"


class Topics(BaseModel):
    """Kafka topic names: the one place they are spelled."""

    orders: str = "ordertag.orders"
    tagged: str = "ordertag.orders.tagged"
    dead_letter: str = "ordertag.orders.dead-letter"
    alerts: str = "ordertag.alerts"

    @classmethod
    def prefixed(cls, prefix: str) -> "Topics":
        """Topics of their own (``PREFIX.orders``, ...), for a test or benchmark run."""
        return cls(
            orders=f"{prefix}.orders",
            tagged=f"{prefix}.tagged",
            dead_letter=f"{prefix}.dead-letter",
            alerts=f"{prefix}.alerts",
        )

    @property
    def names(self) -> tuple[str, str, str, str]:
        return self.orders, self.tagged, self.dead_letter, self.alerts


class Settings(BaseSettings):
    """Connections shared by all services."""

    model_config = SettingsConfigDict(
        env_prefix="ORDERTAG_", env_nested_delimiter="__", extra="ignore"
    )

    # "production" makes every service refuse unsafe settings at start (shared.auth)
    env: Environment = Environment.LOCAL
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_partitions: int = 6  # upper bound on consumers per group
    kafka_replication_factor: int = 1  # 3 in production
    # with replication factor 3: an acks=all write is on 2 replicas at least (2 in production)
    kafka_min_insync_replicas: int = 1
    # How the services reach Kafka: PLAINTEXT on the local stack; SASL_SSL with SCRAM in
    # production (deploy/k8s/kafka.yaml), the broker's CA in a mounted file.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    # Static group membership (KIP-345) for the consumer roles: a consumer back under the same
    # id within the session timeout gets its partitions again and the other members keep theirs
    # (no rebalance). On Kubernetes: the consumer StatefulSet's pod name. Unset: dynamic.
    kafka_group_instance_id: str | None = Field(default=None, min_length=1, max_length=249)
    # How long the group waits for a silent member (a crash, a restart) before it rebalances;
    # unset: 45 s for a static member (a pod's restart fits), aiokafka's 10 s for a dynamic one
    kafka_session_timeout_ms: int | None = Field(default=None, ge=6_000, le=300_000)
    mongo_url: str = "mongodb://127.0.0.1:27017"
    mongo_database: str = "ordertag"
    # Write concern of every service's writes (shared/mongo.py): acknowledged once journaled
    # on a majority. The local server ignores write concerns and syncs each write itself.
    mongo_write_concern: int | str = "majority"  # "majority", a number of members, or a tag
    mongo_journal: bool = True
    mongo_write_timeout_ms: int = 10_000
    # No reply on a connection within this time is an outage (retried), not a wait for ever: a
    # request in flight when the server dies or restarts may otherwise never be answered.
    mongo_socket_timeout_ms: int = 30_000
    mongo_connect_timeout_ms: int = 5_000
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: bool = False  # redis_url names one node of a Redis Cluster
    topics: Topics = Field(default_factory=Topics)
    # JSON list of {"name", "sha256", "scopes"}; the default holds the local dev key only
    api_keys: list[ApiKey] = Field(default_factory=default_api_keys)
    api_rate_per_minute: int = 600  # per API key, across all processes
    log_level: str = "INFO"
    log_json: bool = False
    # OpenTelemetry traces over OTLP/HTTP (shared/tracing.py; docs/operations.md, "Traces")
    tracing_enabled: bool = False
    tracing_endpoint: str = "http://127.0.0.1:4318"  # the collector's base; /v1/traces appended
    # share of new traces kept; a trace started by a caller keeps the caller's decision
    tracing_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)

    # The reverse proxies (addresses or networks, comma-separated: "10.244.0.0/16,10.0.0.5")
    # whose X-Forwarded-For and X-Forwarded-Proto a service believes: the client's address (the
    # support page's sign-in limit per address, the access log) and scheme (the OpenID Connect
    # callback's https) as the proxy saw them. Unset: none, so a client cannot name itself;
    # behind the ingress or a TLS proxy, set it to the proxy's network (docs/operations.md).
    forwarded_allow_ips: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _addresses_or_networks(cls, value: object) -> object:
        """Refuse at start what uvicorn would take as a name and never match (``10.0.0.1/8``,
        a typo): a proxy that is not trusted silently makes every client the proxy."""
        if not isinstance(value, str):
            return value
        found = tuple(part.strip() for part in value.split(",") if part.strip())
        for part in found:
            if part == "*":
                raise ValueError(
                    "'*': name the proxies' addresses or networks (0.0.0.0/0 if every peer is one)"
                )
            try:
                ipaddress.ip_network(part)  # an address is a network of one
            except ValueError as error:
                raise ValueError(f"{part!r} is not an IP address or network: {error}") from None
        return found

    @field_validator("mongo_write_concern")
    @classmethod
    def _members_as_number(cls, value: int | str) -> int | str:
        """``ORDERTAG_MONGO_WRITE_CONCERN=1`` means one member, not a tag named "1"."""
        return int(value) if isinstance(value, str) and value.isdigit() else value
