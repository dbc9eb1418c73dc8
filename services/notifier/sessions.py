"""Who is looking at the support page: a signed session cookie after logging in with an API key
(scope ``alerts``) or a configured user; the API also takes the key in a header."""

import base64
import hashlib
import hmac
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from services.notifier.settings import PageUser
from shared.auth import API_KEY_HEADER, Scope, find_key

COOKIE = "ordertag_session"
SESSION_S = 12 * 3600
_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


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
    payload = base64.urlsafe_b64encode(f"{name}|{expires}".encode()).decode()
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{mac}"


def read_session(token: str, secret: str) -> str | None:
    try:
        payload, mac = token.rsplit(".", 1)
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, expected):
            return None
        name, expires = base64.urlsafe_b64decode(payload).decode().rsplit("|", 1)
    except (ValueError, UnicodeDecodeError):
        return None
    return name if int(expires) > time.time() else None


async def current_user(request: Request, presented: Annotated[str | None, Depends(_header)]) -> str:
    """The signed-in person (cookie) or API key name (header); 401 otherwise."""
    if presented:
        key = find_key(presented, request.app.state.settings.api_keys)
        if key and (Scope.ALERTS in key.scopes or Scope.ADMIN in key.scopes):
            return f"key:{key.name}"
    token = request.cookies.get(COOKIE)
    name = (
        read_session(token, request.app.state.settings.notifier_session_secret) if token else None
    )
    if name is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in at /login")
    return name


CurrentUser = Annotated[str, Depends(current_user)]
