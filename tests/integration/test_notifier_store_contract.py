"""The same assertions on AlertStore (MongoDB) and on its in-memory fake, so the fast use-case
tests stand on a fake that behaves like the real thing."""

import asyncio
import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.notifier.store import AlertStore, DeliveryStatus, new_document
from shared.events import AlertStatus, Severity
from tests.conftest import eventually
from tests.notifier_fakes import InMemoryAlertStore
from tests.unit.test_notifier_pure import tagged
from tests.unit.test_notifier_use_cases import group_for

pytestmark = pytest.mark.integration
ALERT = "SO-9:support"


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
    await store.insert([new_document(group_for(tagged(["urgent"])), ["hook", "robot"])])


async def statuses(store: Any) -> dict[str, str]:
    [document] = await store.pending_deliveries() or [await _get(store)]
    return {d["channel"]: d["status"] for d in document["deliveries"]}


async def _get(store: Any) -> dict[str, Any]:
    if isinstance(store, InMemoryAlertStore):
        return store.alerts[ALERT]
    document: dict[str, Any] = await store.get(ALERT)
    return document


async def test_an_alert_is_stored_once_and_changed_only_from_the_version_read(
    store: Any,
) -> None:
    group = group_for(tagged(["urgent"]))
    document = new_document(group, ["hook"])

    assert await store.insert([document]) == set()
    assert await store.insert([document]) == {ALERT}
    raised = group.model_copy(update={"severity": Severity.WARNING, "revision": 2})
    assert await store.update(raised, 1, notice_due=2) is True
    assert await store.update(raised, 1, notice_due=2) is False  # someone changed it since
    [stored] = await store.groups_of(["SO-9"])
    assert (stored["severity"], stored["revision"], stored["version"]) == ("warning", 2, 2)
    assert [d["alert_id"] for d in await store.notices_due()] == [ALERT]
    await store.told(ALERT, 1)  # an older revision told: still due
    assert len(await store.notices_due()) == 1
    await store.told(ALERT, 2)
    assert await store.notices_due() == []
    await store.mark_published({ALERT: 2})
    await store.mark_published({ALERT: 1})  # a late, older publication lowers nothing
    assert (await _get(store))["published_revision"] == 2


async def test_telling_a_revision_sends_a_settled_delivery_again_once(store: Any) -> None:
    await stored_alert(store)
    await store.claim_deliveries([ALERT], "hook", "a1", ALERT)
    await store.settle([ALERT], "hook", "a1", DeliveryStatus.DELIVERED)

    await store.tell(ALERT, "hook", 2)
    await store.tell(ALERT, "hook", 2)  # told again: nothing more
    await store.tell(ALERT, "pager", 2)  # a channel the alert did not have yet

    by_channel = {d["channel"]: d for d in (await _get(store))["deliveries"]}
    assert (by_channel["hook"]["status"], by_channel["hook"]["revision"]) == ("pending", 2)
    assert by_channel["hook"]["told"] is True
    assert (by_channel["pager"]["status"], by_channel["pager"]["revision"]) == ("pending", 2)
    assert (by_channel["robot"]["status"], by_channel["robot"]["revision"]) == ("pending", 1)
    assert len(by_channel) == 3


async def test_telling_from_the_alert_as_read_also_records_the_revision_told(
    store: Any,
) -> None:
    """The delivery as read says which write tells it; the last channel's write also clears
    ``notice_due``. A read that is out of date still tells, and leaves the notice to ``told``."""
    group = group_for(tagged(["urgent"]))
    await store.insert([new_document(group, ["hook", "robot"])])
    await store.claim_deliveries([ALERT], "hook", "a1", ALERT)
    await store.settle([ALERT], "hook", "a1", DeliveryStatus.DELIVERED)
    resolved = group.model_copy(update={"status": AlertStatus.RESOLVED, "revision": 2})
    assert await store.update(resolved, 1, notice_due=2) is True
    as_read = copy.deepcopy(await _get(store))
    await store.claim_deliveries([ALERT], "robot", "b1", ALERT)  # moved on since the read

    robot = await store.tell(ALERT, "robot", 2, as_read=as_read)
    hook = await store.tell(ALERT, "hook", 2, as_read=as_read, clearing_notice=True)
    again = await store.tell(ALERT, "hook", 2, as_read=as_read, clearing_notice=True)

    assert (robot, hook, again) == (False, True, False)
    stored = await _get(store)
    by_channel = {d["channel"]: d for d in stored["deliveries"]}
    assert (by_channel["hook"]["status"], by_channel["hook"]["revision"]) == ("pending", 2)
    assert (by_channel["robot"]["status"], by_channel["robot"]["follow_up"]) == ("sending", 2)
    assert stored["notice_due"] is None


