"""A status change naming another customer than the stored order's is refused: dead-lettered
with the reason, the order and both customers' figures untouched (issue #13, row 10)."""

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from services.tagger.figures import CustomerFigures
from services.tagger.settings import TaggerSettings
from shared.events import OrderCreated, StatusChanged
from shared.models import OrderStatus
from shared.stored_order import applied_event_ids
from tests.factories import make_order
from tests.integration.conftest import publish_events, read_topic, wait_for_orders

pytestmark = pytest.mark.integration


async def test_a_status_change_naming_another_customer_is_dead_lettered_not_applied(
    tagger: Any,
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    redis_client: Redis,
    run_id: str,
) -> None:
    owner, other = f"{run_id}-owner", f"{run_id}-other"
    order = make_order(f"{run_id}-1", customer={"id": owner, "name": "客户"})
    forged = StatusChanged(order_no=order.order_no, customer_id=other, status=OrderStatus.CANCELLED)
    genuine = StatusChanged(order_no=order.order_no, customer_id=owner, status=OrderStatus.SHIPPED)

    async with tagger():
        created = OrderCreated(order=order)
        await publish_events(tagger_settings, [created])
        await wait_for_orders(mongo_db, 1, 1)
        await publish_events(tagger_settings, [forged, genuine])
        stored = await wait_for_orders(mongo_db, 1, 2)
        dead = await read_topic(tagger_settings, tagger_settings.topics.dead_letter, 1)

    assert [StatusChanged.model_validate_json(r.value).event_id for r in dead] == [forged.event_id]
    error = dict(dead[0].headers)["x-error"].decode()
    assert f"names customer {other}" in error
    assert f"customer {owner}'s" in error
    document = stored[order.order_no]
    assert (document["status"], document.get("contribution_reversed")) == ("shipped", None)
    assert applied_event_ids(document) == [str(created.event_id), str(genuine.event_id)]
    figures = CustomerFigures(redis_client)
    owner_totals = await figures.totals(owner)
    assert (owner_totals.order_count, owner_totals.lifetime_spend) == (1, order.pricing.total)
    assert (await figures.totals(other)).order_count == 0
