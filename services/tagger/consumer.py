"""The consumer role: the FastStream subscriber on order events. Decode, call the tagging use
case, publish; nothing else."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import stamina
import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pymongo.errors import AutoReconnect, ConnectionFailure

from services.tagger import metrics
from services.tagger.customers.tagging import CustomerTagging
from services.tagger.dead_letters import (
    DeadLetter,
    Record,
    decode_records,
    unknown_order_letters,
)
from services.tagger.publishing import Lineage, TaggerOutput
from services.tagger.rule_changes import ShadowRules
from services.tagger.settings import TaggerSettings
from services.tagger.tagging import TaggingService
from shared.errors import REDIS_OUTAGES
from shared.gc_tuning import cycles_collected_after
from shared.kafka import group_membership, left_undecoded, make_broker
from shared.metrics import observe_end_to_end, observe_lag
from shared.tasks import cancel_and_wait

ATTEMPT_TIMEOUT_S = 45.0  # well above a batch's time on a loaded machine
RETRY_BUDGET_S = 60.0  # a batch's retries of transient errors, all its steps together
T = TypeVar("T")

log = structlog.get_logger("tagger")

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    AutoReconnect,
    ConnectionFailure,
    *REDIS_OUTAGES,
    TimeoutError,
    ConnectionError,
)


def build_broker(
    settings: TaggerSettings,
    tagging: TaggingService,
    output: TaggerOutput,
    shadow: ShadowRules | None = None,
    customers: CustomerTagging | None = None,
) -> KafkaBroker:
    broker = make_broker(settings)
    membership = group_membership(settings)

    # A batch is the unit of work and of commit: offsets move only after every effect of the
    # batch is stored and published; if anything raises, NACK_ON_ERROR seeks back to the start
    # of the batch and it is redelivered (effects are idempotent).
    @broker.subscriber(
        settings.topics.orders,
        group_id=settings.tagger_group_id,
        batch=True,
        max_records=settings.tagger_batch_max_records,
        batch_timeout_ms=settings.tagger_batch_timeout_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=left_undecoded,
        group_instance_id=membership.instance_id,  # static membership when set
        session_timeout_ms=membership.session_timeout_ms,
    )
    async def on_order_events(message: KafkaMessage) -> None:
        with metrics.BATCH_SECONDS.time():
            handled = await handle_batch(
                message.raw_message, settings.topics.orders, tagging, output, customers
            )
        _observe(message, handled.decoded, handled.dead)
        if shadow is not None:
            await _shadow(shadow, handled.tagged_orders)

    return broker


@dataclass(frozen=True, slots=True)
class HandledBatch:
    tagged_orders: list[str]  # order numbers (plain strings: nothing for the collector)
    decoded: int
    dead: list[DeadLetter]


async def handle_batch(
    records: tuple[Record, ...],
    topic: str,
    tagging: TaggingService,
    output: TaggerOutput,
    customers: CustomerTagging | None = None,
) -> HandledBatch:
    """One consumed batch: decode, tag, publish (the tagged events and the dead letters)."""
    with cycles_collected_after():  # the batch's objects are gone by its end
        return await _handle(records, topic, tagging, output, customers)


async def _handle(
    records: tuple[Record, ...],
    topic: str,
    tagging: TaggingService,
    output: TaggerOutput,
    customers: CustomerTagging | None,
) -> HandledBatch:
    decoded, dead = decode_records(records)
    with Lineage(topic, decoded) as lineage:
        events = [event for event, _ in decoded]
        retry_until = time.monotonic() + RETRY_BUDGET_S  # for the batch's steps together
        outcome = await _transient_retried(lambda: tagging.tag(events), retry_until)
        dead += unknown_order_letters(decoded, outcome.unknown_orders)
        # The tagged events go out while the batch's customers are evaluated (their figures
        # moved, so their tags may too): alerts wait for no customer write. The batch commits
        # only when both are done; a redelivery replays the orders and evaluates again.
        publishing = asyncio.create_task(output.publish(outcome.tagged, dead, lineage))
        try:
            if customers is not None:
                applied = [e for e in events if str(e.event_id) not in outcome.created_again]
                await _transient_retried(lambda: customers.after_orders(applied), retry_until)
            await publishing
        except BaseException:
            await cancel_and_wait([publishing])
            raise
    observe_end_to_end("tagged", [record for _, record in decoded])
    return HandledBatch([tagged.order_no for tagged in outcome.tagged], len(decoded), dead)


async def _transient_retried(step: Callable[[], Awaitable[T]], retry_until: float) -> T:
    """``step`` again on a transient outage, a few times until ``retry_until`` (monotonic),
    before the batch fails and comes again. The batch's steps share one budget, so a batch
    stays well inside the consumer's poll interval (KAFKA-NOTES #7)."""
    budget = max(retry_until - time.monotonic(), 1.0)
    async for attempt in stamina.retry_context(on=TRANSIENT_ERRORS, attempts=5, timeout=budget):
        with attempt:
            # a driver call that never returns (seen after a MongoDB restart under load)
            # becomes a retried timeout instead of a consumer that stalls
            async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
                return await step()
    raise AssertionError("unreachable: stamina raises once its attempts are spent")


async def _shadow(shadow: ShadowRules, order_nos: list[str]) -> None:
    """The candidate in shadow over the batch's orders: an observation, so a failure is logged
    and never fails (or redelivers) the batch."""
    try:
        await shadow.observe(order_nos)
    except Exception:
        log.warning("shadow_evaluation_failed", version=shadow.version, exc_info=True)


def _observe(message: Any, decoded: int, dead: list[DeadLetter]) -> None:
    metrics.BATCH_SIZE.observe(decoded + len(dead))
    metrics.DEAD_LETTERS.inc(len(dead))
    for letter in dead:
        log.warning("dead_letter", error=letter.error, **letter.headers())
    observe_lag(metrics.CONSUMER_LAG, message.consumer, message.raw_message)
