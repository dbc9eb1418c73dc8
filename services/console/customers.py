"""The console's customer pages: the customers list (segments by tags and figures, with preset
and saved views as tabs, exports) and one customer (tags with reasons, figures, orders, alerts,
history).

Rendered on the server from the segments read model: the filters are a plain GET form, so a
view is its URL (bookmark it, share it). The team's saved views are the orders list's store
(``views.py``, list ``customers``), each tab with its count; saving, deleting and the customer
page's manual tags go through the APIs with the session's CSRF token (``customers.js``,
``customer.js``)."""

import contextlib
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from functools import partial
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response
from pydantic import ValidationError

from services.console.alert_causes import with_causes
from services.console.i18n import LANG_COOKIE, Language, language, pick_language
from services.console.pages import PageSession, _page
from services.console.sessions import Session
from services.console.views import SavedViews, ViewList
from services.tagger.customers.products import PRODUCT_FACT
from services.tagger.customers.segments import CustomerFilter, CustomerSort
from services.tagger.governance import refusals
from services.tagger.http.customers import customer_reasons, segments_of
from services.tagger.http.deps import tagger_of
from services.tagger.rule_tags import given_to_orders, named_from
from services.tagger.rules.schema import CatalogTag, Family
from shared.auth import Scope
from shared.errors import InvalidInput
from shared.events import TagSource
from shared.http import field_errors
from shared.reader_zone import NoSuchZone, ReaderZone, reader_zone
from shared.stored_order import DEFAULT_CURRENCY

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
# views every team starts with: a tab each (the filter is the URL, so any view can be bookmarked)
PRESET_VIEWS: list[tuple[str, dict[str, str]]] = [
    ("customers.view.all", {}),
    ("customers.view.high_spenders", {"all_tags": "high-spender"}),
    ("customers.view.frequent", {"all_tags": "frequent-buyer"}),
    ("customers.view.new", {"all_tags": "lifecycle:new"}),
    ("customers.view.lapsed", {"all_tags": "lifecycle:lapsed", "sort": "-spend"}),
    ("customers.view.early_adopters", {"all_tags": "early-adopter"}),
]
FILTER_KEYS = (
    "spend_min",
    "spend_max",
    "orders_min",
    "last_order_from",
    "last_order_to",
    "customer_id",
)


def _lang_code(request: Request) -> str:
    return pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


async def _tag_labels(
    request: Request, lang: Language, shown: Iterable[str]
) -> Callable[[str], str]:
    """The page's tag labels: the reader's words, and a tag named from a product
    (``product:sofa-1``) by the product's name and SKU as its orders give them, read for the
    tags the page shows (one read); a product without a stored name shows its tag's value."""
    rules = tagger_of(request).rules.current
    prefixes = [named.prefix for named in named_from(rules) if named.fact == PRODUCT_FACT]
    products = {
        tag: tag[len(prefix) :] for tag in shown for prefix in prefixes if tag.startswith(prefix)
    }
    found = await segments_of(request).products_named(products.values())
    named = {tag: found[slug] for tag, slug in products.items() if slug in found}
    return partial(lang.tag_label, named=named)


async def _colours(request: Request) -> dict[str, str]:
    catalog = await tagger_of(request).stores.store.catalog()
    return {name: tag.colour for name, tag in catalog.items()}


