"""The tagger's batch step: the tagged events go out while the batch's customers are evaluated,
and the batch ends (to be committed or redelivered) only once both are done."""

import asyncio
from typing import Any, cast

import pytest
from aiokafka.structs import ConsumerRecord

from services.tagger.consumer import handle_batch
from services.tagger.tagging import BatchOutcome
from shared.events import OrderCreated
from tests.factories import make_order


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
    def __init__(self) -> None:
        self.published = asyncio.Event()
        self.finished = False

    async def publish(self, tagged: list[Any], dead: list[Any], lineage: Any = None) -> None:
        self.published.set()
        await asyncio.sleep(0.05)
        self.finished = True


class _Customers:
    """Ends only once the tagged events were handed to Kafka (or fails when told to)."""

    def __init__(self, output: _Output, error: Exception | None = None) -> None:
        self._output = output
        self._error = error

    async def after_orders(self, events: list[Any]) -> None:
        if self._error is not None:
            raise self._error
        await asyncio.wait_for(self._output.published.wait(), timeout=5)


async def test_the_tagged_events_go_out_before_the_customers_are_done() -> None:
    output = _Output()
    handled = await handle_batch(
        (_record(1), _record(2)),
        "orders",
        cast(Any, _Tagging()),
        cast(Any, output),
        cast(Any, _Customers(output)),
    )
    assert handled.decoded == 2
    assert output.finished  # the batch waited for the publication too


async def test_a_customer_step_that_fails_fails_the_batch_and_leaves_no_send_running() -> None:
    output = _Output()
    with pytest.raises(ValueError, match="customer rules broke"):
        await handle_batch(
            (_record(1),),
            "orders",
            cast(Any, _Tagging()),
            cast(Any, output),
            cast(Any, _Customers(output, ValueError("customer rules broke"))),
        )
    running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not running
