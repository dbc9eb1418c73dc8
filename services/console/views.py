"""Saved views: a named order filter shared with the team (``console_views``)."""

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.queries import OrderFilter, SortKey


class SavedViewIn(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    filter: OrderFilter
    sort: SortKey = SortKey.NEWEST


class SavedViews:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.views = database["console_views"]
        self.orders = database["orders"]

    async def all_with_counts(self) -> list[dict[str, Any]]:
        views = await self.views.find({}, {"_id": 0}).sort("created_at").to_list(200)
        for view in views:
            which = OrderFilter.model_validate(view["filter"])
            view["count"] = await self.orders.count_documents(which.to_mongo())
        return views

    async def save(self, view: SavedViewIn, by: str) -> dict[str, Any]:
        document = {
            "view_id": uuid.uuid4().hex[:12],
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
