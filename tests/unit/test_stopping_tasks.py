"""``cancel_and_wait`` stops a loop whose cancellation Python 3.11's ``wait_for`` dropped."""

import asyncio
import sys

import pytest

from services.tagger.dead_letter_depth import start_whole
from shared.tasks import cancel_and_wait


class Replies:
    """A reader loop as PyMongo and redis-py run one: every reply awaited through wait_for."""

    def __init__(self) -> None:
        self.next: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.read = 0

    async def read_for_ever(self) -> None:
        while True:
            await asyncio.wait_for(self.next, timeout=10)
            self.read += 1
            self.next = asyncio.get_running_loop().create_future()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12's wait_for keeps the cancellation")
async def test_a_cancellation_that_meets_a_reply_is_lost_on_python_3_11() -> None:
    """The premise: one cancel, then the loop reads on."""
    replies = Replies()
    reader = asyncio.create_task(replies.read_for_ever())
    await asyncio.sleep(0)
    replies.next.set_result(1)
    reader.cancel()
    await asyncio.sleep(0.05)

    assert not reader.done()
    assert replies.read == 1
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader


async def test_the_loop_is_stopped_all_the_same() -> None:
    replies = Replies()
    reader = asyncio.create_task(replies.read_for_ever())
    idle = asyncio.create_task(asyncio.sleep(60))
    await asyncio.sleep(0)
    replies.next.set_result(1)

    await asyncio.wait_for(cancel_and_wait([reader, idle], again_every_s=0.05), timeout=5)

    assert reader.cancelled()
    assert idle.cancelled()


async def test_what_a_stopped_task_raised_is_retrieved_not_raised() -> None:
    async def fails() -> None:
        raise RuntimeError("already failed")

    failed = asyncio.create_task(fails())
    await asyncio.sleep(0)

    await cancel_and_wait([failed])

    assert isinstance(failed.exception(), RuntimeError)


class SlowStart:
    """A consumer whose start takes a moment, as a Kafka bootstrap does."""

    def __init__(self) -> None:
        self.started = False

    async def start(self) -> None:
        await asyncio.sleep(0.1)
        self.started = True


async def test_a_consumer_start_is_not_cut_short_by_a_stop() -> None:
    """aiokafka cannot close the connection of a start cancelled halfway; the dead-letter
    depth watcher lets its start end before it stops."""
    consumer = SlowStart()
    watcher = asyncio.create_task(start_whole(consumer, grace_s=5))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)

    watcher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watcher

    assert consumer.started
