"""Ingest configuration (``ORDERTAG_INGEST_*`` on top of the shared settings)."""

from shared.settings import Settings


class IngestSettings(Settings):
    ingest_host: str = "127.0.0.1"
    ingest_port: int = 8001
    ingest_publish_timeout_s: float = 10.0
