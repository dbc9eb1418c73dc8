"""The OIDC sign-in's pure parts and its ID-token checks (no provider needed: tokens made here)."""

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from pydantic import ValidationError

from services.console.oidc import (
    OidcClient,
    OidcConfig,
    OidcRefused,
    ProviderMetadata,
    person_name,
    role_from_claims,
)
from services.console.settings import ConsoleSettings
from services.console.users import Role

ROLES = {"ordertag-admin": Role.ADMIN, "ordertag-agent": Role.AGENT, "crm-read": Role.VIEWER}
ISSUER = "https://sso.example.com"
CONFIG = OidcConfig(
    issuer=ISSUER,
    client_id="console",
    client_secret=None,
    scopes="openid",
    role_claim="groups",
    roles=ROLES,
    name_claims=("preferred_username", "email", "sub"),
)


@pytest.mark.parametrize(
    ("groups", "role"),
    [
        (["staff", "ordertag-agent"], Role.AGENT),
        (["crm-read", "ordertag-admin", "ordertag-agent"], Role.ADMIN),
        ("crm-read", Role.VIEWER),
        (["staff"], None),
        ([], None),
        (None, None),
        (42, None),
    ],
)
def test_the_highest_role_any_group_maps_to(groups: object, role: Role | None) -> None:
    assert role_from_claims({"groups": groups}, "groups", ROLES) == role


def test_the_name_is_the_first_claim_that_is_a_user_name() -> None:
    claims = {"preferred_username": "李 伟", "email": "li.wei@example.com", "sub": "x1"}
    assert person_name(claims, CONFIG.name_claims) == "li.wei@example.com"  # a space: no name
    assert person_name({"sub": "x1"}, CONFIG.name_claims) == "x1"
    assert person_name({}, CONFIG.name_claims) is None


def test_an_issuer_needs_a_client_id() -> None:
    with pytest.raises(ValidationError, match="ORDERTAG_CONSOLE_OIDC_CLIENT_ID"):
        ConsoleSettings(console_oidc_issuer=ISSUER)


def test_outside_local_the_issuer_must_be_https() -> None:
    with pytest.raises(ValidationError, match="not https"):
        ConsoleSettings(
            env="production",
            console_session_secret="x" * 40,
            console_oidc_issuer="http://sso.example.com",
            console_oidc_client_id="console",
        )


def test_no_issuer_means_local_accounts_only() -> None:
    assert ConsoleSettings().oidc is None


class _FakeRedis:  # only the constructor's argument; these tests never start a flow
    pass


def _client_trusting(key: RSAKey) -> OidcClient:
    client = OidcClient(CONFIG, _FakeRedis())  # type: ignore[arg-type]
    client._metadata = ProviderMetadata(
        issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/authorize",
        token_endpoint=f"{ISSUER}/token",
        jwks_uri=f"{ISSUER}/jwks",
    )
    client._fetched_at = time.monotonic()
    client._keys = KeySet([key])
    return client


def _id_token(key: RSAKey, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "console",
        "sub": "x1",
        "iat": now,
        "exp": now + 300,
        "nonce": "n-1",
        "groups": ["ordertag-agent"],
        **overrides,
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


async def test_a_token_signed_by_the_provider_gives_its_claims() -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    claims = await _client_trusting(key)._verified_claims(_id_token(key), "n-1")
    assert claims["groups"] == ["ordertag-agent"]


@pytest.mark.parametrize(
    "tampered",
    [
        {"aud": "another-app"},
        {"iss": "https://evil.example.com"},
        {"exp": int(time.time()) - 3600},
        {"nonce": "n-2"},
    ],
)
async def test_a_token_for_someone_else_or_stale_is_refused(tampered: dict[str, Any]) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with pytest.raises(OidcRefused):
        await _client_trusting(key)._verified_claims(_id_token(key, **tampered), "n-1")


async def test_a_token_signed_by_another_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    trusted = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    forger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    client = _client_trusting(trusted)

    async def provider_keys(refresh: bool = False) -> KeySet:  # a refetch finds the same keys
        return KeySet([trusted])

    monkeypatch.setattr(client, "_key_set", provider_keys)
    with pytest.raises(OidcRefused):
        await client._verified_claims(_id_token(forger), "n-1")
