"""Console configuration (``ORDERTAG_ENV``, ``ORDERTAG_CONSOLE_*``, over the shared settings)."""

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, model_validator

from services.console.oidc import OidcConfig
from services.console.users import Role
from shared.settings import Settings

LOCAL_SESSION_SECRET = "ordertag-local-console-secret"  # noqa: S105  (local only; refused elsewhere)
_HOST_NAME = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
)


def _cookie_domain(value: object) -> object:
    """A host name, lower case, without the leading dot of old cookie syntax; empty is unset (a
    Compose file passes an unset variable as "")."""
    if not isinstance(value, str):
        return value
    domain = value.strip().lstrip(".").lower()
    if not domain:
        return None
    if not _HOST_NAME.fullmatch(domain):
        raise ValueError(
            f"ORDERTAG_CONSOLE_COOKIE_DOMAIN: {value!r} is not a host name (no scheme, port or "
            "path; e.g. ordertag.example.com)"
        )
    if "." not in domain or domain.rsplit(".", 1)[1].isdigit():
        # browsers drop a cookie for a top-level name (com, localhost) or an address: no one
        # could sign in
        raise ValueError(
            f"ORDERTAG_CONSOLE_COOKIE_DOMAIN: {value!r} is a top-level name or an address; "
            "browsers keep no cookie for it (give the parent of both hosts, e.g. "
            "ordertag.example.com)"
        )
    return domain


# The console's cookies (its session, the language) go to this domain and every host under it;
# unset, only to the host that set them. Set it to a parent of the console's and the support
# page's hosts when they differ (deploy/k8s), so one sign-in opens both; on one host (the local
# stack: cookies ignore the port) it is not needed. The console and the notifier read the same
# variable, ORDERTAG_CONSOLE_COOKIE_DOMAIN.
CookieDomain = Annotated[str | None, BeforeValidator(_cookie_domain)]


def under(domain: str, url: str) -> bool:
    """Whether the browser sends a cookie of ``domain`` to ``url`` (its host is the domain or a
    host under it)."""
    host = urlsplit(url).hostname or ""
    return host == domain or host.endswith(f".{domain}")


def outside_cookie_domain(domain: str | None, variable: str, url: str) -> str | None:
    """What is wrong when a page that must get the console's session is not under its domain."""
    if domain is None or under(domain, url):
        return None
    return (
        f"{variable}: {url!r} is not under ORDERTAG_CONSOLE_COOKIE_DOMAIN {domain!r}: the "
        "console's session would not reach it; serve both under that domain or change it"
    )


class ConsoleSettings(Settings):
    # signs the session cookie; a random 32+ character string outside local
    console_session_secret: SecretStr = SecretStr(LOCAL_SESSION_SECRET)
    console_session_hours: float = Field(default=12, gt=0, le=24 * 30)
    # locally the sign-in page says which account to use; created on first start when missing
    console_local_user: str = "admin"
    console_local_password: SecretStr = SecretStr("ordertag-admin")
    # the live alerts page (the notifier's); unset: the notifier on this machine
    notifier_port: int = 8003
    console_alerts_url: str | None = None
    console_cookie_domain: CookieDomain = None
    # sign-in with the company's OpenID Connect provider (unset issuer: local accounts only)
    console_oidc_issuer: str | None = None
    console_oidc_client_id: str | None = None
    console_oidc_client_secret: SecretStr | None = None
    console_oidc_scopes: str = "openid profile email"
    # the claim whose values (a string or a list, e.g. the person's groups) give the role
    console_oidc_role_claim: str = "groups"
    console_oidc_roles: dict[str, Role] = Field(
        default_factory=lambda: {
            "ordertag-admin": Role.ADMIN,
            "ordertag-agent": Role.AGENT,
            "ordertag-viewer": Role.VIEWER,
        }
    )
    # the person's name in the console and in the changes they make: the first claim that is one
    console_oidc_name_claims: list[str] = Field(
        default_factory=lambda: ["preferred_username", "email", "sub"]
    )
    # the button's words ("Sign in with <label>"), e.g. the provider's name
    console_oidc_label: str = "SSO"
    # where the provider sends the browser back; unset: this server's own callback URL
    console_oidc_redirect_url: str | None = None

    @model_validator(mode="after")
    def _secret_outside_local(self) -> "ConsoleSettings":
        secret = self.console_session_secret.get_secret_value()
        if self.env != "local" and (secret == LOCAL_SESSION_SECRET or len(secret) < 32):
            raise ValueError(
                "ORDERTAG_CONSOLE_SESSION_SECRET: set a random secret of 32+ characters "
                f"outside local (ORDERTAG_ENV={self.env})"
            )
        if self.console_oidc_issuer is not None:
            if not self.console_oidc_client_id:
                raise ValueError(
                    "ORDERTAG_CONSOLE_OIDC_CLIENT_ID: set the client id the provider registered "
                    "for the console (ORDERTAG_CONSOLE_OIDC_ISSUER is set)"
                )
            if self.env != "local" and not self.console_oidc_issuer.startswith("https://"):
                raise ValueError(
                    f"ORDERTAG_CONSOLE_OIDC_ISSUER: {self.console_oidc_issuer!r} is not https "
                    f"(ORDERTAG_ENV={self.env}); tokens must not cross the network in clear"
                )
        problem = outside_cookie_domain(
            self.console_cookie_domain, "ORDERTAG_CONSOLE_ALERTS_URL", self.alerts_url
        )
        if problem:
            raise ValueError(problem)
        return self

    @property
    def oidc(self) -> OidcConfig | None:
        """The provider's configuration; None when sign-in is by local accounts only."""
        if self.console_oidc_issuer is None or self.console_oidc_client_id is None:
            return None
        secret = self.console_oidc_client_secret
        return OidcConfig(
            issuer=self.console_oidc_issuer,
            client_id=self.console_oidc_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            scopes=self.console_oidc_scopes,
            role_claim=self.console_oidc_role_claim,
            roles=self.console_oidc_roles,
            name_claims=tuple(self.console_oidc_name_claims),
        )

    @property
    def alerts_url(self) -> str:
        return self.console_alerts_url or f"http://127.0.0.1:{self.notifier_port}/"

    @property
    def local(self) -> bool:
        return self.env == "local"
