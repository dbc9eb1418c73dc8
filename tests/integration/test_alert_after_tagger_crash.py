"""An urgent order's alert when the tagger crashed after storing its changes and before
publishing them: Kafka redelivers the batch, the tagger republishes what it had stored, and the
notifier must end where it would have without the crash (the chaos run's missing alerts: the
replays carried the order as it was *now*, shipped, so no urgent alert was ever raised, and
they went out after the batch's fresh changes, which the notifier then took as older news)."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from services.notifier.settings import NotifierSettings
from services.tagger.figures import CustomerFigures
from services.tagger.rules.book import RuleBook
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.store import OrderStore
from services.tagger.tagging import OrderEventModel, TaggingService
from shared.events import OrderCreated, StatusChanged
from shared.models import OrderStatus
from shared.settings import Settings
from tests.conftest import eventually
from tests.factories import make_order
from tests.integration.test_notifier import notifier, publish_tagged

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


@pytest.fixture
def notifier_settings(settings: Settings, run_id: str) -> NotifierSettings:
    return NotifierSettings(**settings.model_dump(), notifier_group_id=f"notifier-{run_id}")


def routing(tmp_path: Path) -> Path:
    path = tmp_path / "routing.yaml"
    route = {
        "id": "urgent",
        "kind": "urgent",
        "team": "support",
        "when_tags_any": ["urgent"],
        "open_while_status": ["pending", "processed"],
        "severity": "info",
        "channels": [],
    }
    path.write_text(json.dumps({"channels": [], "routes": [route]}))
    return path


def events(run_id: str) -> list[OrderEventModel]:
    """An express order (urgent while not shipped), processed, then shipped."""
    order_no, customer = f"{run_id}-1", f"{run_id}-C"
    order = make_order(
        order_no,
        customer={"id": customer, "name": "李娜", "vip": False},
        shipping={"method": "express", "province": "浙江", "city": "杭州"},
        created_at=START.isoformat(),
    )

    def status(value: OrderStatus, minutes: int) -> StatusChanged:
        at = START + timedelta(minutes=minutes)
        return StatusChanged(order_no=order_no, customer_id=customer, status=value, occurred_at=at)

    return [
        OrderCreated(order=order, occurred_at=START),
        status(OrderStatus.PROCESSED, 10),
        status(OrderStatus.SHIPPED, 20),
    ]


async def alert_history(mongo_db: AsyncDatabase[dict[str, Any]], alert_id: str) -> list[str]:
    document = await mongo_db["alerts"].find_one({"alert_id": alert_id})
    return [] if document is None else [c["change"] for c in document["history"]]


@pytest.mark.parametrize(
    "stored_before_crash",
    [
        pytest.param(3, id="all-stored"),  # every republished change is a replay
        pytest.param(1, id="creation-stored"),  # a replay, then the batch's fresh changes
    ],
)
async def test_the_urgent_alert_is_raised_and_resolved_as_without_the_crash(
    stored_before_crash: int,
    mongo_db: AsyncDatabase[dict[str, Any]],
    redis_client: Redis,
    notifier_settings: NotifierSettings,
    tmp_path: Path,
    run_id: str,
) -> None:
    store = OrderStore(mongo_db)
    await store.ensure_indexes()
    tagging = TaggingService(
        RuleBook(DEFAULT_RULES_FILE), CustomerFigures(redis_client), store, max_tags=20
    )
    batch: Sequence[OrderEventModel] = events(run_id)
    alert_id = f"{run_id}-1:support"

    # the crashed run: the changes are stored, their tagged events never published
    await tagging.tag(batch[:stored_before_crash])
    # Kafka redelivers the batch to the restarted tagger, which publishes what it gives
    republished = (await tagging.tag(batch)).tagged
    async with notifier(notifier_settings, routing(tmp_path)):
        await publish_tagged(notifier_settings, republished)

        async def resolved() -> list[str] | None:
            history = await alert_history(mongo_db, alert_id)
            return history if "resolved" in history else None

        history = await eventually(resolved, within=30)

    assert history == ["reason_added", "raised", "reason_cleared", "resolved"]
    assert [t.facts.status for t in republished] == [
        OrderStatus.PENDING,
        OrderStatus.PROCESSED,
        OrderStatus.SHIPPED,
    ]
