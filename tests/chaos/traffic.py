"""The client side: the simulator's stream sent to ingest over HTTP as a careful CRM connector
would (retries with backoff, Retry-After honoured, one order's changes kept in order), with a
ledger of every answer ingest gave and of everything it accepted.

One queue per order: a status change is sent only once the order (and its earlier changes) were
accepted, so a retry never reorders an order's events.
"""

import asyncio
import bisect
import random
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.auth import API_KEY_HEADER, LOCAL_DEV_KEY

Action = dict[str, Any]
TICK_S = 0.2
MAX_BATCH = 500
INVALID_EVERY = 200  # one deliberately invalid order per this many orders: ingest must say 422


@dataclass
class Ledger:
    """What ingest answered, and what it accepted (the run's promise to check against)."""

    answers: Counter[tuple[str, int, bool]] = field(
        default_factory=Counter
    )  # (what, status, Retry-After)
    transport_errors: list[tuple[float, str, str]] = field(
        default_factory=list
    )  # (at, what, error)
    orders_sent: set[str] = field(default_factory=set)
    accepted_orders: dict[str, str] = field(default_factory=dict)  # order_no -> customer id
    accepted_events: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # event id -> (kind, order_no)
    final_status: dict[str, str] = field(default_factory=dict)  # by the accepted changes
    accept_times: list[float] = field(default_factory=list)  # monotonic, new orders accepted
    accept_order_nos: list[str] = field(default_factory=list)
    refused_unavailable: int = 0  # orders or changes answered 503 / "unavailable"
    refused_rate_limited: int = 0
    in_flight_answers: int = 0
    retries: int = 0
    invalid_sent: int = 0
    invalid_refused: int = 0  # answered 4xx, as they must be
    unexpected: list[str] = field(default_factory=list)  # what ingest must never answer
    given_up: list[str] = field(default_factory=list)  # actions dropped after an unexpected answer
    status_changes_sent: int = 0
    updates_sent: int = 0

    def note_unexpected(self, text: str) -> None:
        if len(self.unexpected) < 200:
            self.unexpected.append(text)

    def first_accept_after(self, moment: float) -> tuple[float, str] | None:
        index = bisect.bisect_left(self.accept_times, moment)
        if index == len(self.accept_times):
            return None
        return self.accept_times[index], self.accept_order_nos[index]


