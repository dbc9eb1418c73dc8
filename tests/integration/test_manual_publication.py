"""A manual tag change is stored, then Kafka refuses its tagged event: the change's event is still
published, exactly once, by the client's retry (with or without the same operation) or by the
sweep, so the alert it should raise is raised."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.editing import TagEditing, edit_event_id
from services.tagger.manual import ManualChange
from services.tagger.order_record import OrderRecord
from services.tagger.outcomes import EditOutcome, EditResult
from services.tagger.publishing import TaggerOutput
from services.tagger.rules.book import RuleBook
from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.store import OrderStore
from services.tagger.tagging import tagged_event_id
from shared.events import OrderTagged
from shared.kafka import ensure_topics, make_producer
from shared.settings import Settings
from tests.factories import make_order
from tests.integration.conftest import read_topic

pytestmark = pytest.mark.integration

URGENT = ManualChange(add=("urgent",), remove=(), by="agent-7", reason="customer called")


class KafkaDownOnce:
    """The tagger's publisher, refusing its first call as a broker outage would."""

    def __init__(self, output: TaggerOutput) -> None:
        self._output = output
        self.refused = 0

    async def __call__(self, tagged: list[OrderTagged]) -> None:
        if self.refused == 0:
            self.refused += 1
            raise KafkaConnectionError("broker unreachable")
        await self._output.publish(tagged)


@pytest.fixture
async def editing_with_outage(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> AsyncIterator[tuple[TagEditing, str]]:
    await ensure_topics(settings)
    book = RuleBook(DEFAULT_RULES_FILE)
    store = OrderStore(mongo_db)
    await store.ensure_indexes()
    await store.seed_catalog(book.current.tags)
    order = make_order(f"{run_id}-1")
    await store.save([OrderRecord(order, order.status, [], FiguresSnapshot())], [])
    producer = make_producer(settings)
    await producer.start()
    try:
        output = TaggerOutput(producer, settings.topics.tagged, settings.topics.dead_letter)
        editing = TagEditing(store, book, KafkaDownOnce(output), max_tags=20, allow_free_tags=False)
        yield editing, order.order_no
    finally:
        await producer.stop()


async def published_once(settings: Settings, operation: str, order_no: str) -> None:
    records = await read_topic(settings, settings.topics.tagged, 1, within=30, extra_wait=2)
    events = [OrderTagged.model_validate_json(r.value) for r in records]
    assert [(e.event_id, e.order_no) for e in events] == [
        (tagged_event_id(edit_event_id(operation, order_no)), order_no)
    ]
    assert [t.name for t in events[0].tags_added] == ["urgent"]


async def test_a_retry_with_a_new_operation_publishes_the_stored_change(
    editing_with_outage: tuple[TagEditing, str], settings: Settings
) -> None:
    editing, order_no = editing_with_outage
    with pytest.raises(KafkaConnectionError):
        await editing.change([order_no], URGENT, "request:first")

    retry = await editing.change([order_no], URGENT, "request:second")

    assert retry == {order_no: EditResult(EditOutcome.UNCHANGED)}  # the tag is already there
    await published_once(settings, "request:first", order_no)


async def test_resending_the_same_operation_answers_changed_and_publishes_once(
    editing_with_outage: tuple[TagEditing, str], settings: Settings
) -> None:
    editing, order_no = editing_with_outage
    with pytest.raises(KafkaConnectionError):
        await editing.change([order_no], URGENT, "request:same")

    assert await editing.change([order_no], URGENT, "request:same") == {
        order_no: EditResult(EditOutcome.CHANGED)
    }
    assert await editing.change([order_no], URGENT, "request:same") == {
        order_no: EditResult(EditOutcome.CHANGED)
    }
    await published_once(settings, "request:same", order_no)


async def test_the_sweep_publishes_a_change_nobody_retried(
    editing_with_outage: tuple[TagEditing, str], settings: Settings
) -> None:
    editing, order_no = editing_with_outage
    with pytest.raises(KafkaConnectionError):
        await editing.change([order_no], URGENT, "request:abandoned")

    assert await editing.publish_pending() == 1
    assert await editing.publish_pending() == 0
    await published_once(settings, "request:abandoned", order_no)
