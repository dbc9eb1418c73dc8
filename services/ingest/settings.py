"""Ingest configuration (``ORDERTAG_INGEST_*`` on top of the shared settings)."""

from shared.settings import Settings


class IngestSettings(Settings):
    ingest_host: str = "127.0.0.1"
    ingest_port: int = 8001
    ingest_publish_timeout_s: float = 10.0
    ingest_max_batch: int = 1000
    ingest_max_body_bytes: int = 8 * 1024 * 1024
    ingest_idempotency_retention_s: int = 7 * 24 * 3600
    # Requests a minute per API key (0: no limit). Sized for a shop's connector, not a person:
    # a batch every 100 ms plus a status change per order at 40 orders/s fits in, with headroom.
    ingest_rate_per_minute: int = 6000
