"""Sign-in with the company's OpenID Connect provider: the authorization code flow with PKCE.

The provider says who the person is (a signed ID token, checked here: signature against the
provider's published keys, issuer, audience, expiry, nonce) and which groups they are in; a
configured map turns a claim's values into a console role. The person then gets the same Redis
session as a local account. A flow in progress lives in Redis for ten minutes under its
``state``, bound to the browser that started it by a cookie (no sign-in planted by another site).
"""

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import structlog
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, Field, ValidationError

from services.console.users import Role, User
from shared.redis import AnyRedis

log = structlog.get_logger("console.oidc")

STATE_COOKIE = "ordertag_oidc"
_PREFIX = "console:oidc:"
FLOW_TTL_S = 600
METADATA_TTL_S = 3600
RANK = {Role.VIEWER: 0, Role.AGENT: 1, Role.ADMIN: 2}


class OidcUnavailable(RuntimeError):
    """The provider did not answer (or answered nonsense): try again later."""


class OidcRefused(ValueError):
    """The provider's answer signs nobody in; ``reason`` is the i18n key shown to the person."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class ProviderMetadata(BaseModel):
    """The fields of ``/.well-known/openid-configuration`` the code flow needs."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    id_token_signing_alg_values_supported: list[str] = Field(default_factory=lambda: ["RS256"])


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str
    role_claim: str
    roles: dict[str, Role]
    name_claims: tuple[str, ...]


def role_from_claims(claims: dict[str, Any], claim: str, roles: dict[str, Role]) -> Role | None:
    """The highest role any of the claim's values maps to (a person in both the agents' and the
    admins' group is an admin); None when no value maps to a role."""
    value = claims.get(claim)
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    mapped = [roles[v] for v in values if isinstance(v, str) and v in roles]
    return max(mapped, key=RANK.__getitem__, default=None)