@router.get("/console/customers")
async def customers_page(
    request: Request,
    session: PageSession,
    all_tags: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006
    any_tags: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006
    none_tags: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006
    sort: CustomerSort = CustomerSort.SPEND,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    tz: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    query = request.query_params
    raw: dict[str, Any] = {
        "all_tags": [t for t in all_tags if t],
        "any_tags": [t for t in any_tags if t],
        "none_tags": [t for t in none_tags if t],
        **{key: query.get(key) for key in FILTER_KEYS if query.get(key)},
    }
    # a date picker gives a day: the whole day where the reader is (the page sends the zone's
    # name, or its offset; the list shows each last order's day there), at that day's offset
    reader = _reader(tz)
    for key in ("last_order_from", "last_order_to"):
        if key in raw and len(raw[key]) == 10:
            # else refused by the filter, as typed (a day past what a time holds: 9999-12-31
            # west of UTC is in year 10000 there)
            with contextlib.suppress(ValueError, OverflowError):
                day = date.fromisoformat(raw[key])
                start = key.endswith("from")
                edge = reader.day_starts(day) if start else reader.day_ends(day)
                raw[key] = edge.isoformat(timespec="seconds" if start else "milliseconds")
    lang = language(_lang_code(request))
    segments = segments_of(request)
    colours = await _colours(request)
    # what is wrong with the filter, as the Tag API would say it (errors[].field/problem): the
    # page words it in the reader's language, by the form's labels (customers.js)
    problems: list[dict[str, str]] = []
    stale_page = False  # a page link (cursor) from before the data or the sort changed
    customers: list[dict[str, Any]] = []
    next_cursor: str | None = None
    shown: dict[str, Any] | None = None  # the filter as a saved view stores it
    try:
        which = CustomerFilter.model_validate(raw)
        shown = which.model_dump(mode="json", exclude_defaults=True)
        customers, next_cursor = await segments.page(which, sort, PAGE_SIZE, cursor)
    except ValidationError as invalid:
        problems = field_errors(invalid.errors())
    except InvalidInput as invalid:
        stale_page = invalid.field == "cursor"
        problems = [] if stale_page else [{"field": invalid.field, "problem": invalid.problem}]
    saved = await SavedViews(tagger_of(request).stores.database).all_with_counts(ViewList.CUSTOMERS)
    plain = [(k, v) for k, v in query.multi_items() if k not in ("cursor", "tz") and v]
    zone = [("tz", reader.given)] if tz else []
    tag_names = _customer_filter_tags(request, colours, await segments.tags_in_use())
    return _page(
        request,
        session,
        "customers.html",
        page="customers",
        customers=customers,
        colours=colours,
        tag_label=await _tag_labels(request, lang, tag_names),
        currency=DEFAULT_CURRENCY,  # customer figures are summed in it
        values={k: query.get(k, "") for k in FILTER_KEYS},
        tags={"all_tags": all_tags, "any_tags": any_tags, "none_tags": none_tags},
        sort=sort.value,
        problems=problems,
        first_page=f"?{urlencode([*plain, *zone])}" if stale_page else None,
        next_url=f"?{urlencode([*plain, *zone, ('cursor', next_cursor)])}" if next_cursor else None,
        # the days as the reader meant them (the Tag API's export takes instants)
        export_query=urlencode(view_params(shown, sort.value) if shown is not None else plain),
        views=[(key, urlencode(params), _same_view(params, plain)) for key, params in PRESET_VIEWS],
        saved_views=[
            {
                **view,
                "query": urlencode(view_params(view["filter"], view["sort"])),
                "current": shown == view["filter"] and sort.value == view["sort"],
            }
            for view in saved
        ],
        current_filter=shown,
        tag_names=tag_names,
    )


def _reader(tz: str | None) -> ReaderZone:
    """The reader's zone as the form sent it; UTC when it sent none or one unknown here (the
    page still lists, as the form's dates say)."""
    try:
        return reader_zone(tz or "+00:00")
    except NoSuchZone:
        return reader_zone("+00:00")


def _customer_filter_tags(
    request: Request, catalog: Iterable[str], in_use: Iterable[str]
) -> list[str]:
    """The tags to filter customers by: every tag some customer carries, and the catalog's
    others that a customer can carry (no order rule gives them: 紧急 or 新订单 sits on orders,
    and a filter by it would only ever find no one)."""
    rules = tagger_of(request).rules.current
    return sorted({*in_use, *(name for name in catalog if not given_to_orders(name, rules))})


def view_params(stored: dict[str, Any], sort: str) -> list[tuple[str, str]]:
    """A saved customer filter as this page's query (tags repeated, as the form sends them)."""
    params: list[tuple[str, str]] = []
    for key, value in stored.items():
        params.extend((key, str(v)) for v in (value if isinstance(value, list) else [value]))
    return [*params, ("sort", sort)]


def _same_view(params: dict[str, str], plain: list[tuple[str, str]]) -> bool:
    shown = {k: v for k, v in plain if not (k == "sort" and v == CustomerSort.SPEND.value)}
    wanted = {k: v for k, v in params.items() if not (k == "sort" and v == "-spend")}
    return shown == wanted


@router.get("/console/customers/{customer_id}")
async def customer_page(request: Request, session: PageSession, customer_id: str) -> Response:
    code = _lang_code(request)
    lang = language(code)
    reasons = customer_reasons(request, code)
    segments = segments_of(request)
    customer = await segments.customer(customer_id, reasons)
    if customer is not None:
        templates = tagger_of(request).rules.templates()
        database = tagger_of(request).stores.database
        customer["alerts"] = await with_causes(database, customer["alerts"], templates, code)
    catalog = await tagger_of(request).stores.store.catalog()
    families = tagger_of(request).commands.families
    held = [tag["name"] for tag in customer["tags"]] if customer else []
    shown = held + ([entry["tag"] for entry in customer["history"]] if customer else [])
    return _page(
        request,
        session,
        "customer.html",
        status.HTTP_200_OK if customer else status.HTTP_404_NOT_FOUND,
        page="customers",
        customer_id=customer_id,
        customer=customer,
        colours={name: tag.colour for name, tag in catalog.items()},
        addable=_customer_tags(request, session, catalog, held=set(held)),
        removable=removable_tags(customer["tags"] if customer else [], session, catalog, families),
        tag_label=await _tag_labels(request, lang, shown),
        currency=DEFAULT_CURRENCY,  # customer figures are summed in it
    )


def _customer_tags(
    request: Request, session: Session, catalog: dict[str, CatalogTag], held: set[str]
) -> list[str]:
    """The tags the person may put on a customer by hand, as the Tag API decides a
    ``POST /customers/{id}/tags``: the catalog's stored, active ones, not one the rules name
    from the data (``prefers:beauty``, labelled or not: only they set it, 422), whose
    permissions let the person's role add them (else 403), that no order rule gives and the
    customer does not hold already (``held``). An order rule's tag says something of one
    order (urgent, return-order, risk:velocity), or of its customer as of that order (vip):
    on a customer it would not mean what it means on the orders."""
    rules = tagger_of(request).rules.current
    commands = tagger_of(request).commands
    families = commands.families
    role = session.role.value
    return [
        name
        for name, tag in sorted(catalog.items())
        if tag.active
        and name not in held
        and not commands.named_by_rules(name)
        and not given_to_orders(name, rules)
        and not refusals((name,), (), role, catalog, families)
    ]


def removable_tags(
    tags: Iterable[Mapping[str, Any]],
    session: Session,
    catalog: Mapping[str, CatalogTag],
    families: Mapping[str, Family],
) -> set[str]:
    """The customer's tags the person may remove by hand, as the Tag API decides a
    ``DELETE /customers/{id}/tags/{tag}``: only with the tag scope (401/403 otherwise), only
    a manual tag (one a rule gave follows the rule: 409), and only where the catalog's
    permissions (the tag's own, else its family's, else the defaults) let the person's role
    (403). The page offers a remove button on these and on no other."""
    if Scope.TAG not in session.role.scopes:
        return set()
    role = session.role.value
    return {
        tag["name"]
        for tag in tags
        if tag["source"] == TagSource.MANUAL
        and not refusals((), (tag["name"],), role, catalog, families)
    }
