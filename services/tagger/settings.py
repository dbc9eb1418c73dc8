"""Tagger configuration (``ORDERTAG_TAGGER_*`` on top of the shared settings)."""

from pathlib import Path

from pydantic import Field

from shared.settings import Settings

DEFAULT_RULES_FILE = Path(__file__).parent / "rules" / "default_rules.yaml"


class TaggerSettings(Settings):
    tagger_group_id: str = "tagger"
    tagger_host: str = "127.0.0.1"
    tagger_port: int = 8002
    tagger_batch_max_records: int = 500
    tagger_batch_timeout_ms: int = 100
    # A batch is tagged in this many concurrent lanes (split by customer): rule work of one
    # lane overlaps another's MongoDB and Redis round trips.
    tagger_lanes: int = Field(default=4, ge=1, le=64)
    tagger_rules_file: Path = DEFAULT_RULES_FILE
    tagger_max_tags_per_order: int = 20
    tagger_allow_free_tags: bool = False  # manual tags outside the catalog
