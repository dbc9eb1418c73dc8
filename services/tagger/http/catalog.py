"""The tag catalog: list with usage, unused tags, likely duplicates, create, edit, rename and
merge (as jobs)."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status

from services.tagger.commands import TagCommands
from services.tagger.customers.segments import Segments
from services.tagger.governance import permissions_of
from services.tagger.http.customers import segments_of
from services.tagger.http.deps import (
    Admin,
    Commands,
    Queries,
    Reader,
    TagUsageDep,
    tagger_of,
)
from services.tagger.http.errors import responses
from services.tagger.http.models import (
    CatalogTagIn,
    CatalogTagOut,
    CatalogTagPatch,
    CatalogUsageOut,
    JobOut,
    LikelyDuplicatesOut,
    MergeIn,
    RenameIn,
    UnusedOut,
)
from services.tagger.manual import named_by_rules
from services.tagger.rules.schema import CatalogTag

router = APIRouter(tags=["catalog"], responses=responses(401, 403, 422, 429, 503))
WRITES = responses(413)
CustomerSegments = Annotated[Segments, Depends(segments_of)]


def shown(
    tag: CatalogTag,
    commands: TagCommands,
    catalog: dict[str, CatalogTag],
    stored: set[str] | None = None,
    prefixes: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """A catalog tag as the API answers it: its permissions resolved (own, family's, default),
    whether the catalog stores it (``stored``: the names it does; None: this one) and whether
    only the rules set it (``prefixes``: ``commands.fact_prefixes()``, once per listing)."""
    with_tag = catalog if tag.name in catalog else {**catalog, tag.name: tag}
    permissions = permissions_of(tag.name, with_tag, commands.families)
    prefixes = commands.fact_prefixes() if prefixes is None else prefixes
    return {
        **tag.model_dump(),
        "permissions": permissions.model_dump(),
        "on_customers": commands.on_customers(tag.name),
        "in_catalog": stored is None or tag.name in stored,
        "named_by_rules": named_by_rules(tag.name, prefixes) is not None,
    }


@router.get("/tags", response_model=list[CatalogUsageOut])
async def list_tags(
    request: Request,
    key: Reader,
    queries: Queries,
    commands: Commands,
    segments: CustomerSegments,
    tag_usage: TagUsageDep,
    usage: Annotated[
        bool,
        Query(
            description="count the orders and customers carrying each tag (as of "
            "`counted_at`: counts are kept for ORDERTAG_TAGGER_COUNTS_MAX_AGE_S, 30 s); "
            "false lists the catalog alone, for pickers and labels"
        ),
    ] = True,
    fresh: Annotated[
        bool, Query(description="count now, not from kept counts (after a rename or merge)")
    ] = False,
) -> Any:
    """The catalog with how many orders and how many customers carry each tag; with it every
    tag the rules can set (``status:*``, ``region:*``, and the values in use of families named
    from data: ``category:*``, ``prefers:*``), so each can be named; with free tags allowed,
    the free tags orders carry too (``in_catalog`` and ``named_by_rules`` false)."""
    free_tags = tagger_of(request).settings.tagger_allow_free_tags
    prefixes = commands.fact_prefixes()
    if not usage:
        on_orders = await queries.tags_in_use()
        in_use = {*on_orders, *await segments.tags_in_use()}
        catalog, stored = await commands.catalog_listing(
            in_use, free_from=on_orders if free_tags else ()
        )
        return [shown(tag, commands, catalog, stored, prefixes) for tag in catalog.values()]
    counted = await tag_usage.get(fresh=fresh)
    carried = counted.value
    catalog, stored = await commands.catalog_listing(
        {*carried.orders, *carried.customers}, free_from=carried.orders if free_tags else ()
    )
    return [
        {
            **shown(tag, commands, catalog, stored, prefixes),
            "orders": carried.orders.get(name, 0),
            "customers": carried.customers.get(name, 0),
            "counted_at": counted.counted_at,
        }
        for name, tag in catalog.items()
    ]


@router.get("/tags/duplicates", response_model=list[LikelyDuplicatesOut])
async def likely_duplicates(key: Reader, commands: Commands) -> Any:
    """Pairs of catalog tags whose names or labels nearly equal each other (case, width,
    spacing, traditional/simplified characters, a trailing 订单/客户): merge one into the other
    (``POST /tags/{name}/merge``) or keep both."""
    return [{"tags": pair.tags, "why": pair.why} for pair in await commands.duplicates()]


@router.get("/tags/unused", response_model=UnusedOut)
async def unused_tags(
    key: Reader,
    queries: Queries,
    commands: Commands,
    segments: CustomerSegments,
    days: Annotated[int, Query(ge=1, le=3650)] = 90,
) -> Any:
    """Catalog tags that no order created in the last ``days`` days carries and no customer
    carries now (customer tags sit on customers, not orders): candidates for the periodic
    review."""
    used = await queries.tags_used_since(datetime.now(UTC) - timedelta(days=days))
    carried = await segments.tag_usage()
    catalog = await commands.listed_catalog({*used, *carried})
    return {
        "days": days,
        "unused": [name for name in catalog if name not in used and not carried.get(name)],
    }


@router.post(
    "/tags",
    status_code=status.HTTP_201_CREATED,
    response_model=CatalogTagOut,
    responses={**WRITES, **responses(409)},
)
async def create_tag(tag: CatalogTagIn, key: Admin, commands: Commands) -> Any:
    """409 when the name exists, or when the name or a label nearly equals an existing tag's
    (the detail names it) unless ``confirm_duplicate``."""
    created = await commands.create_tag(tag.as_tag(), confirm_duplicate=tag.confirm_duplicate)
    return shown(created, commands, await commands.catalog())


@router.patch(
    "/tags/{name}", response_model=CatalogTagOut, responses={**WRITES, **responses(404, 409, 410)}
)
async def update_tag(name: str, patch: CatalogTagPatch, key: Admin, commands: Commands) -> Any:
    """Only the fields sent change; new labels that nearly equal another tag's name or label
    are refused (409) unless ``confirm_duplicate``."""
    updated = await commands.update_tag(
        name, patch.changes(), confirm_duplicate=patch.confirm_duplicate
    )
    return shown(updated, commands, await commands.catalog())


@router.get("/tags/{name}", response_model=CatalogTagOut, responses=responses(404, 410))
async def read_tag(name: str, key: Reader, commands: Commands) -> Any:
    """One catalog tag with its labels and permissions."""
    catalog = await commands.catalog()
    return shown(await commands.catalog_tag(name), commands, catalog)


@router.post(
    "/tags/{name}/rename",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    responses={**WRITES, **responses(404, 409, 410)},
)
async def rename_tag(name: str, body: RenameIn, key: Admin, commands: Commands) -> Any:
    """The catalog entry gets the new name; every order carrying the old one is rewritten (job)."""
    started = await commands.rename_tag(
        name, body.new_name, key.name, confirm_duplicate=body.confirm_duplicate
    )
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
