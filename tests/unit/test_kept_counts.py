"""Counts over every order or customer: kept for a while, shared by concurrent requests, fresh
on demand."""

import asyncio

from shared.kept_counts import KeptCount


class Counter:
    """Counts that change on every count, each count taking a moment (as an aggregation does)."""

    def __init__(self) -> None:
        self.counts = 0

    async def orders(self) -> dict[str, int]:
        self.counts += 1
        await asyncio.sleep(0.01)
        return {"urgent": self.counts}


async def test_counts_are_kept_for_their_age_then_counted_again() -> None:
    now = [100.0]
    counter = Counter()
    usage = KeptCount(counter.orders, max_age_s=30, clock=lambda: now[0])

    first = await usage.get()
    now[0] += 29
    assert await usage.get() is first
    now[0] += 2
    again = await usage.get()
    assert (first.value, again.value) == ({"urgent": 1}, {"urgent": 2})
    assert again.counted_at >= first.counted_at


async def test_concurrent_requests_share_one_count() -> None:
    counter = Counter()
    usage = KeptCount(counter.orders, max_age_s=30)

    answers = await asyncio.gather(*(usage.get() for _ in range(10)))

    assert counter.counts == 1
    assert all(answer is answers[0] for answer in answers)


async def test_a_fresh_count_is_one_begun_after_it_was_asked_for() -> None:
    now = [0.0]
    counter = Counter()
    usage = KeptCount(counter.orders, max_age_s=30, clock=lambda: now[0])
    await usage.get()

    now[0] += 1
    fresh = await usage.get(fresh=True)
    assert fresh.value == {"urgent": 2}
    # asked together: both wait for the one count that began after they asked
    now[0] += 1
    together = await asyncio.gather(usage.get(fresh=True), usage.get(fresh=True))
    assert counter.counts == 3
    assert together[0] is together[1]
    assert await usage.get() is together[0]  # and it is kept
