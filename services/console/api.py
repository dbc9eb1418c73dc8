"""The console's own JSON endpoints (``/console/api``): what the Tag API does not answer —
saved views, Excel-friendly exports, an order's alerts, rule hits and explanations."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from services.console.alert_causes import with_causes
from services.console.deps import database_of
from services.console.export import (
    customer_header,
    customer_row,
    export_row,
    header,
    xlsx_bytes,
    xlsx_header,
    xlsx_row,
)
from services.console.i18n import LANG_COOKIE, language, pick_language
from services.console.views import SavedViewIn, SavedViews, ViewList
from services.tagger.builtin_labels import reason_labels
from services.tagger.http.customers import SegmentRows
from services.tagger.http.deps import tagger_of
from services.tagger.order_record import OrderRecord
from services.tagger.queries import OrderFilter, SortKey
from services.tagger.rules.engine import Decision, explain
from services.tagger.rules.facts import order_facts
from services.tagger.rules.reasons import ReasonTemplates, TranslatedReasons, reason_templates
from services.tagger.usage import rule_hit_counts
from shared.auth import ApiKey, Scope, require_scope
from shared.exports import EXPORT_ROWS, MaxRows, Row, csv_export
from shared.reader_zone import ReaderTz

# the console pages' own API: not part of the Tag API's published contract (OpenAPI)
router = APIRouter(prefix="/console/api", tags=["console"], include_in_schema=False)
Reader = Annotated[ApiKey, Depends(require_scope(Scope.READ))]
Tagger = Annotated[ApiKey, Depends(require_scope(Scope.TAG))]


def filter_param(
    filter_: Annotated[str, Query(alias="filter", max_length=8000)] = "{}",
) -> OrderFilter:
    """The order filter as JSON (the shape ``POST /tags/by-filter`` takes); 422 naming the
    field when it is bad."""
    try:
        return OrderFilter.model_validate_json(filter_)
    except ValidationError as error:
        problems = "; ".join(
            f"filter.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problems) from None


Filter = Annotated[OrderFilter, Depends(filter_param)]


def _lang(request: Request) -> Any:
    code = pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    return language(code)


# ── saved views ───────────────────────────────────────────────────────────────────────


@router.get("/views")
async def list_views(
    request: Request, key: Reader, of: Annotated[ViewList, Query(alias="list")] = ViewList.ORDERS
) -> list[dict[str, Any]]:
    """The team's saved views of one list, each with how many it matches now."""
    return await SavedViews(database_of(request)).all_with_counts(of)


@router.post("/views", status_code=status.HTTP_201_CREATED)
async def save_view(request: Request, body: SavedViewIn, key: Tagger) -> dict[str, Any]:
    return await SavedViews(database_of(request)).save(body, key.name)


