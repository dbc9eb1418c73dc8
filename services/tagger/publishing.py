"""What the tagger publishes: tagged-order events for the notifier, dead letters for people.

Through a bare aiokafka producer with the safe settings: per batch, every record is sent first
and the acknowledgements are awaited together (FastStream's per-message publish pipeline cost
more than the send itself at the tagger's batch sizes).
"""

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import AwareDatetime, TypeAdapter

from services.tagger.dead_letters import DeadLetter, Record
from shared.events import AppliedTag, OrderEventModel, OrderFacts, OrderTagged, customer_key
from shared.kafka import JSON_HEADERS, send_batched
from shared.metrics import origin_header
from shared.tracing import Headers, RecordSpans


class Lineage:
    """What a tagged event carries on from the order event it came from: the order's trace
    (a span per consumed record) and ingest's send time (for the end-to-end latency)."""

    def __init__(self, topic: str, decoded: Sequence[tuple[OrderEventModel, Record]]) -> None:
        self._records = {event.order_no: record for event, record in decoded}
        self._spans = RecordSpans(topic, self._records.items())

    def headers(self, order_no: str) -> Headers:
        record = self._records.get(order_no)
        base = JSON_HEADERS if record is None else [*JSON_HEADERS, origin_header(record)]
        return self._spans.headers(base, order_no)

    def __enter__(self) -> "Lineage":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._spans.end(error)


_TAG_JSON = AppliedTag.__pydantic_serializer__.to_json
_AT_JSON = TypeAdapter(AwareDatetime).dump_json  # ``AppliedTag.at`` as pydantic writes it
_FACTS_JSON = OrderFacts.__pydantic_serializer__.to_json
_NAMES_JSON = TypeAdapter(list[str]).dump_json
_TAIL = {"tags_added", "tags_removed", "tags", "facts"}  # the last fields of ``OrderTagged``
_BUT_AT = {"at"}  # the last field of ``AppliedTag``
TAG_HEADS_KEPT = 20_000

# A tag's JSON up to its time, by every field but the time: orders share their tags' rules,
# families and (most) reasons, and differ in the time, so this is built once per rule tag and
# reason and the time added to it per order.
_tag_heads: dict[tuple[Any, ...], bytes] = {}


def _tag_head(tag: AppliedTag) -> bytes:
    key = tag.timeless()
    head = _tag_heads.get(key)
    if head is None:
        if len(_tag_heads) >= TAG_HEADS_KEPT:
            _tag_heads.clear()
        head = _tag_heads[key] = _TAG_JSON(tag, exclude=_BUT_AT)[:-1] + b',"at":'
    return head


def tagged_event_json(event: OrderTagged) -> bytes:
    """``event.model_dump_json()``, byte for byte, with each tag serialised once (a new
    order's added tags are its tags) from its head (``_tag_head``) and its time (most tags of
    an order share one)."""
    fragments: dict[int, bytes] = {}
    times: dict[int, bytes] = {}  # by the time object: equal times in two zones differ here

    def tags(applied: list[AppliedTag]) -> bytes:
        parts = []
        for tag in applied:
            fragment = fragments.get(id(tag))
            if fragment is None:
                at_json = times.get(id(tag.at))
                if at_json is None:
                    at_json = times[id(tag.at)] = _AT_JSON(tag.at)
                fragment = fragments[id(tag)] = _tag_head(tag) + at_json + b"}"
            parts.append(fragment)
        return b"[" + b",".join(parts) + b"]"

    head = event.__pydantic_serializer__.to_json(event, exclude=_TAIL)
    return b"".join(
        (
            head[:-1],
            b',"tags_added":',
            tags(event.tags_added),
            b',"tags_removed":',
            _NAMES_JSON(event.tags_removed),
            b',"tags":',
            tags(event.tags),
            b',"facts":',
            _FACTS_JSON(event.facts),
            b"}",
        )
    )


class TaggerOutput:
    def __init__(self, producer: AIOKafkaProducer, tagged_topic: str, dead_letter_topic: str):
        self._producer = producer
        self._tagged_topic = tagged_topic
        self._dead_letter_topic = dead_letter_topic

    async def publish(
        self,
        tagged: list[OrderTagged],
        dead: list[DeadLetter] = (),  # type: ignore[assignment]
        lineage: Lineage | None = None,
    ) -> None:
        """Send all, then wait for every acknowledgement; raises if any was refused, so the
        batch is not committed and comes again (consumers dedupe on the tagged event id)."""
        sends = await send_batched(
            self._producer,
            self._tagged_topic,
            [
                (
                    customer_key(event.customer_id),
                    tagged_event_json(event),
                    JSON_HEADERS if lineage is None else lineage.headers(event.order_no),
                )
                for event in tagged
            ],
        )
        sends += [
            await self._producer.send(
                self._dead_letter_topic,
                letter.record.value,
                key=letter.record.key,
                headers=[(k, v.encode()) for k, v in letter.headers().items()],
            )
            for letter in dead
        ]
        await asyncio.gather(*sends)
