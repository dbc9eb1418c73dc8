"""The tagger's batch step: the tagged events go out while the batch's customers are evaluated,
and the batch ends (to be committed or redelivered) only once both are done."""

import asyncio
from collections.abc import Iterator
from typing import Any, cast

import pytest
import stamina
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.tagger.consumer import handle_batch
from services.tagger.tagging import BatchOutcome
from shared.events import OrderCreated
from shared.kafka import left_undecoded
from tests.factories import make_order


@pytest.fixture(autouse=True)
def no_retry_waits() -> Iterator[None]:
    stamina.set_testing(True, attempts=1)  # a transient error fails the batch at once
    yield
    stamina.set_testing(False)


def _record(offset: int) -> ConsumerRecord[bytes, bytes]:
    event = OrderCreated(order=make_order(f"SO-{offset}"))
    value = event.model_dump_json().encode()
    return ConsumerRecord(
        topic="orders",
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"C-1",
        value=value,
        checksum=None,
        serialized_key_size=3,
        serialized_value_size=len(value),
        headers=[],
    )


class _Tagging:
    async def tag(self, events: list[Any]) -> BatchOutcome:
        return BatchOutcome()


class _Output:
    """A send that is handed over at once and acknowledged when ``acknowledge`` is set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.handed_over = asyncio.Event()
        self.acknowledge = asyncio.Event()
        self.acknowledged = False
        self._error = error

    async def publish(self, tagged: list[Any], dead: list[Any], lineage: Any = None) -> None:
        self.handed_over.set()
        await self.acknowledge.wait()
        if self._error is not None:
            raise self._error
        self.acknowledged = True


class _Customers:
    """Waits until the tagged events were handed to Kafka, then lets them be acknowledged (or
    fails when told to)."""

    def __init__(self, output: _Output, error: Exception | None = None) -> None:
        self._output = output
        self._error = error

    async def after_orders(self, events: list[Any]) -> None:
        try:
            await asyncio.wait_for(self._output.handed_over.wait(), timeout=5)
        except TimeoutError:
            raise AssertionError("the customers waited for the tagged events") from None
        if self._error is not None:
            raise self._error
        self._output.acknowledge.set()


async def _handle(output: _Output, customers: _Customers, records: int = 2) -> Any:
    return await handle_batch(
        tuple(_record(offset) for offset in range(records)),
        "orders",
        cast(Any, _Tagging()),
        cast(Any, output),
        cast(Any, customers),
    )


async def test_the_tagged_events_go_out_before_the_customers_are_done() -> None:
    output = _Output()
    handled = await _handle(output, _Customers(output))
    assert handled.decoded == 2
    assert output.acknowledged  # the batch waited for the publication too


async def test_a_customer_step_that_fails_fails_the_batch_and_stops_the_send() -> None:
    output = _Output()
    before = asyncio.all_tasks()  # another test's (the loop is shared): not this batch's
    with pytest.raises(ValueError, match="customer rules broke"):
        await _handle(output, _Customers(output, ValueError("customer rules broke")))
    assert output.handed_over.is_set()
    assert not output.acknowledged
    assert not asyncio.all_tasks() - before


async def test_a_refused_publication_fails_the_batch() -> None:
    output = _Output(ConnectionError("broker gone"))
    with pytest.raises(ConnectionError, match="broker gone"):
        await _handle(output, _Customers(output))


async def test_a_cancelled_batch_leaves_no_send_running() -> None:
    output = _Output()
    customers = _Customers(output)
    customers.after_orders = lambda events: asyncio.sleep(3600)  # type: ignore[method-assign]
    before = asyncio.all_tasks()  # another test's (the loop is shared): not this batch's
    batch = asyncio.create_task(_handle(output, customers))
    await asyncio.wait_for(output.handed_over.wait(), timeout=5)
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
    assert not asyncio.all_tasks() - before


@pytest.mark.parametrize("undecoded", [True, False])
async def test_a_subscriber_left_undecoded_parses_nothing_and_gets_every_record(
    undecoded: bool,
) -> None:
    broker = KafkaBroker()
    seen: list[bytes] = []
    decoded: list[Any] = []

    @broker.subscriber("orders", batch=True, decoder=left_undecoded if undecoded else None)
    async def handle(message: KafkaMessage) -> None:
        seen.extend(record.value for record in message.raw_message)
        decoded.append(await message.decode())  # what FastStream made of the bodies

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish_batch(b"not json {", b'{"a": 1}', topic="orders")
    assert seen == [b"not json {", b'{"a": 1}']
    # without it, every body is JSON-parsed first (what the tagger paid ~13 µs an order for)
    assert decoded == ([None] if undecoded else [[b"not json {", {"a": 1}]])