@router.delete("/views/{view_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_view(request: Request, view_id: str, key: Tagger) -> Response:
    if not await SavedViews(database_of(request)).delete(view_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no saved view {view_id!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ── exports ───────────────────────────────────────────────────────────────────────────


async def order_rows(
    request: Request,
    key: Reader,
    which: Filter,
    sort: SortKey = SortKey.NEWEST,
    max_rows: MaxRows = EXPORT_ROWS,
) -> AsyncIterator[Row]:
    """The orders an export holds (read as it is sent): what the order list shows, from the
    Tag API's read model."""
    return tagger_of(request).stores.read_model.export(which, sort, max_rows)


OrderRows = Annotated[AsyncIterator[Row], Depends(order_rows)]


@router.get("/orders/export.csv")
async def export_csv(request: Request, rows: OrderRows) -> StreamingResponse:
    """The filter's orders as CSV, UTF-8 with a BOM (Excel then reads Chinese right), streamed."""
    lang = _lang(request)
    return await csv_export(rows, header(lang), lambda row: export_row(row, lang), "orders.csv")


@router.get("/customers/export.csv")
async def export_customers_csv(request: Request, rows: SegmentRows) -> StreamingResponse:
    """A customer segment as CSV in the reader's language, as the orders' (the Tag API's
    ``/customers/export.csv`` keeps machine names, for programs)."""
    lang = _lang(request)
    return await csv_export(
        rows, customer_header(lang), lambda row: customer_row(row, lang), "customers.csv"
    )


@router.get("/orders/export.xlsx")
async def export_xlsx(request: Request, rows: OrderRows, reader: ReaderTz) -> Response:
    """The filter's orders as a workbook: amounts as numbers, times as dates on the reader's
    clock (``tz``: the zone's name, which the page sends, or a fixed UTC offset)."""
    lang = _lang(request)
    cells, moments = [], []
    async for row in rows:  # each row read once into its cells (the list holds 10,000)
        cells.append(xlsx_row(row, lang, reader))
        moments.append(row["created_at"])
    head = xlsx_header(lang, reader, moments)
    body = await asyncio.to_thread(xlsx_bytes, head, cells)
    return Response(
        body,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": "attachment; filename=orders.xlsx"},
    )


# ── an order's alerts and explanation ───────────────────────────────────────────────


@router.get("/orders/{order_no}/alerts")
async def order_alerts(request: Request, order_no: str, key: Reader) -> list[dict[str, Any]]:
    """The notifier's alerts for the order (read only; the notifier owns the collection), each
    with its causes in the staff's language."""
    database = database_of(request)
    fields = {"_id": 0, "deliveries": 0}
    found = database["alerts"].find({"order_no": order_no}, fields).sort("created_at", -1)
    templates = tagger_of(request).rules.templates()
    return await with_causes(database, await found.to_list(50), templates, _lang(request).code)


@router.get("/orders/{order_no}/explain")
async def explain_order(request: Request, order_no: str, key: Reader) -> dict[str, Any]:
    """Which rules of the current rule set fire for the order (with the figures it was tagged
    with), and why, in the staff's language."""
    document = await database_of(request)["orders"].find_one({"order_no": order_no})
    if document is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_no!r}")
    record = OrderRecord.from_document(document)
    rules = tagger_of(request).rules.current
    facts = order_facts(record.order, record.figures, record.status)
    code = _lang(request).code
    words = reason_templates(rules).in_language(code, reason_labels(code))
    verdicts = [
        {
            "rule_id": verdict.rule_id,
            "version": verdict.version,
            "fires": verdict.decision is not None,
            "matches": verdict.matches,
            "tag": verdict.tag,
            "reason": in_language(words, verdict.decision) if verdict.decision else None,
        }
        for verdict in explain(rules, facts)
    ]
    return {"order_no": order_no, "rules": verdicts}


def in_language(words: ReasonTemplates | TranslatedReasons, decision: Decision) -> str:
    """The decision's reason in the words' language (as decided when it cannot be re-read)."""
    args = words.args_of(decision.rule_id, decision.rule_version, decision.reason)
    shown = None if args is None else words.reason(decision.rule_id, decision.rule_version, args)
    return shown or decision.reason


# ── reports the Tag API lacks ─────────────────────────────────────────────────────────


@router.get("/reports/rule-hits")
async def rule_hits(request: Request, key: Reader) -> list[dict[str, Any]]:
    """How many orders carry a tag each rule gave (manual tags counted as ``manual``), with
    what the rule gives: its tag, else its family (a rule naming its tags from a fact), so the
    page says it in the reader's words."""
    rules = tagger_of(request).rules.current
    gives: dict[str, dict[str, str | None]] = {
        rule.id: {"tag": rule.tag, "family": rule.family} for rule in rules.rules
    }
    gives |= {
        f"default.{family.name}": {"tag": family.default, "family": family.name}
        for family in rules.families
        if family.default
    }
    empty = {"tag": None, "family": None}
    return [
        {**row, **gives.get(row["rule_id"], empty)}
        for row in await rule_hit_counts(database_of(request))
    ]
