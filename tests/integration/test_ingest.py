"""The ingest API on real Kafka and Redis."""

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.settings import IngestSettings
from shared.auth import API_KEY_HEADER, ApiKey, Scope, hash_key
from shared.events import OrderCreated, StatusChanged, order_event_adapter
from shared.models import Order
from tests.factories import order_payload
from tests.integration.conftest import read_topic, running

pytestmark = pytest.mark.integration


async def test_an_accepted_order_reaches_kafka_keyed_by_customer(
    ingest_client: httpx.AsyncClient, ingest_settings: IngestSettings, run_id: str
) -> None:
    answer = await ingest_client.post("/orders", json=order_payload(f"{run_id}-1"))

    assert answer.status_code == 202
    assert answer.json()["status"] == "accepted"
    [record] = await read_topic(ingest_settings, ingest_settings.topics.orders, 1)
    event = order_event_adapter.validate_json(record.value)
    assert isinstance(event, OrderCreated)
    assert str(event.event_id) == answer.json()["event_id"]
    assert event.order == Order.model_validate(order_payload(f"{run_id}-1"))
    assert record.key == b"C-1"
    metrics = (await ingest_client.get("/metrics/")).text
    assert 'ordertag_ingest_accepted_total{kind="created"}' in metrics
    assert "ordertag_ingest_publish_seconds_bucket" in metrics


async def test_a_batch_publishes_the_valid_orders_and_reports_each_invalid_one(
    ingest_client: httpx.AsyncClient, ingest_settings: IngestSettings, run_id: str
) -> None:
    bad_quantity = order_payload(f"{run_id}-bad")
    bad_quantity["lines"][0]["quantity"] = 0
    orders = [order_payload(f"{run_id}-{i}") for i in range(5)] + [bad_quantity, "not an order"]

    answer = await ingest_client.post("/orders/batch", json={"orders": orders})

    body = answer.json()
    assert answer.status_code == 200
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (5, 0, 2)
    invalid = [item for item in body["items"] if item["outcome"] == "invalid"]
    assert invalid[0]["index"] == 5
    assert invalid[0]["order_no"] == f"{run_id}-bad"
    assert invalid[0]["errors"][0]["field"] == "lines.0.quantity"
    assert invalid[1]["index"] == 6
    records = await read_topic(ingest_settings, ingest_settings.topics.orders, 5, extra_wait=1)
    published = {order_event_adapter.validate_json(r.value).order_no for r in records}
    assert published == {f"{run_id}-{i}" for i in range(5)}


async def test_an_identical_resend_is_accepted_once_and_different_content_conflicts(
    ingest_client: httpx.AsyncClient, ingest_settings: IngestSettings, run_id: str
) -> None:
    order = order_payload(f"{run_id}-1")
    first = await ingest_client.post("/orders", json=order)
    again = await ingest_client.post("/orders", json=order)
    changed = await ingest_client.post("/orders", json=order | {"notes": "changed"})
    in_batch = await ingest_client.post("/orders/batch", json={"orders": [order, order]})

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {
        "order_no": f"{run_id}-1",
        "event_id": first.json()["event_id"],
        "status": "already accepted",
    }
    assert changed.status_code == 409
    assert "PUT /orders/" in changed.json()["detail"]
    assert [i["outcome"] for i in in_batch.json()["items"]] == ["duplicate", "duplicate"]
    records = await read_topic(ingest_settings, ingest_settings.topics.orders, 1, extra_wait=1.5)
    assert len(records) == 1


async def test_updates_and_status_changes_go_to_the_same_topic_and_key(
    ingest_client: httpx.AsyncClient, ingest_settings: IngestSettings, run_id: str
) -> None:
    order = order_payload(f"{run_id}-1")
    await ingest_client.post("/orders", json=order)
    updated = await ingest_client.put(f"/orders/{run_id}-1", json=order | {"notes": "gift"})
    shipped = await ingest_client.post(f"/orders/{run_id}-1/status", json={"status": "shipped"})
    unknown = await ingest_client.post("/orders/nope-1/status", json={"status": "shipped"})

    assert (updated.status_code, shipped.status_code, unknown.status_code) == (202, 202, 404)
    assert "customer_id" in unknown.json()["detail"]
    records = await read_topic(ingest_settings, ingest_settings.topics.orders, 3)
    events = [order_event_adapter.validate_json(r.value) for r in records]
    assert [e.event_type.value for e in events] == [
        "order.created",
        "order.updated",
        "order.status_changed",
    ]
    assert isinstance(events[2], StatusChanged)
    assert {r.key for r in records} == {b"C-1"}
    assert len({r.partition for r in records}) == 1


