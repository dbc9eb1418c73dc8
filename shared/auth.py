"""API keys with scopes, shared by every service's HTTP API.

Keys are configured as SHA-256 hashes (``ORDERTAG_API_KEYS``, JSON), never in clear. A presented
key is hashed and compared with every configured hash in constant time.
"""

import hashlib
import hmac
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field

API_KEY_HEADER = "X-API-Key"
LOCAL_DEV_KEY = "ordertag-local-dev-key"  # the demo prints it; override ORDERTAG_API_KEYS in prod


class Scope(StrEnum):
    INGEST = "ingest"
    READ = "read"
    TAG = "tag"
    ADMIN = "admin"
    ALERTS = "alerts"


class ApiKey(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: set[Scope]
    # the staff role the caller acts as for tag permissions (viewer, agent, manager, admin);
    # None: the highest role its scopes amount to
    role: str | None = Field(default=None, pattern=r"^(viewer|agent|manager|admin)$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def default_api_keys() -> list[ApiKey]:
    return [ApiKey(name="local-dev", sha256=hash_key(LOCAL_DEV_KEY), scopes=set(Scope))]


class UnsafeConfiguration(RuntimeError):
    """A service configured for production with settings that would leave it open."""


class _KeyedSettings(Protocol):
    @property
    def env(self) -> str: ...
    @property
    def api_keys(self) -> list[ApiKey]: ...


def ensure_safe_to_start(settings: _KeyedSettings) -> None:
    """Every service calls this before serving. In production (``ORDERTAG_ENV=production``) the
    public dev key, or no key at all, would let anyone in: refuse to start and say what to set."""
    if settings.env != "production":
        return
    if not settings.api_keys:
        raise UnsafeConfiguration(
            "ORDERTAG_API_KEYS is empty: configure at least one key (name, sha256, scopes)"
        )
    dev_key = hash_key(LOCAL_DEV_KEY)
    public = [key.name for key in settings.api_keys if hmac.compare_digest(key.sha256, dev_key)]
    if public:
        raise UnsafeConfiguration(
            f"ORDERTAG_API_KEYS holds the public local dev key (as {', '.join(public)}): "
            "set keys of your own in production"
        )


def find_key(presented: str, keys: list[ApiKey]) -> ApiKey | None:
    digest = hash_key(presented)
    found = None
    for key in keys:  # no early exit: the time taken does not depend on which key matched
        if hmac.compare_digest(digest, key.sha256):
            found = key
    return found


_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


def require_scope(scope: Scope) -> Callable[..., Coroutine[Any, Any, ApiKey]]:
    """A FastAPI dependency: 401 without a valid key, 403 for a key without ``scope``."""

    async def check(request: Request, presented: Annotated[str | None, Depends(_header)]) -> ApiKey:
        # a signed-in person (the console's session) when no key is sent, if the app has one
        fallback = getattr(request.app.state, "session_principal", None)
        key: ApiKey | None = await fallback(request) if fallback and not presented else None
        if not presented and key is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"missing API key: send it in the {API_KEY_HEADER} header",
            )
        key = key or find_key(presented or "", request.app.state.api_keys)
        if key is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key")
        if scope not in key.scopes and Scope.ADMIN not in key.scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"API key {key.name!r} lacks the {scope.value!r} scope"
            )
        return key

    return check
