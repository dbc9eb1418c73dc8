"""Limits on the Tag API (issue #13 rows 5 and 6): a body over the configured size answers 413,
every free-text field has a length, and a forged cursor answers 422 naming the field."""

import base64
import json
from typing import Any

import pytest

from services.tagger.app import create_app
from services.tagger.settings import TaggerSettings
from tests.integration.conftest import api_client


@pytest.fixture
def tagger_settings(tagger_settings: TaggerSettings) -> TaggerSettings:
    """Rate limits are not what these tests are about: a whole suite's requests share a key."""
    return tagger_settings.model_copy(update={"api_rate_per_minute": 1_000_000})


pytestmark = pytest.mark.integration


def forged_cursor(value: Any, sort: str = "-amount") -> str:
    raw = json.dumps({"s": sort, "v": value, "o": "SO-1"})
    return base64.urlsafe_b64encode(raw.encode()).decode()


async def test_bodies_over_the_limit_and_overlong_fields_are_refused(
    tagger_settings: TaggerSettings,
) -> None:
    settings = tagger_settings.model_copy(update={"tagger_max_body_bytes": 64 * 1024})
    huge = {"order_nos": [f"SO-{i:08d}" for i in range(1000)] * 10, "add": ["vip"]}
    async with api_client(create_app(settings)) as client:
        too_big = await client.post("/tags/bulk", json=huge)
        family = await client.post("/tags", json={"name": "gift", "family": "f" * 100})
        description = await client.post(
            "/tags", json={"name": "gift", "description": "d" * 460_000}
        )
        small_description = await client.post(
            "/tags", json={"name": "gift", "description": "d" * 1000}
        )
        reason = await client.post(
            "/tags/bulk", json={"order_nos": ["SO-1"], "add": ["vip"], "reason": "r" * 301}
        )
        label = await client.get("/orders", params={"region": "r" * 33})
        any_tag = await client.get("/orders", params={"any_tags": "t" * 65})
        order_no = await client.post("/tags/bulk", json={"order_nos": ["o" * 65], "add": ["vip"]})

    assert too_big.status_code == 413
    assert "limit of 65536 bytes" in too_big.json()["detail"]
    assert [a.status_code for a in (family, small_description, reason, label, any_tag)] == [422] * 5
    assert description.status_code == 413  # 460 KB: over the body limit before any field
    assert order_no.status_code == 422
    fields = [a.json()["errors"][0]["field"] for a in (family, reason, label, any_tag, order_no)]
    assert fields == ["family", "reason", "region", "any_tags.0", "order_nos.0"]


@pytest.mark.parametrize(
    ("value", "sort"),
    [(10**23, "-amount"), (float("inf"), "-amount"), (1e23, "amount"), ("x", "-created_at")],
)
async def test_a_forged_cursor_answers_422_naming_the_cursor(
    tagger_settings: TaggerSettings, value: Any, sort: str
) -> None:
    async with api_client(create_app(tagger_settings)) as client:
        answer = await client.get(
            "/orders", params={"sort": sort, "cursor": forged_cursor(value, sort)}
        )

    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "cursor"


async def test_wrong_methods_and_unparsable_bodies_answer_as_documented(
    tagger_settings: TaggerSettings,
) -> None:
    async with api_client(create_app(tagger_settings)) as client:
        options = await client.options("/tags")
        unused = await client.options("/tags/unused")
        garbage = await client.post(
            "/tags", content=b"\xff", headers={"Content-Type": "application/json"}
        )

    assert options.status_code == 405
    assert options.headers["Allow"] == "GET, POST"  # both routes on /tags, not the first only
    assert unused.headers["Allow"] == "GET"  # its own resource, not PATCH /tags/{name}
    assert garbage.status_code == 422
    assert garbage.json()["errors"][0]["field"] == "body"
