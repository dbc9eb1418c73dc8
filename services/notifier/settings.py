"""Notifier configuration (``ORDERTAG_NOTIFIER_*`` on top of the shared settings)."""

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator

from services.console.settings import LOCAL_SESSION_SECRET, CookieDomain, outside_cookie_domain
from shared.settings import Environment, Settings

DEFAULT_ROUTING_FILE = Path(__file__).parent / "default_routing.yaml"
DEFAULT_SESSION_SECRET = "change-me-in-production"  # noqa: S105  (local default, refused elsewhere)


class Role(StrEnum):
    """What one notifier process runs: the Kafka consumer with the channel workers, the support
    page with its API, or both (the default, for the demo)."""

    CONSUMER = "consumer"
    WEB = "web"
    BOTH = "both"

    def runs_consumer(self) -> bool:
        return self in (Role.CONSUMER, Role.BOTH)

    def runs_web(self) -> bool:
        return self in (Role.WEB, Role.BOTH)


class PageUser(BaseModel):
    """A support-page login: the password is stored as a scrypt hash (see ``ordertag``'s docs)."""

    name: str = Field(min_length=1, max_length=64)
    password_scrypt: str = Field(pattern=r"^[0-9a-f]{32}\$[0-9a-f]{128}$")


class NotifierSettings(Settings):
    notifier_role: Role = Role.BOTH
    notifier_group_id: str = "notifier"
    notifier_host: str = "127.0.0.1"
    notifier_port: int = 8003
    notifier_routing_file: Path = DEFAULT_ROUTING_FILE
    # where an alert's link (``order_url``, in webhooks, chat and e-mail) points, the order number
    # appended. Unset: the console's order page, <console_url>/console/orders/<order_no>. Set, it
    # wins over the console's URL: only to send people to another order page (the shop's own)
    notifier_order_url_base: str | None = None
    notifier_page_users: list[PageUser] = Field(default_factory=list)
    notifier_session_secret: str = DEFAULT_SESSION_SECRET  # signs page sessions
    notifier_escalation_check_s: float = 10.0
    notifier_retry_attempts: int = Field(default=5, ge=1)
    notifier_retry_base_s: float = 1.0
    notifier_send_timeout_s: float = Field(default=10.0, gt=0)  # one send's time limit
    # a claim not renewed for this long was interrupted (its process died mid-send) and is
    # taken over; a live process renews its claims every notifier_claim_renew_s, however long
    # its send takes
    notifier_claim_lease_s: float = Field(default=15.0, gt=0)
    notifier_claim_renew_s: float = Field(default=5.0, gt=0)
    notifier_sweep_s: float = Field(default=5.0, gt=0)  # how often unheld deliveries are looked for
    notifier_stop_grace_s: float = 10.0  # sends in flight may finish on a graceful stop
    notifier_api_rate_per_minute: int = Field(default=300, ge=1)  # per key or person, on /api
    notifier_login_rate_per_minute: int = Field(default=10, ge=1)  # per client address
    # the session cookie's Secure flag; unset: on everywhere but local (a page behind HTTPS)
    notifier_cookie_secure: bool | None = None
    # origins besides the page's own allowed to post forms (e.g. behind a proxy that rewrites Host)
    notifier_allowed_origins: list[str] = Field(default_factory=list)
    # /docs and /openapi.json; unset: open in local mode only. /metrics: keep it off the public
    # network (deploy/'s network policy) or turn it off here.
    notifier_expose_docs: bool | None = None
    notifier_expose_metrics: bool = True
    # the staff console (the tagger's origin): its look, its sign-in, its order pages (the page's
    # links and the alerts' order_url). Unset: the tagger on this machine (``ORDERTAG_TAGGER_PORT``)
    tagger_port: int = 8002
    notifier_console_url: str | None = None
    # the console's session cookie is accepted here when signed with this (the console's) secret
    console_session_secret: SecretStr = SecretStr(LOCAL_SESSION_SECRET)
    console_session_hours: float = Field(default=12, gt=0, le=24 * 30)
    # the console's cookie domain (services/console/settings.py): the top bar's sign-out and
    # language switch here change the console's cookies where the console set them
    console_cookie_domain: CookieDomain = None

    @model_validator(mode="after")
    def _console_under_the_cookie_domain(self) -> "NotifierSettings":
        problem = outside_cookie_domain(
            self.console_cookie_domain, "ORDERTAG_NOTIFIER_CONSOLE_URL", self.console_url
        )
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _lease_outlives_missed_renewals(self) -> "NotifierSettings":
        if self.notifier_claim_renew_s * 2 > self.notifier_claim_lease_s:
            raise ValueError(
                f"notifier_claim_renew_s ({self.notifier_claim_renew_s}) must be at most half "
                f"of notifier_claim_lease_s ({self.notifier_claim_lease_s}): a claim must "
                "survive a late renewal, or a live send is taken over and sent twice"
            )
        return self

    @property
    def local(self) -> bool:
        return self.env is Environment.LOCAL

    @property
    def console_url(self) -> str:
        return (self.notifier_console_url or f"http://127.0.0.1:{self.tagger_port}").rstrip("/")

    @property
    def order_url_base(self) -> str:
        return self.notifier_order_url_base or f"{self.console_url}/console/orders/"

    @property
    def console_sessions_trusted(self) -> bool:
        """Outside local, only a secret of the operator's own: the published local one would let
        anyone forge a console session."""
        secret = self.console_session_secret.get_secret_value()
        return self.local or (secret != LOCAL_SESSION_SECRET and len(secret) >= 32)

    @property
    def cookie_secure(self) -> bool:
        return (
            not self.local if self.notifier_cookie_secure is None else self.notifier_cookie_secure
        )

    @property
    def expose_docs(self) -> bool:
        return self.local if self.notifier_expose_docs is None else self.notifier_expose_docs
