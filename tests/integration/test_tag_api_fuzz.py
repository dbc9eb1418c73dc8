"""No request makes the Tag API answer 500: hypothesis sends arbitrary query parameters to its
read routes and arbitrary bodies to its change routes, against one tagger on the real stack."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.tagger.settings import TaggerSettings
from tests.conftest import own_topics
from tests.integration.tagged_orders import tag_api

pytestmark = pytest.mark.integration


QUERY_VALUES = st.one_of(
    st.text(max_size=40),
    st.integers().map(str),
    st.sampled_from(
        ["", "-1", "1e9", "2026-11-24T00:00:00Z", "urgent", "2026-13-45", "null", "%00", "😀"]
    ),
)
PARAMETERS = [
    "all_tags",
    "any_tags",
    "none_tags",
    "family",
    "status",
    "customer_id",
    "region",
    "amount_min",
    "amount_max",
    "created_from",
    "created_to",
    "sort",
    "limit",
    "cursor",
    "period",
    "format",
    "tag",
    "days",
    "max_rows",
]


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    params=st.dictionaries(st.sampled_from(PARAMETERS), QUERY_VALUES, max_size=5),
    path=st.sampled_from(
        [
            "/orders",
            "/orders/export.csv",
            "/reports/tags-over-time",
            "/reports/tag-share",
            "/reports/top-customers",
            "/tags/unused",
            "/orders/SO-1",
            "/jobs/x",
        ]
    ),
)
async def test_no_query_produces_a_server_error(
    tag_api_client: httpx.AsyncClient, params: dict[str, str], path: str
) -> None:
    answer = await tag_api_client.get(path, params=params)

    assert answer.status_code < 500, (path, params, answer.text[:300])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.dictionaries(
        st.sampled_from(["add", "remove", "order_nos", "filter", "reason", "confirm_count"]),
        st.one_of(
            st.lists(st.text(max_size=20), max_size=3),
            st.text(),
            st.integers(),
            st.none(),
            st.dictionaries(st.sampled_from(PARAMETERS), QUERY_VALUES),
        ),
        max_size=4,
    ),
    path=st.sampled_from(["/tags/bulk", "/tags/by-filter", "/orders/SO-1/tags"]),
)
async def test_no_change_request_produces_a_server_error(
    tag_api_client: httpx.AsyncClient, body: dict[str, Any], path: str
) -> None:
    answer = await tag_api_client.post(path, json=body)

    assert answer.status_code < 500, (path, body, answer.text[:300])


@pytest.fixture(scope="module")
async def tag_api_client() -> AsyncIterator[httpx.AsyncClient]:
    """One tagger for the fuzz runs (an app start per example would dominate the run)."""
    run = uuid.uuid4().hex[:10]
    settings = TaggerSettings(
        mongo_database=f"test_fuzz_{run}",
        tagger_group_id=f"fuzz-{run}",
        topics=own_topics(run),
        api_rate_per_minute=1_000_000,
    )
    async with tag_api(settings) as client:
        yield client
