"""A subscriber whose aiokafka fetcher died is restarted (seen in the chaos run: after a broker
restart the tagger's fetcher died with 'the handler is closed' and it never consumed again)."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

from shared.kafka_health import dead_fetcher, keep_kafka_clients_working


@dataclass
class _Fetcher:
    error_future: asyncio.Future[None]


@dataclass
class _Consumer:
    _fetcher: _Fetcher


@dataclass
class _Subscriber:
    consumer: _Consumer
    calls: list[str] = field(default_factory=list)

    async def stop(self) -> None:
        self.calls.append("stop")

    async def start(self) -> None:
        self.calls.append("start")
        self.consumer = _Consumer(_Fetcher(asyncio.get_running_loop().create_future()))


@dataclass
class _Broker:
    subscribers: list[_Subscriber]


def _subscriber(error: BaseException | None) -> _Subscriber:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    if error is not None:
        future.set_exception(error)
    return _Subscriber(_Consumer(_Fetcher(future)))


async def test_a_running_fetcher_is_no_dead_fetcher() -> None:
    broker: Any = _Broker([_subscriber(None)])

    assert dead_fetcher(broker) is None


async def test_a_dead_fetcher_restarts_the_subscribers() -> None:
    died = RuntimeError("the handler is closed")
    subscriber = _subscriber(died)
    broker: Any = _Broker([subscriber])
    assert dead_fetcher(broker) is died

    watchdog = asyncio.create_task(keep_kafka_clients_working(broker, every_s=0.01))
    try:
        for _ in range(200):
            if subscriber.calls:
                break
            await asyncio.sleep(0.01)
    finally:
        watchdog.cancel()

    assert subscriber.calls[:2] == ["stop", "start"]
    assert dead_fetcher(broker) is None
