"""Who is looking at the support page: the staff console's session (one sign-in for the console
and its alerts page), or a signed session cookie after logging in here with an API key (scope
``alerts``) or a configured user; the API also takes the key in a header.

A session carries a random id; logging out revokes it (stored in MongoDB until it would have
expired), so a copied cookie stops working at logout, not 12 hours later.
"""

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader
from pymongo.asynchronous.collection import AsyncCollection

from services.console.sessions import COOKIE as CONSOLE_COOKIE
from services.console.sessions import CSRF_HEADER, SessionStore
from services.console.sessions import Session as ConsoleSession
from services.notifier.settings import PageUser
from shared.auth import API_KEY_HEADER, Scope, find_key

COOKIE = "ordertag_session"
SESSION_S = 12 * 3600
_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


@dataclass(frozen=True, slots=True)
class Session:
    name: str
    session_id: str
    expires: int


def hash_password(password: str, salt: bytes) -> str:
    """``salt$scrypt`` in hex: what ``ORDERTAG_NOTIFIER_PAGE_USERS`` holds, never the password."""
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=64)
    return f"{salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    salt, _ = stored.split("$", 1)
    return hmac.compare_digest(hash_password(password, bytes.fromhex(salt)), stored)


def find_user(name: str, password: str, users: list[PageUser]) -> PageUser | None:
    user = next((u for u in users if hmac.compare_digest(u.name, name)), None)
    return user if user and check_password(password, user.password_scrypt) else None


def make_session(name: str, secret: str, now: float | None = None) -> str:
    expires = int((now or time.time()) + SESSION_S)
    session_id = secrets.token_urlsafe(16)
    payload = base64.urlsafe_b64encode(f"{name}|{expires}|{session_id}".encode()).decode()
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{mac}"


def read_session(token: str, secret: str) -> Session | None:
    """The session a cookie holds, if it is ours (signature) and not expired."""
    try:
        payload, mac = token.rsplit(".", 1)
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, expected):
            return None
        name, expires, session_id = base64.urlsafe_b64decode(payload).decode().rsplit("|", 2)
        session = Session(name, session_id, int(expires))
    except (ValueError, UnicodeDecodeError):
        return None
    return session if session.expires > time.time() else None


class RevokedSessions:
    """Sessions ended by logout, kept until they would have expired."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._collection = collection

    async def ensure_indexes(self) -> None:
        await self._collection.create_index("expires_at", expireAfterSeconds=0)

    async def revoke(self, session: Session) -> None:
        await self._collection.update_one(
            {"_id": session.session_id},
            {"$set": {"expires_at": datetime.fromtimestamp(session.expires, UTC)}},
            upsert=True,
        )

    async def is_revoked(self, session: Session) -> bool:
        return await self._collection.find_one({"_id": session.session_id}) is not None


async def session_of(request: Request) -> Session | None:
    """The cookie's session when it is valid and not revoked."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    session = read_session(token, request.app.state.settings.notifier_session_secret)
    if session is None or await request.app.state.notifier.revoked.is_revoked(session):
        return None
    return session


def console_sessions(request: Request) -> SessionStore:
    """The console's session store over the notifier's Redis (the console writes it)."""
    settings = request.app.state.settings
    return SessionStore(
        request.app.state.notifier.redis,
        settings.console_session_secret.get_secret_value(),
        int(settings.console_session_hours * 3600),
    )


async def console_session_of(request: Request) -> ConsoleSession | None:
    """The person signed in to the console, when their role may see alerts (agent, admin)."""
    cookie = request.cookies.get(CONSOLE_COOKIE)
    if not cookie or not request.app.state.settings.console_sessions_trusted:
        return None
    session = await console_sessions(request).read(cookie)
    if session is None or not session.role.scopes & {Scope.ALERTS, Scope.ADMIN}:
        return None
    return session


async def current_user(request: Request, presented: Annotated[str | None, Depends(_header)]) -> str:
    """The signed-in person (cookie) or API key name (header), within its request limit; 401
    otherwise, 429 over the limit."""
    name = None
    if presented:
        key = find_key(presented, request.app.state.settings.api_keys)
        if key and (Scope.ALERTS in key.scopes or Scope.ADMIN in key.scopes):
            name = f"key:{key.name}"
    if name is None:
        session = await session_of(request)
        name = session.name if session else None
    if name is None:
        person = await console_session_of(request)
        if person is not None and request.method not in ("GET", "HEAD", "OPTIONS"):
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), person.csrf.encode()):
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"{CSRF_HEADER}: missing or wrong; reload the alerts page and try again",
                )
        name = person.user if person else None
    if name is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in at /login")
    limit = request.app.state.notifier.api_limit
    await limit.check(name, f"over {limit.per_minute} requests a minute")
    return name


CurrentUser = Annotated[str, Depends(current_user)]