async def test_a_change_is_stored_and_told_in_one_write_only_while_as_read(store: Any) -> None:
    group = group_for(tagged(["urgent"]))
    await store.insert([new_document(group, ["hook", "robot"])])
    for channel in ("hook", "robot"):
        await store.claim_deliveries([ALERT], channel, f"{channel}-1", ALERT)
    await store.settle([ALERT], "hook", "hook-1", DeliveryStatus.DELIVERED)
    as_read = copy.deepcopy(await _get(store))
    await store.settle([ALERT], "robot", "robot-1", DeliveryStatus.DELIVERED)  # moved on
    rise = group.model_copy(update={"severity": Severity.WARNING, "revision": 2})

    moved = await store.update_and_tell(rise, 1, ["hook", "robot"], as_read)
    as_read = copy.deepcopy(await _get(store))
    stale = await store.update_and_tell(rise, 0, ["hook", "robot"], as_read)
    new_channel = await store.update_and_tell(rise, 1, ["hook", "pager"], as_read)
    unchanged = copy.deepcopy(await _get(store))
    both = await store.update_and_tell(rise, 1, ["hook", "robot"], as_read)

    assert (moved, stale, new_channel, both) == (False, False, False, True)
    assert (unchanged["version"], unchanged["severity"]) == (1, "critical")
    stored = await _get(store)
    assert (stored["version"], stored["severity"], stored["notice_due"]) == (2, "warning", None)
    by_channel = {d["channel"]: (d["status"], d["revision"]) for d in stored["deliveries"]}
    assert by_channel == {"hook": ("pending", 2), "robot": ("pending", 2)}


async def test_a_revision_told_mid_send_follows_once_the_send_settles(store: Any) -> None:
    await stored_alert(store)
    await store.claim_deliveries([ALERT], "hook", "a1", ALERT)

    await store.tell(ALERT, "hook", 2)
    assert await store.follow_ups() == []  # still sending: nothing to do yet
    await store.settle([ALERT], "hook", "a1", DeliveryStatus.DELIVERED)
    first = await store.follow_ups()
    again = await store.follow_ups()

    hook = next(d for d in (await _get(store))["deliveries"] if d["channel"] == "hook")
    assert (first, again) == ([(ALERT, "hook", 2)], [])
    assert (hook["status"], hook["revision"]) == ("pending", 2)


async def test_a_delivery_is_claimed_by_one_attempt_only(store: Any) -> None:
    await stored_alert(store)

    first = await store.claim_deliveries([ALERT, "SO-0:none"], "hook", "a1", ALERT)
    second = await store.claim_deliveries([ALERT], "hook", "a2", ALERT)

    assert first == [ALERT]
    assert second == []
    assert await statuses(store) == {"hook": "sending", "robot": "pending"}


async def test_a_claim_tried_again_after_its_reply_was_lost_is_still_the_attempts(
    store: Any,
) -> None:
    """MongoDB applied the claim and went down before answering: the worker tries the same
    claim again and must get the delivery, not leave it ``sending`` until a lease runs out."""
    await stored_alert(store)
    await store.claim_deliveries([ALERT], "hook", "a1", ALERT)  # the reply that was lost

    again = await store.claim_deliveries([ALERT, "SO-0:none"], "hook", "a1", ALERT)
    other = await store.claim_deliveries([ALERT], "hook", "a2", ALERT)

    assert (again, other) == ([ALERT], [])
    await store.settle([ALERT], "hook", "a1", DeliveryStatus.DELIVERED)
    assert await statuses(store) == {"hook": "delivered", "robot": "pending"}


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


async def test_only_the_attempt_holding_a_claim_renews_its_lease(store: Any) -> None:
    await stored_alert(store)
    await store.claim_deliveries([ALERT], "hook", "a1", ALERT)
    await asyncio.sleep(0.05)
    await store.claim_deliveries([ALERT], "robot", "b1", ALERT)
    claimed_at = {d["channel"]: d["claimed_at"] for d in (await _get(store))["deliveries"]}
    # after both claims (the second can come well after the first on a loaded machine), so
    # only a renewal moves a claim past it; MongoDB keeps milliseconds
    later = max(claimed_at.values()) + timedelta(milliseconds=20)

    async def clock_passed() -> bool:
        await asyncio.sleep(0.005)
        return datetime.now(UTC) > later

    await eventually(clock_passed, within=5)
    others = await store.renew_claims([ALERT], "hook", ["someone-else"])
    renewed = await store.renew_claims([ALERT, "SO-0:none"], "hook", ["a1", "a0"])

    [interrupted] = await store.interrupted_claims(later)
    assert (others, renewed) == (0, 1)
    assert (interrupted.channel, interrupted.attempt_id) == ("robot", "b1")
    await store.settle([ALERT], "hook", "a1", DeliveryStatus.DELIVERED)
    assert await store.renew_claims([ALERT], "hook", ["a1"]) == 0  # settled: nothing held


