"""Notifier configuration (``ORDERTAG_NOTIFIER_*`` on top of the shared settings)."""

from pathlib import Path

from pydantic import BaseModel, Field

from shared.settings import Settings

DEFAULT_ROUTING_FILE = Path(__file__).parent / "default_routing.yaml"
DEFAULT_SESSION_SECRET = "change-me-in-production"  # noqa: S105  (local default, warned about)


class PageUser(BaseModel):
    """A support-page login: the password is stored as a scrypt hash (see ``ordertag``'s docs)."""

    name: str = Field(min_length=1, max_length=64)
    password_scrypt: str = Field(pattern=r"^[0-9a-f]{32}\$[0-9a-f]{128}$")


class NotifierSettings(Settings):
    notifier_group_id: str = "notifier"
    notifier_host: str = "127.0.0.1"
    notifier_port: int = 8003
    notifier_routing_file: Path = DEFAULT_ROUTING_FILE
    notifier_order_url_base: str = "http://127.0.0.1:8002/orders/"
    notifier_page_users: list[PageUser] = Field(default_factory=list)
    notifier_session_secret: str = DEFAULT_SESSION_SECRET  # signs page sessions
    notifier_escalation_check_s: float = 10.0
    notifier_retry_attempts: int = 5
    notifier_retry_base_s: float = 1.0