class Traffic:
    def __init__(
        self,
        ingest_url: str,
        ledger: Ledger,
        *,
        api_key: str = LOCAL_DEV_KEY,
        concurrency: int = 48,
        seed: int = 0,
    ) -> None:
        self._url = ingest_url
        self.ledger = ledger
        self._client = httpx.AsyncClient(
            base_url=ingest_url,
            headers={API_KEY_HEADER: api_key},
            timeout=30,
            limits=httpx.Limits(max_connections=concurrency + 8),
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._queues: dict[str, deque[Action]] = {}
        self._busy: set[str] = set()
        self._next_try: dict[str, float] = {}
        self._attempts: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._rng = random.Random(seed)

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()

    @property
    def outstanding(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def enqueue(self, action: Action) -> None:
        order_no = action["order"]["order_no"] if "order" in action else action["order_no"]
        if action["type"] == "order":
            self.ledger.orders_sent.add(order_no)
        self._queues.setdefault(order_no, deque()).append(action)

    async def send_all(self, actions: list[Action], within: float) -> None:
        """Send these (the customer base's history) as fast as ingest takes them."""
        for action in actions:
            self.enqueue(action)
        await self.drain(within)

    async def stream(
        self, actions: Iterator[Action], rate: float, duration: float, until: asyncio.Event
    ) -> None:
        """Live traffic: ``rate`` new orders a second for at least ``duration`` seconds and
        until ``until`` is set, each order's changes as the stream makes them due."""
        started = time.monotonic()
        sent = 0
        pending: Action | None = None
        while (elapsed := time.monotonic() - started) < duration or not until.is_set():
            due = int((elapsed + TICK_S) * rate) - sent
            while due > 0:
                action = pending or next(actions)
                pending = None
                self.enqueue(action)
                if action["type"] == "order":
                    sent += 1
                    due -= 1
                    if sent % INVALID_EVERY == 0:
                        self._spawn(self._send_invalid(action["order"]))
            self._dispatch()
            await asyncio.sleep(max(0.0, started + elapsed + TICK_S - time.monotonic()))

    async def drain(self, within: float) -> bool:
        """Keep sending until every queued action was accepted (or given up)."""
        deadline = time.monotonic() + within
        while self._queues or self._busy:
            if time.monotonic() > deadline:
                return False
            self._dispatch()
            await asyncio.sleep(TICK_S / 2)
        return True

    # -- sending ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        now = time.monotonic()
        ready = [
            queue[0]
            for order_no, queue in self._queues.items()
            if order_no not in self._busy and self._next_try.get(order_no, 0.0) <= now
        ]
        orders = [a for a in ready if a["type"] == "order"]
        for start in range(0, len(orders), MAX_BATCH):
            chunk = orders[start : start + MAX_BATCH]
            self._busy.update(a["order"]["order_no"] for a in chunk)
            self._spawn(self._send_batch(chunk))
        for action in ready:
            if action["type"] == "status":
                self._busy.add(action["order_no"])
                self._spawn(self._send_status(action))
            elif action["type"] == "update":
                self._busy.add(action["order"]["order_no"])
                self._spawn(self._send_update(action))

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _done(self, order_no: str) -> None:
        queue = self._queues[order_no]
        queue.popleft()
        if not queue:
            del self._queues[order_no]
        self._busy.discard(order_no)
        self._next_try.pop(order_no, None)
        self._attempts.pop(order_no, None)

    def _retry(self, order_no: str, retry_after: float | None) -> None:
        self.ledger.retries += 1
        self._attempts[order_no] += 1
        if retry_after is None:  # exponential backoff with jitter, as for a dropped connection
            retry_after = min(0.2 * 2 ** self._attempts[order_no], 5.0)
        delay = min(retry_after, 10.0) * self._rng.uniform(0.8, 1.2)
        self._next_try[order_no] = time.monotonic() + delay
        self._busy.discard(order_no)

    def _give_up(self, order_no: str, why: str) -> None:
        self.ledger.given_up.append(f"{order_no}: {why}")
        self._done(order_no)

    async def _post(self, what: str, method: str, path: str, body: Any) -> httpx.Response | None:
        async with self._slots:
            try:
                answer = await self._client.request(method, path, json=body)
            except httpx.TransportError as error:
                self.ledger.transport_errors.append((time.monotonic(), what, type(error).__name__))
                return None
        retry_after = "retry-after" in answer.headers
        self.ledger.answers[(what, answer.status_code, retry_after)] += 1
        if answer.status_code >= 500 and answer.status_code != 503:
            self.ledger.note_unexpected(f"{what} {path}: {answer.status_code} {answer.text[:200]}")
        elif answer.status_code in (503, 429) and not retry_after:
            self.ledger.note_unexpected(f"{what} {path}: {answer.status_code} without Retry-After")
        return answer

    async def _send_batch(self, actions: list[Action]) -> None:
        order_nos = [a["order"]["order_no"] for a in actions]
        answer = await self._post(
            "batch", "POST", "/orders/batch", {"orders": [a["order"] for a in actions]}
        )
        if answer is not None and answer.status_code == 429:  # as any connector: wait, resend
            self.ledger.refused_rate_limited += len(order_nos)
            for order_no in order_nos:
                self._retry(order_no, _retry_after(answer))
            return
        if answer is None or answer.status_code not in (200, 503):
            if answer is not None and 400 <= answer.status_code < 500:
                self.ledger.note_unexpected(f"batch answered {answer.status_code}")
                for order_no in order_nos:
                    self._give_up(order_no, f"batch answered {answer.status_code}")
                return
            for order_no in order_nos:
                self._retry(order_no, None)
            return
        retry_after = _retry_after(answer)
        now = time.monotonic()
        for action, item in zip(actions, answer.json()["items"], strict=True):
            order_no = action["order"]["order_no"]
            outcome = item["outcome"]
            if outcome in ("accepted", "duplicate"):
                self._accepted(
                    order_no, action["order"]["customer"]["id"], item["event_id"], "order", now
                )
                self.ledger.final_status.setdefault(order_no, action["order"]["status"])
                self._done(order_no)
            elif outcome == "unavailable":
                self.ledger.refused_unavailable += 1
                self._retry(order_no, retry_after)
            elif outcome == "in_flight":
                self.ledger.in_flight_answers += 1
                self._retry(order_no, 1.0)
            else:  # invalid or conflict: the stream's orders are valid and unique
                self.ledger.note_unexpected(
                    f"batch item {order_no}: {outcome} {item.get('errors')}"
                )
                self._give_up(order_no, outcome)

    async def _send_status(self, action: Action) -> None:
        order_no = action["order_no"]
        self.ledger.status_changes_sent += 1
        answer = await self._post(
            "status",
            "POST",
            f"/orders/{order_no}/status",
            {"status": action["status"], "customer_id": action["customer_id"]},
        )
        if answer is not None and answer.status_code == 202:
            self._accepted(order_no, None, answer.json()["event_id"], "status", None)
            self.ledger.final_status[order_no] = action["status"]
            self._done(order_no)
        else:
            self._retry_or_give_up(order_no, answer)

    async def _send_update(self, action: Action) -> None:
        order = action["order"]
        self.ledger.updates_sent += 1
        answer = await self._post("update", "PUT", f"/orders/{order['order_no']}", order)
        if answer is not None and answer.status_code in (200, 202):
            self._accepted(order["order_no"], None, answer.json()["event_id"], "update", None)
            self.ledger.final_status[order["order_no"]] = order["status"]
            self._done(order["order_no"])
        else:
            self._retry_or_give_up(order["order_no"], answer)

    def _retry_or_give_up(self, order_no: str, answer: httpx.Response | None) -> None:
        if answer is None:
            self._retry(order_no, None)
        elif answer.status_code == 503:
            self.ledger.refused_unavailable += 1
            self._retry(order_no, _retry_after(answer))
        elif answer.status_code == 429:
            self.ledger.refused_rate_limited += 1
            self._retry(order_no, _retry_after(answer))
        elif answer.status_code == 409 and "retry-after" in answer.headers:
            self.ledger.in_flight_answers += 1
            self._retry(order_no, _retry_after(answer))
        elif answer.status_code >= 500:
            self._retry(order_no, None)  # a client retries a 500 too; it is counted above
        else:
            self.ledger.note_unexpected(f"{order_no}: {answer.status_code} {answer.text[:200]}")
            self._give_up(order_no, str(answer.status_code))

    async def _send_invalid(self, order: dict[str, Any]) -> None:
        bad = {**order, "order_no": f"{order['order_no']}-BAD", "pricing": {"total": "-1.00"}}
        self.ledger.invalid_sent += 1
        answer = await self._post("invalid", "POST", "/orders", bad)
        if answer is None:
            return
        if 400 <= answer.status_code < 500 and answer.status_code != 429:
            self.ledger.invalid_refused += 1
        elif answer.status_code < 300:
            self.ledger.note_unexpected(f"invalid order accepted: {answer.status_code}")

    def _accepted(
        self, order_no: str, customer_id: str | None, event_id: str, kind: str, at: float | None
    ) -> None:
        self.ledger.accepted_events[event_id] = (kind, order_no)
        if customer_id is not None and order_no not in self.ledger.accepted_orders:
            self.ledger.accepted_orders[order_no] = customer_id
            if at is not None:
                self.ledger.accept_times.append(at)
                self.ledger.accept_order_nos.append(order_no)


def _retry_after(answer: httpx.Response) -> float | None:
    try:
        return float(answer.headers["retry-after"])
    except (KeyError, ValueError):
        return None
