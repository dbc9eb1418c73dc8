"""A service configured for production refuses to start with keys that would leave it open."""

import pytest

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.auth import (
    LOCAL_DEV_KEY,
    ApiKey,
    Scope,
    UnsafeConfiguration,
    default_api_keys,
    ensure_safe_to_start,
    hash_key,
)
from shared.settings import Settings

OWN_KEY = ApiKey(name="shop-connector", sha256=hash_key("a-long-secret"), scopes={Scope.INGEST})


def test_production_with_the_public_dev_key_refuses_to_start() -> None:
    settings = Settings(env="production", api_keys=default_api_keys())

    with pytest.raises(UnsafeConfiguration, match="public local dev key"):
        ensure_safe_to_start(settings)


def test_production_with_the_dev_key_under_another_name_refuses_to_start() -> None:
    renamed = ApiKey(name="admin", sha256=hash_key(LOCAL_DEV_KEY), scopes={Scope.ADMIN})

    with pytest.raises(UnsafeConfiguration, match="as admin"):
        ensure_safe_to_start(Settings(env="production", api_keys=[OWN_KEY, renamed]))


def test_production_with_no_keys_refuses_to_start() -> None:
    with pytest.raises(UnsafeConfiguration, match="ORDERTAG_API_KEYS is empty"):
        ensure_safe_to_start(Settings(env="production", api_keys=[]))


def test_production_with_keys_of_its_own_starts_and_local_keeps_the_dev_key() -> None:
    ensure_safe_to_start(Settings(env="production", api_keys=[OWN_KEY]))
    ensure_safe_to_start(Settings())


def test_ingest_configured_for_production_with_the_dev_key_is_never_built() -> None:
    with pytest.raises(UnsafeConfiguration):
        create_app(IngestSettings(env="production"))


def test_env_comes_from_ordertag_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERTAG_ENV", "production")

    assert Settings(api_keys=[OWN_KEY]).env == "production"
