"""An ingest client that rides out outages: dropped connections, 503s and 429s are retried with
backoff (honouring Retry-After) until a time budget runs out. Resending is safe: ingest
deduplicates by order number, so an order accepted before the connection dropped comes back as a
duplicate, never as a second order."""

from dataclasses import dataclass
from typing import Any

import httpx
import stamina
import structlog

from shared.auth import API_KEY_HEADER

log = structlog.get_logger("simulator")
RETRY_STATUSES = {429, 503}
MAX_RETRY_AFTER_S = 30.0
# per item of a batch answer: not taken this time, but taken by a resend
RESEND_OUTCOMES = {"unavailable", "in_flight"}


class RetryLater(Exception):
    """An answer that says "not now": wait ``retry_after_s`` (None: the usual backoff)."""

    def __init__(self, status: int, retry_after_s: float | None) -> None:
        super().__init__(f"ingest answered {status}")
        self.retry_after_s = retry_after_s


def backoff_for(error: Exception) -> bool | float:
    """stamina's hook: retry dropped connections and "not now" answers, as long as they say."""
    if isinstance(error, RetryLater):
        return True if error.retry_after_s is None else error.retry_after_s
    return isinstance(error, httpx.TransportError)


@dataclass
class Tally:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0  # refused for what they are (4xx): resending would not help
    retried: int = 0  # requests sent again after a transient failure
    failed: int = 0  # orders and status changes still not taken when the budget ran out

    def as_json(self) -> dict[str, int]:
        return dict(self.__dict__)


class IngestClient:
    def __init__(
        self, url: str, api_key: str, retry_for_s: float = 120.0, timeout_s: float = 30.0
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=url, headers={API_KEY_HEADER: api_key}, timeout=timeout_s
        )
        self._retry_for_s = retry_for_s
        self.tally = Tally()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send_orders(self, orders: list[dict[str, Any]]) -> None:
        """POST /orders/batch until every order is taken or refused; a resend carries only the
        orders the last answer did not take."""
        pending = orders
        try:
            async for attempt in self._attempts():
                with attempt:
                    if attempt.num > 1:
                        self.tally.retried += 1
                    answer = await self._client.post("/orders/batch", json={"orders": pending})
                    pending = self._settle_batch(answer, pending)
                    if pending:
                        raise RetryLater(answer.status_code, _retry_after(answer))
        except (RetryLater, httpx.TransportError) as error:
            self.tally.failed += len(pending)
            log.warning("orders_not_taken", count=len(pending), error=repr(error))

    async def send_status(self, change: dict[str, Any]) -> None:
        body = {"status": change["status"], "customer_id": change["customer_id"]}
        try:
            async for attempt in self._attempts():
                with attempt:
                    if attempt.num > 1:
                        self.tally.retried += 1
                    answer = await self._client.post(
                        f"/orders/{change['order_no']}/status", json=body
                    )
                    if answer.status_code in RETRY_STATUSES:
                        raise RetryLater(answer.status_code, _retry_after(answer))
        except (RetryLater, httpx.TransportError) as error:
            self.tally.failed += 1
            log.warning("status_change_not_taken", order_no=change["order_no"], error=repr(error))
            return
        if answer.is_success:
            self.tally.accepted += 1
        else:
            self.tally.rejected += 1

    def _attempts(self) -> Any:
        return stamina.retry_context(
            on=backoff_for,
            attempts=None,
            timeout=self._retry_for_s,
            wait_initial=0.2,
            wait_max=5.0,
            wait_jitter=0.5,
        )

    def _settle_batch(
        self, answer: httpx.Response, sent: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Count what the answer settled; return the orders to send again."""
        if answer.status_code in RETRY_STATUSES and "items" not in _json(answer):
            return sent
        items = _json(answer).get("items")
        if not isinstance(items, list):  # refused as a whole (401, 413, 422, ...)
            self.tally.rejected += len(sent)
            log.warning("batch_refused", status=answer.status_code, body=answer.text[:300])
            return []
        again = []
        for item in items:
            outcome = item.get("outcome")
            if outcome in RESEND_OUTCOMES:
                again.append(sent[item["index"]])
            elif outcome == "accepted":
                self.tally.accepted += 1
            elif outcome == "duplicate":
                self.tally.duplicates += 1
            else:
                self.tally.rejected += 1
        return again


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(answer: httpx.Response) -> float | None:
    value = answer.headers.get("Retry-After", "")
    return min(float(value), MAX_RETRY_AFTER_S) if value.isdigit() else None
