"""The same assertions on AlertStore (MongoDB) and on its in-memory fake, so the fast use-case
tests stand on a fake that behaves like the real thing."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.notifier.routing import alerts_for
from services.notifier.store import AlertStore, DeliveryStatus
from tests.notifier_fakes import InMemoryAlertStore
from tests.unit.test_notifier_pure import tagged
from tests.unit.test_notifier_use_cases import ROUTING

pytestmark = pytest.mark.integration
ALERT = "SO-9:urgent"


@pytest.fixture(params=["memory", "mongodb"])
async def store(
    request: pytest.FixtureRequest, mongo_db: AsyncDatabase[dict[str, Any]]
) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield InMemoryAlertStore()
        return
    real = AlertStore(mongo_db)
    await real.ensure_indexes()
    yield real


async def stored_alert(store: Any) -> None:
    await store.insert_new(alerts_for(tagged(["urgent"]), ROUTING, "https://shop/orders/"))


async def statuses(store: Any) -> dict[str, str]:
    [document] = await store.pending_deliveries() or [await _get(store)]
    return {d["channel"]: d["status"] for d in document["deliveries"]}


async def _get(store: Any) -> dict[str, Any]:
    if isinstance(store, InMemoryAlertStore):
        return store.alerts[ALERT]
    document: dict[str, Any] = await store.get(ALERT)
    return document


async def test_an_alert_is_stored_once(store: Any) -> None:
    pairs = alerts_for(tagged(["urgent"]), ROUTING, "https://shop/orders/")

    first = await store.insert_new(pairs)
    again = await store.insert_new(pairs)

    assert first[0]["alert_id"] == ALERT
    assert again == [None]
    assert [d["alert_id"] for d in await store.unpublished([ALERT])] == [ALERT]
    await store.mark_published([ALERT])
    assert await store.unpublished([ALERT]) == []


async def test_a_delivery_is_claimed_by_one_attempt_only(store: Any) -> None:
    await stored_alert(store)

    first = await store.claim_deliveries([ALERT, "SO-0:none"], "hook", "a1", ALERT)
    second = await store.claim_deliveries([ALERT], "hook", "a2", ALERT)

    assert first == [ALERT]
    assert second == []
    assert await statuses(store) == {"hook": "sending", "robot": "pending"}


async def test_an_outcome_is_stored_only_by_the_attempt_holding_the_claim(store: Any) -> None:
    await stored_alert(store)
    await store.claim_deliveries([ALERT], "hook", "a1", ALERT)

    await store.settle([ALERT], "hook", "someone-else", DeliveryStatus.DELIVERED)
    assert (await _get(store))["deliveries"][0]["status"] == "sending"
    await store.record_failed_attempt([ALERT], "hook", "a1", "HTTP 500")
    await store.settle([ALERT], "hook", "a1", DeliveryStatus.DELIVERED)

    hook = (await _get(store))["deliveries"][0]
    assert (hook["status"], hook["attempts"], hook["last_error"]) == ("delivered", 2, None)


async def test_a_claim_past_its_lease_is_interrupted_and_can_be_taken_over(store: Any) -> None:
    await stored_alert(store)
    await store.claim_deliveries([ALERT], "robot", "dead", "key-1")

    assert await store.interrupted_claims(datetime.now(UTC) - timedelta(minutes=1)) == []
    [claim] = await store.interrupted_claims(datetime.now(UTC) + timedelta(seconds=1))
    taken = await store.claim_deliveries([ALERT], "robot", "new", "key-1", taking_over="dead")
    again = await store.claim_deliveries([ALERT], "robot", "other", "key-1", taking_over="dead")

    assert (claim.channel, claim.attempt_id, claim.idempotency_key) == ("robot", "dead", "key-1")
    assert [a["alert_id"] for a in claim.alerts] == [ALERT]
    assert (taken, again) == ([ALERT], [])


async def test_an_escalation_delivery_is_added_once_and_remembered_as_such(store: Any) -> None:
    await stored_alert(store)

    await store.add_deliveries(ALERT, ["pager"], escalation=True)
    await store.add_deliveries(ALERT, ["pager"], escalation=True)

    pager = [d for d in (await _get(store))["deliveries"] if d["channel"] == "pager"]
    assert [(d["status"], d["escalation"]) for d in pager] == [("pending", True)]
    assert await store.mark_escalated(ALERT) is True
    assert await store.mark_escalated(ALERT) is False
