"""Static membership (KIP-345, ``ORDERTAG_KAFKA_GROUP_INSTANCE_ID``): a tagger consumer that
restarts under the same id gets its own partitions back and the other members of the group keep
theirs, with no rebalance; it then tags the orders that waited for it. On the real local Kafka,
tagger processes as pods of a StatefulSet. What a restart costs with and without it:
``python -m bench.membership_bench`` (figures in docs/operations.md)."""

from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from bench.membership_bench import consumer_group
from services.tagger.settings import TaggerSettings
from shared.events import OrderCreated
from tests.generated import order_stream
from tests.integration.conftest import wait_for_orders
from tests.integration.test_tagger_rebalance import Stream

pytestmark = pytest.mark.integration


async def test_a_restarted_static_member_gets_its_partitions_back_without_a_rebalance(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
    tmp_path: Path,
) -> None:
    async with consumer_group(tagger_settings, tmp_path, 3, static=True) as group:
        restarted, others = group.members[0], group.members[1:]
        held = restarted.holds()
        assigned = [len(member.assignments()) for member in others]

        await group.restart(restarted)  # SIGTERM, then the same instance id again

        # orders on every partition, the restarted member's included, are tagged
        events, _ = order_stream(120, customers=40, seed=31, prefix=run_id)
        await Stream(tagger_settings, events).run()
        created = [e for e in events if isinstance(e, OrderCreated)]
        await wait_for_orders(mongo_db, len(created), len(events), within=240)

    assert restarted.holds() == held
    assert [len(member.assignments()) for member in others] == assigned
    assert all(member.holds() for member in others)