async def test_an_escalation_delivery_is_added_once_and_remembered_as_such(store: Any) -> None:
    await stored_alert(store)

    await store.add_deliveries(ALERT, ["pager"], escalation=True)
    await store.add_deliveries(ALERT, ["pager"], escalation=True)

    pager = [d for d in (await _get(store))["deliveries"] if d["channel"] == "pager"]
    assert [(d["status"], d["escalation"]) for d in pager] == [("pending", True)]
    assert await store.mark_escalated(ALERT) is True
    assert await store.mark_escalated(ALERT) is False


async def test_an_acknowledgement_is_never_overwritten_by_a_consumer_that_read_before_it(
    store: Any,
) -> None:
    group = group_for(tagged(["urgent"]))
    await store.insert([new_document(group, [])])

    acknowledged = await store.acknowledge(ALERT, "ana")
    stale = await store.update(group.model_copy(update={"revision": 2}), 1, notice_due=None)

    assert acknowledged is not None
    assert acknowledged["status"] == "acknowledged"
    assert stale is False  # the consumer re-reads and keeps the acknowledgement
    resolved = group.model_copy(update={"status": AlertStatus.RESOLVED})
    assert await store.update(resolved, acknowledged["version"], notice_due=None) is True
    again = await store.acknowledge(ALERT, "bo")
    assert again is not None
    assert (again["status"], again["acknowledged_by"]) == ("resolved", "bo")


async def test_a_claim_leaves_out_an_alert_resolved_before_the_channel_heard_of_it(
    store: Any,
) -> None:
    """The robot was told of the alert, the hook never: once it resolves, the robot's delivery
    is claimed to tell the resolution and the hook's is settled ``skipped``, unclaimed."""
    group = group_for(tagged(["urgent"]))
    await store.insert([new_document(group, ["hook", "robot"])])
    await store.claim_deliveries([ALERT], "robot", "r1", ALERT)
    await store.settle([ALERT], "robot", "r1", DeliveryStatus.DELIVERED)
    resolved = group.model_copy(update={"status": AlertStatus.RESOLVED, "revision": 2})
    assert await store.update(resolved, 1, notice_due=2) is True
    for channel in ("hook", "robot"):
        await store.tell(ALERT, channel, 2)

    hook = await store.claim_deliveries([ALERT], "hook", "h2", ALERT, unless_resolved_untold=True)
    robot = await store.claim_deliveries([ALERT], "robot", "r2", ALERT, unless_resolved_untold=True)
    skipped = await store.skip_resolved_untold([ALERT], "hook")
    again = await store.skip_resolved_untold([ALERT, "SO-0:none"], "hook")

    assert (hook, robot, skipped, again) == ([], [ALERT], 1, 0)
    assert await statuses(store) == {"hook": "skipped", "robot": "sending"}
    await store.settle([ALERT], "robot", "r2", DeliveryStatus.DELIVERED)
    assert await store.skip_resolved_untold([ALERT], "robot") == 0  # told: never skipped


async def test_an_interrupted_claim_of_an_alert_resolved_untold_is_skipped_not_taken_over(
    store: Any,
) -> None:
    group = group_for(tagged(["urgent"]))
    await store.insert([new_document(group, ["hook"])])
    await store.claim_deliveries([ALERT], "hook", "dead", ALERT)
    resolved = group.model_copy(update={"status": AlertStatus.RESOLVED, "revision": 2})
    assert await store.update(resolved, 1, notice_due=2) is True

    taken = await store.claim_deliveries(
        [ALERT], "hook", "new", ALERT, taking_over="dead", unless_resolved_untold=True
    )
    pending_only = await store.skip_resolved_untold([ALERT], "hook")
    skipped = await store.skip_resolved_untold([ALERT], "hook", taking_over="dead")

    assert (taken, pending_only, skipped) == ([], 0, 1)
    assert await statuses(store) == {"hook": "skipped"}
