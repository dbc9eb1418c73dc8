"""Reading the body of ``POST /orders/batch``: the cap on orders is enforced before any order is
built, and big bodies are read off the event loop.

An 8 MiB body can hold millions of tiny items (``[{}, {}, ...]``). Validating them all, or even
parsing them all into Python objects, takes seconds and gigabytes; so a body big enough to hold
more items than the cap is first counted by a streaming parser that stops at the first item past
the cap. A usual batch (a few hundred KiB) skips the count: pydantic's own ``max_length`` bounds
the work of a small body, and one parse of the raw JSON is the fast path.
"""

from typing import Any

import anyio.to_thread
import ijson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from services.ingest.intake import ItemResult, parse_orders
from shared.errors import InvalidInput
from shared.models import Order

# Bodies up to this size are parsed in the event loop (worst case ~30 ms for one of tiny items).
COUNT_FIRST_BYTES = 256 * 1024
_ITEM_STARTS = frozenset(("start_map", "start_array", "string", "number", "boolean", "null"))


class BatchTooLarge(InvalidInput):
    def __init__(self, max_batch: int) -> None:
        super().__init__(
            "orders", f"at most {max_batch} orders per batch, got more; split the batch"
        )


class BatchReader:
    """Parses batch bodies against a cap of ``max_batch`` orders."""

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch
        config = ConfigDict(extra="forbid")
        self._all_valid: type[BaseModel] = create_model(
            "AllValidBatch",
            __config__=config,
            orders=(list[Order], Field(min_length=1, max_length=max_batch)),
        )
        self._raw_items: type[BaseModel] = create_model(
            "RawBatch",
            __config__=config,
            orders=(list[Any], Field(min_length=1, max_length=max_batch)),
        )

    async def read(self, body: bytes) -> tuple[list[tuple[int, Order]], list[ItemResult]]:
        """The valid orders (with their index) and a result for each invalid one. Raises
        ``BatchTooLarge`` over the cap and ``ValidationError`` for a body that is not a batch."""
        if len(body) <= COUNT_FIRST_BYTES:
            return self.parse(body)
        if await anyio.to_thread.run_sync(count_items, body, self.max_batch) > self.max_batch:
            raise BatchTooLarge(self.max_batch)
        return await anyio.to_thread.run_sync(self.parse, body)

    def parse(self, body: bytes) -> tuple[list[tuple[int, Order]], list[ItemResult]]:
        """Usually every order is valid and one pass over the raw JSON parses them all;
        otherwise each item is validated on its own, so every bad order gets its own errors."""
        try:
            orders: list[Order] = self._all_valid.model_validate_json(body).orders  # type: ignore[attr-defined]
            return list(enumerate(orders)), []
        except ValidationError as error:
            if _too_long(error):
                raise BatchTooLarge(self.max_batch) from None
        try:
            items: list[Any] = self._raw_items.model_validate_json(body).orders  # type: ignore[attr-defined]
        except ValidationError as error:
            if _too_long(error):
                raise BatchTooLarge(self.max_batch) from None
            raise
        return parse_orders(items)


def count_items(body: bytes, cap: int) -> int:
    """How many items the ``orders`` array holds, counting no further than ``cap + 1``. Memory
    stays flat whatever the body holds; a body that is not JSON counts 0 (the parse says why)."""
    count = 0
    try:
        for prefix, event, _ in ijson.parse(body):
            if prefix == "orders.item" and event in _ITEM_STARTS:
                count += 1
                if count > cap:
                    break
    except ijson.JSONError:
        return 0
    return count


def _too_long(error: ValidationError) -> bool:
    return any(e["type"] == "too_long" and tuple(e["loc"]) == ("orders",) for e in error.errors())