def person_name(claims: dict[str, Any], name_claims: tuple[str, ...]) -> str | None:
    """The first of ``name_claims`` that makes a valid user name (changes record it)."""
    for claim in name_claims:
        value = claims.get(claim)
        if isinstance(value, str):
            try:
                return User(name=value, role=Role.VIEWER).name
            except ValidationError:
                continue
    return None


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class OidcClient:
    """One provider: discovery and keys cached per process, flows kept in Redis."""

    def __init__(self, config: OidcConfig, redis: AnyRedis, timeout_s: float = 10.0) -> None:
        self.config = config
        self._redis = redis
        self._timeout_s = timeout_s
        self._metadata: ProviderMetadata | None = None
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")

    async def _get_json(self, url: str, **kwargs: Any) -> Any:
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as http:
                answer = await http.get(url, **kwargs)
                answer.raise_for_status()
                return answer.json()
        except (httpx.HTTPError, ValueError) as error:
            raise OidcUnavailable(f"{url}: {error!r}") from error

    async def metadata(self) -> ProviderMetadata:
        if self._metadata is None or time.monotonic() - self._fetched_at > METADATA_TTL_S:
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                metadata = ProviderMetadata.model_validate(await self._get_json(url))
            except ValidationError as error:
                raise OidcUnavailable(f"{url}: not an OpenID configuration: {error}") from None
            if metadata.issuer != self.config.issuer:  # OpenID Connect Discovery 1.0, 4.3
                raise OidcUnavailable(
                    f"{url} names issuer {metadata.issuer!r}, configured {self.config.issuer!r}"
                )
            self._metadata, self._keys, self._fetched_at = metadata, None, time.monotonic()
        return self._metadata

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            metadata = await self.metadata()
            try:
                self._keys = KeySet.import_key_set(await self._get_json(metadata.jwks_uri))
            except (JoseError, ValueError, TypeError) as error:
                raise OidcUnavailable(f"{metadata.jwks_uri}: unusable keys: {error}") from None
        return self._keys

    async def start(self, redirect_uri: str, next_path: str) -> tuple[str, str]:
        """Where to send the browser, and the state to bind to it (the cookie's value)."""
        metadata = await self.metadata()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        flow = {"nonce": nonce, "verifier": verifier, "next": next_path, "redirect": redirect_uri}
        await self._redis.set(_PREFIX + state, json.dumps(flow), ex=FLOW_TTL_S)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.config.scopes,
                "state": state,
                "nonce": nonce,
                "code_challenge": _challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in metadata.authorization_endpoint else "?"
        return f"{metadata.authorization_endpoint}{separator}{query}", state

    async def finish(self, code: str, state: str, bound_state: str | None) -> tuple[User, str]:
        """The person the provider vouches for, and where they were going; each flow once."""
        if not bound_state or not secrets.compare_digest(state, bound_state):
            raise OidcRefused("login.oidc.expired", "state does not match this browser's")
        raw = await self._redis.getdel(_PREFIX + state)
        if raw is None:
            raise OidcRefused("login.oidc.expired", "no such sign-in in progress (used or expired)")
        flow = json.loads(raw)
        tokens = await self._exchange(code, flow["verifier"], flow["redirect"])
        claims = await self._verified_claims(tokens.get("id_token"), flow["nonce"])
        if self.config.role_claim not in claims and tokens.get("access_token"):
            claims = {**(await self._userinfo(str(tokens["access_token"]), claims)), **claims}
        role = role_from_claims(claims, self.config.role_claim, self.config.roles)
        name = person_name(claims, self.config.name_claims)
        if name is None:
            raise OidcRefused(
                "login.oidc.no_name", f"none of {list(self.config.name_claims)} is a user name"
            )
        if role is None:
            raise OidcRefused(
                "login.oidc.no_role",
                f"{name}: claim {self.config.role_claim!r} = {claims.get(self.config.role_claim)!r}"
                " maps to no role",
            )
        return User(name=name, role=role), str(flow["next"])

    async def _exchange(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        secret = self.config.client_secret
        auth: httpx.Auth | None = None
        if secret:  # client_secret_basic
            auth = httpx.BasicAuth(self.config.client_id, secret)
        else:  # a public client names itself in the form
            form["client_id"] = self.config.client_id
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as http:
                answer = await http.post(
                    metadata.token_endpoint, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT
                )
        except httpx.HTTPError as error:
            raise OidcUnavailable(f"{metadata.token_endpoint}: {error!r}") from error
        if answer.status_code >= 500:
            raise OidcUnavailable(f"{metadata.token_endpoint}: {answer.status_code}")
        if answer.status_code != 200:  # e.g. invalid_grant: a code used twice or made up
            raise OidcRefused(
                "login.oidc.refused", f"token endpoint: {answer.status_code} {answer.text[:200]}"
            )
        tokens: dict[str, Any] = answer.json()
        return tokens

    async def _verified_claims(self, id_token: object, nonce: str) -> dict[str, Any]:
        if not isinstance(id_token, str):
            raise OidcRefused("login.oidc.refused", "the token answer has no id_token")
        metadata = await self.metadata()
        algorithms = [a for a in metadata.id_token_signing_alg_values_supported if a != "none"]
        try:
            try:
                token = jwt.decode(id_token, await self._key_set(), algorithms=algorithms)
            except (JoseError, ValueError):  # the provider may have rotated its keys
                token = jwt.decode(id_token, await self._key_set(True), algorithms=algorithms)
            jwt.JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "value": self.config.issuer},
                aud={"essential": True, "value": self.config.client_id},
                sub={"essential": True},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (JoseError, ValueError) as error:
            raise OidcRefused("login.oidc.refused", f"id_token: {error!r}") from None
        return dict(token.claims)

    async def _userinfo(self, access_token: str, claims: dict[str, Any]) -> dict[str, Any]:
        """The userinfo endpoint's claims about the same subject (providers that keep groups
        out of the ID token)."""
        metadata = await self.metadata()
        if metadata.userinfo_endpoint is None:
            return {}
        info = await self._get_json(
            metadata.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"}
        )
        if not isinstance(info, dict) or info.get("sub") != claims.get("sub"):
            raise OidcRefused("login.oidc.refused", "userinfo names another subject")
        return info
