"""A console page asked for without a session answers the sign-in page before anything is read
for it: a visitor who is not signed in learns nothing from the store, not even whether an
order or a customer exists, and costs it nothing. After signing in, the page comes back as it
was asked for, its filters too."""

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import services.tagger.bootstrap
from services.tagger.app import create_app
from services.tagger.settings import Role, TaggerSettings
from shared.mongo import make_mongo_client
from shared.settings import Settings
from tests.integration.command_log import CommandLog
from tests.integration.conftest import api_client

pytestmark = pytest.mark.integration

PAGES = [
    "/console/",
    "/console/orders/NO-SUCH-ORDER",
    "/console/customers",
    "/console/customers?sort=not-a-sort",
    "/console/customers?all_tags=vip&all_tags=frequent-buyer&sort=-orders",
    "/console/customers/NO-SUCH-CUSTOMER?tab=orders",
    "/console/tags",
    "/console/reports",
    "/console/rules",
]
# what the tagger reads by itself meanwhile, whoever asks for what: the rule watcher's rounds
BACKGROUND = ("rule_versions", "rule_shadow", "rule_active")


@pytest.fixture
async def logged(
    settings: Settings, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, CommandLog]]:
    """The Tag API and console in-process (no consumer), its MongoDB commands logged."""
    log = CommandLog(settings.mongo_database)

    def listened(config: Settings, **options: Any) -> Any:
        return make_mongo_client(config, **{**options, "event_listeners": [log]})

    monkeypatch.setattr(services.tagger.bootstrap, "make_mongo_client", listened)
    api_only = TaggerSettings(
        **settings.model_dump(),
        tagger_group_id=f"tagger-{run_id}",
        tagger_port=0,
        tagger_roles=frozenset({Role.API}),
    )
    async with api_client(create_app(api_only), key=None) as client:
        yield client, log
    client_of_test = make_mongo_client(settings)
    await client_of_test.drop_database(settings.mongo_database)
    await client_of_test.close()


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_without_a_session_goes_to_sign_in_before_any_read(
    logged: tuple[httpx.AsyncClient, CommandLog], path: str
) -> None:
    client, log = logged
    log.counts.clear()  # what starting the tagger read and wrote

    answer = await client.get(path)

    assert answer.status_code == 303
    sign_in = urlsplit(answer.headers["location"])
    assert sign_in.path == "/console/login"
    assert parse_qs(sign_in.query) == {"next": [path]}  # back to the whole page, filters too
    read = {key: n for key, n in log.counts.items() if key.split()[-1] not in BACKGROUND}
    assert read == {}