async def test_requests_without_a_valid_key_or_scope_are_refused(
    ingest_settings: IngestSettings, run_id: str
) -> None:
    reader = ApiKey(name="reader", sha256=hash_key("reader-key"), scopes={Scope.READ})
    writer = ApiKey(name="writer", sha256=hash_key("writer-key"), scopes={Scope.INGEST})
    app_settings = ingest_settings.model_copy(update={"api_keys": [reader, writer]})
    from services.ingest.app import create_app

    async with (
        running(create_app(app_settings)) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ingest"
        ) as client,
    ):
        order = order_payload(f"{run_id}-1")
        missing = await client.post("/orders", json=order)
        wrong = await client.post("/orders", json=order, headers={API_KEY_HEADER: "guess"})
        scope = await client.post("/orders", json=order, headers={API_KEY_HEADER: "reader-key"})
        ok = await client.post("/orders", json=order, headers={API_KEY_HEADER: "writer-key"})

    assert (missing.status_code, wrong.status_code, scope.status_code, ok.status_code) == (
        401,
        401,
        403,
        202,
    )
    assert "'ingest' scope" in scope.json()["detail"]


async def test_limits_answer_413_and_422_naming_the_problem(
    ingest_client: httpx.AsyncClient, ingest_settings: IngestSettings, run_id: str
) -> None:
    huge = order_payload(f"{run_id}-1", notes="x" * (9 * 1024 * 1024))
    too_many = {"orders": [order_payload(f"{run_id}-{i}") for i in range(1001)]}

    big_body = await ingest_client.post("/orders", json=huge)
    big_batch = await ingest_client.post("/orders/batch", json=too_many)
    long_notes = await ingest_client.post("/orders", json=order_payload("x", notes="y" * 5000))

    assert big_body.status_code == 413
    assert str(ingest_settings.ingest_max_body_bytes) in big_body.json()["detail"]
    assert big_batch.status_code == 422
    assert "at most 1000 orders" in big_batch.json()["detail"]
    assert long_notes.status_code == 422
    assert long_notes.json()["errors"] == [
        {"field": "notes", "problem": "String should have at most 4000 characters"}
    ]


async def test_a_batch_body_that_is_not_a_list_of_orders_is_refused_naming_the_field(
    ingest_client: httpx.AsyncClient, run_id: str
) -> None:
    send = ingest_client.post
    headers = {"content-type": "application/json"}
    not_json = await send("/orders/batch", content=b'{"orders": [', headers=headers)
    empty = await send("/orders/batch", json={"orders": []})
    no_list = await send("/orders/batch", json={"orders": {"order_no": "x"}})
    stray = await send("/orders/batch", json={"orders": [order_payload(run_id)], "extra": 1})

    assert [a.status_code for a in (not_json, empty, no_list, stray)] == [422] * 4
    assert not_json.json()["errors"][0]["field"] == "body"
    assert "JSON" in not_json.json()["errors"][0]["problem"]
    assert empty.json()["errors"][0] == {
        "field": "orders",
        "problem": "List should have at least 1 item after validation, not 0",
    }
    assert no_list.json()["errors"][0]["field"] == "orders"
    assert stray.json()["errors"][0]["field"] == "extra"


async def test_a_body_that_is_not_json_names_the_body_and_where_it_breaks(
    ingest_client: httpx.AsyncClient,
) -> None:
    headers = {"content-type": "application/json"}
    body = b'{"order_no": "SO-1",\n "lines": }'
    answers = [
        await ingest_client.post("/orders", content=body, headers=headers),
        await ingest_client.put("/orders/SO-1", content=body, headers=headers),
        await ingest_client.post("/orders/batch", content=b'{"orders": [', headers=headers),
    ]

    assert [a.status_code for a in answers] == [422] * 3
    assert {a.json()["detail"] for a in answers} == {"the body is not valid JSON"}
    assert [a.json()["errors"] for a in answers] == [
        [
            {
                "field": "body",
                "problem": "not valid JSON: Expecting value at line 2, column 11 (character 31)",
            }
        ],
    ] * 2 + [
        [
            {
                "field": "body",
                "problem": "not valid JSON: EOF while parsing a list at line 1 column 12",
            }
        ],
    ]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def mutated_orders() -> st.SearchStrategy[Any]:
    """A valid order with one field replaced by arbitrary JSON, or arbitrary JSON outright."""
    fields = list(order_payload())
    return st.one_of(
        JSON_VALUES,
        st.builds(
            lambda f, v: order_payload("FZ-1") | {f: v}, st.sampled_from(fields), JSON_VALUES
        ),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=mutated_orders(), path=st.sampled_from(["/orders", "/orders/batch", "/orders/FZ-1"]))
async def test_no_input_produces_a_server_error(
    ingest_client: httpx.AsyncClient, payload: Any, path: str
) -> None:
    body = {"orders": [payload]} if path.endswith("batch") else payload
    method = "PUT" if path == "/orders/FZ-1" else "POST"

    answer = await ingest_client.request(
        method, path, content=json.dumps(body), headers={"content-type": "application/json"}
    )

    assert answer.status_code < 500, answer.text
