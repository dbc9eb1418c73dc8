"""Saved views: a named filter of one list (orders or customers) shared with the team, shown
as a tab with how many it matches now (``console_views``).

One store for every list: each view says which list it belongs to, and the list says how its
filter is validated and counted. A view saved before lists existed has no ``list``: orders."""

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.customers.segments import CustomerFilter, CustomerSort
from services.tagger.queries import OrderFilter, SortKey


class ViewList(StrEnum):
    ORDERS = "orders"
    CUSTOMERS = "customers"


class OrderViewIn(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    list: Literal[ViewList.ORDERS] = ViewList.ORDERS
    filter: OrderFilter
    sort: SortKey = SortKey.NEWEST


class CustomerViewIn(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    list: Literal[ViewList.CUSTOMERS]
    filter: CustomerFilter
    sort: CustomerSort = CustomerSort.SPEND


def _list_of(value: Any) -> str:
    """Which list a posted view belongs to; a body without ``list`` is an orders view."""
    named = value.get("list") if isinstance(value, dict) else getattr(value, "list", None)
    return str(named or ViewList.ORDERS)


# The body of ``POST /console/api/views``: the filter is checked as its list's filter (422
# naming the field, e.g. ``body.customers.filter.spend_min``).
SavedViewIn = Annotated[
    Annotated[OrderViewIn, Tag(ViewList.ORDERS)]
    | Annotated[CustomerViewIn, Tag(ViewList.CUSTOMERS)],
    Discriminator(_list_of),
]


@dataclass(frozen=True)
class _Counted:
    """Where a list's items live and how a stored filter becomes their query."""

    collection: str
    query: Callable[[dict[str, Any]], dict[str, Any]]


_LISTS = {
    ViewList.ORDERS: _Counted("orders", lambda f: OrderFilter.model_validate(f).to_mongo()),
    ViewList.CUSTOMERS: _Counted(
        "customers", lambda f: CustomerFilter.model_validate(f).to_mongo()
    ),
}


class SavedViews:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.views = database["console_views"]
        self._database = database

    async def all_with_counts(self, of: ViewList = ViewList.ORDERS) -> list[dict[str, Any]]:
        """The list's views, oldest first, each with how many items its filter matches now
        (counted at once, not one after another)."""
        which = {"list": of.value} if of != ViewList.ORDERS else {"list": {"$in": [None, of]}}
        views = await self.views.find(which, {"_id": 0}).sort("created_at").to_list(200)
        counted = _LISTS[of]
        items = self._database[counted.collection]
        counts = await asyncio.gather(
            *(items.count_documents(counted.query(view["filter"])) for view in views)
        )
        for view, count in zip(views, counts, strict=True):
            view.setdefault("list", ViewList.ORDERS.value)
            view["count"] = count
        return views

    async def save(self, view: OrderViewIn | CustomerViewIn, by: str) -> dict[str, Any]:
        document = {
            "view_id": uuid.uuid4().hex[:12],
            "list": view.list.value,
            "name": view.name,
            "filter": view.filter.model_dump(mode="json", exclude_defaults=True),
            "sort": view.sort.value,
            "by": by,
            "created_at": datetime.now(UTC),
        }
        await self.views.insert_one(document)
        document.pop("_id", None)
        return document

    async def delete(self, view_id: str) -> bool:
        return (await self.views.delete_one({"view_id": view_id})).deleted_count == 1
