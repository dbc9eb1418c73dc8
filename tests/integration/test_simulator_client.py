"""``ordertag simulate``'s sender against a real ingest: a catch-up after an outage larger than
ingest's batch cap is split, never refused whole."""

import pytest

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from services.simulator.cli import BATCH_SIZE, _IngestSender
from shared.auth import LOCAL_DEV_KEY
from tests.factories import order_payload
from tests.integration.servers import served_app

pytestmark = pytest.mark.integration


async def test_a_catch_up_over_the_batch_cap_is_sent_in_several_batches(
    ingest_settings: IngestSettings, run_id: str
) -> None:
    orders = [order_payload(f"{run_id}-{i}") for i in range(ingest_settings.ingest_max_batch + 200)]
    changes = [{"order_no": f"{run_id}-0", "customer_id": "C-1", "status": "shipped"}]
    async with served_app(create_app(ingest_settings), lifespan="on") as url:
        sender = _IngestSender(url, LOCAL_DEV_KEY, retry_for_s=30)
        try:
            await sender.send(orders, changes)
        finally:
            await sender.stop()

    assert len(orders) > BATCH_SIZE * 2
    assert sender.tally.as_json() == {
        "accepted": len(orders) + 1,
        "duplicates": 0,
        "rejected": 0,
        "retried": 0,
        "failed": 0,
    }
