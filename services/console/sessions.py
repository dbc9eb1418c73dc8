"""Server-side sessions in Redis, named by a signed cookie; signing out deletes the session, so a
copied cookie dies with it. Each session carries the CSRF token its pages send back."""

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from services.console.users import Role, User
from shared.auth import ApiKey, hash_key
from shared.redis import AnyRedis

COOKIE = "ordertag_console"
CSRF_HEADER = "X-CSRF-Token"
_PREFIX = "console:session:"


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    user: str
    role: Role
    csrf: str

    def as_api_key(self) -> ApiKey:
        """The person as the Tag API's scope checks see a caller (name, scopes)."""
        return ApiKey(
            name=self.user,
            sha256=hash_key(f"session:{self.user}"),
            scopes=self.role.scopes,
            role=self.role.value,
        )


class SessionStore:
    def __init__(self, redis: AnyRedis, secret: str, ttl_s: int) -> None:
        self._redis = redis
        self._secret = secret.encode()
        self.ttl_s = ttl_s

    def _sign(self, session_id: str) -> str:
        return hmac.new(self._secret, session_id.encode(), hashlib.sha256).hexdigest()

    async def open(self, user: User) -> tuple[str, Session]:
        """A new session; answers the cookie value and the session."""
        session = Session(
            secrets.token_urlsafe(24), user.name, user.role, secrets.token_urlsafe(24)
        )
        record = {"user": session.user, "role": session.role.value, "csrf": session.csrf}
        await self._redis.set(_PREFIX + session.session_id, json.dumps(record), ex=self.ttl_s)
        return f"{session.session_id}.{self._sign(session.session_id)}", session

    async def read(self, cookie: str) -> Session | None:
        session_id, _, mac = cookie.partition(".")
        if not session_id or not hmac.compare_digest(mac, self._sign(session_id)):
            return None
        raw = await self._redis.get(_PREFIX + session_id)
        if raw is None:
            return None
        record = json.loads(raw)
        return Session(session_id, record["user"], Role(record["role"]), record["csrf"])

    async def revoke(self, cookie: str) -> None:
        session = await self.read(cookie)
        if session is not None:
            await self._redis.delete(_PREFIX + session.session_id)
