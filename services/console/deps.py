"""What the console's routes need from the tagger process, and who is asking.

The console runs inside the tagger's HTTP process and uses its clients and use cases
(``app.state.tagger``, built by the tagger's composition root); nothing here opens a connection.
"""

import hmac
from typing import Any

from fastapi import HTTPException, Request, status
from pymongo.asynchronous.database import AsyncDatabase

from services.console.oidc import OidcClient
from services.console.sessions import COOKIE, CSRF_HEADER, Session, SessionStore
from services.console.settings import ConsoleSettings
from services.console.users import UserStore
from services.tagger.http.deps import tagger_of
from shared.auth import ApiKey

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def settings_of(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.console_settings
    return settings


def database_of(request: Request) -> AsyncDatabase[dict[str, Any]]:
    return tagger_of(request).stores.database


def sessions_of(request: Request) -> SessionStore:
    settings = settings_of(request)
    return SessionStore(
        tagger_of(request).stores.redis,
        settings.console_session_secret.get_secret_value(),
        int(settings.console_session_hours * 3600),
    )


def oidc_of(request: Request) -> OidcClient | None:
    """The company's OpenID Connect provider (one client per process: it caches the provider's
    keys); None when sign-in is by local accounts only."""
    client: OidcClient | None = getattr(request.app.state, "console_oidc", None)
    config = settings_of(request).oidc
    if client is None and config is not None:
        client = OidcClient(config, tagger_of(request).stores.redis)
        request.app.state.console_oidc = client
    return client


def users_of(request: Request) -> UserStore:
    return UserStore(database_of(request))


async def current_session(request: Request) -> Session | None:
    cookie = request.cookies.get(COOKIE)
    return await sessions_of(request).read(cookie) if cookie else None


async def session_principal(request: Request) -> ApiKey | None:
    """The signed-in person as an API caller, for the Tag API's scope check to fall back to when
    no API key is sent. A state-changing request must carry the session's CSRF token."""
    session = await current_session(request)
    if session is None:
        return None
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"{CSRF_HEADER}: missing or wrong; reload the console page and try again",
            )
    return session.as_api_key()
