"""The tag catalog: list with usage, unused tags, create, edit, rename and merge (as jobs)."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from services.tagger.http.deps import Admin, Commands, Queries, Reader
from services.tagger.http.errors import responses
from services.tagger.http.models import (
    CatalogTagIn,
    CatalogTagOut,
    CatalogTagPatch,
    CatalogUsageOut,
    JobOut,
    MergeIn,
    RenameIn,
    UnusedOut,
)

router = APIRouter(tags=["catalog"], responses=responses(401, 403, 422, 429, 503))
WRITES = responses(413)


@router.get("/tags", response_model=list[CatalogUsageOut])
async def list_tags(key: Reader, queries: Queries, commands: Commands) -> Any:
    """The catalog with how many orders carry each tag."""
    counts = await queries.tag_usage()
    catalog = await commands.catalog()
    return [
        {**tag.model_dump(), "orders": counts.get(name, 0)} for name, tag in sorted(catalog.items())
    ]


@router.get("/tags/unused", response_model=UnusedOut)
async def unused_tags(
    key: Reader,
    queries: Queries,
    commands: Commands,
    days: Annotated[int, Query(ge=1, le=3650)] = 90,
) -> Any:
    """Catalog tags that no order created in the last ``days`` days carries: candidates for the
    periodic review."""
    used = await queries.tags_used_since(datetime.now(UTC) - timedelta(days=days))
    catalog = await commands.catalog()
    return {"days": days, "unused": sorted(name for name in catalog if name not in used)}


@router.post(
    "/tags",
    status_code=status.HTTP_201_CREATED,
    response_model=CatalogTagOut,
    responses={**WRITES, **responses(409)},
)
async def create_tag(tag: CatalogTagIn, key: Admin, commands: Commands) -> Any:
    return (await commands.create_tag(tag.as_tag())).model_dump()


@router.patch(
    "/tags/{name}", response_model=CatalogTagOut, responses={**WRITES, **responses(404, 410)}
)
async def update_tag(name: str, patch: CatalogTagPatch, key: Admin, commands: Commands) -> Any:
    return (await commands.update_tag(name, patch.model_dump(exclude_unset=True))).model_dump()


@router.post(
    "/tags/{name}/rename",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    responses={**WRITES, **responses(404, 409, 410)},
)
async def rename_tag(name: str, body: RenameIn, key: Admin, commands: Commands) -> Any:
    """The catalog entry gets the new name; every order carrying the old one is rewritten (job)."""
    started = await commands.rename_tag(name, body.new_name, key.name)
    return {"job_id": started.job_id, "orders": started.orders, "status": "running"}


@router.post(
    "/tags/{name}/merge",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    responses={**WRITES, **responses(404, 409, 410)},
)
async def merge_tag(name: str, body: MergeIn, key: Admin, commands: Commands) -> Any:
    """Orders carrying ``name`` carry ``into`` instead; ``name`` leaves the catalog (job)."""
    started = await commands.merge_tag(name, body.into, key.name)
    return {"job_id": started.job_id, "orders": started.orders, "status": "running"}
