"""The console's pages: server-rendered shells (language, person, role) whose small scripts read
the Tag API; sign-in, sign-out and the language switch."""

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import structlog
from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.console.deps import (
    current_session,
    database_of,
    sessions_of,
    settings_of,
    users_of,
)
from services.console.i18n import (
    LANG_COOKIE,
    LANGUAGES,
    Language,
    language,
    pick_language,
    tag_options,
)
from services.console.rule_words import in_words
from services.console.sessions import COOKIE, Session
from services.console.times import local_day, local_time
from services.console.users import Role, UserExists
from services.tagger.governance import refusal
from services.tagger.http.deps import tagger_of
from services.tagger.rule_tags import (
    fact_prefixes,
    fixed_rule_tags,
    given_to_customers,
)
from services.tagger.rules.schema import TAG_NAME
from shared.auth import Scope
from shared.money import money_text

log = structlog.get_logger("console")
router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["money"] = money_text  # {{ amount | money(currency) }}: 1,937.00 CNY
templates.env.globals["when"] = local_time  # {{ when(at) }}: the reader's time, as OT.when
templates.env.globals["day"] = local_day  # {{ day(at) }}: the reader's date, as OT.day
templates.env.globals["tag_options"] = (
    tag_options  # {% set listed = tag_options(names, tag_label) %}
)


def _lang(request: Request) -> Language:
    code = pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    return language(code)


def _safe_next(target: str | None, default: str = "/console/") -> str:
    """Only paths of this site after sign-in (no open redirect to another host); ``default``
    otherwise, the page of the site that asks (the support page's is ``/``)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.netloc or not parts.path:  # "/\t/evil.example": a tab the parser drops
        return default
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _render(
    request: Request, template: str, session: Session | None, **context: Any
) -> HTMLResponse:
    lang = _lang(request)
    scopes = session.role.scopes if session else set()
    free_tags = _free_tags(request, session)
    # the Tags page tells every reader free tags are allowed; the pages' checks
    # (BOOT.freeTags, BOOT.rulePrefixes) go to those who may tag
    free_tags_allowed = tagger_of(request).settings.tagger_allow_free_tags
    return templates.TemplateResponse(
        request,
        template,
        {
            "lang": lang,
            "t": lang.t,
            "word": lang.word,
            "session": session,
            "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "can_tag": Scope.TAG in scopes,
            "can_admin": Scope.ADMIN in scopes,
            "console_base": "",
            "alerts_url": settings_of(request).alerts_url,
            "free_tags": free_tags_allowed,
            "boot": json.dumps(
                {
                    "lang": lang.code,
                    "messages": lang.messages,
                    "labels": lang.labels,
                    "user": session.user if session else None,
                    "role": session.role.value if session else None,
                    "csrf": session.csrf if session else None,
                    "canTag": Scope.TAG in scopes,
                    "canAdmin": Scope.ADMIN in scopes,
                    "freeTagsAllowed": free_tags_allowed,
                    "freeTags": free_tags,
                    "rulePrefixes": _rule_prefixes(request, session),
                },
                ensure_ascii=False,
            ).replace("</", "<\\/"),
            **context,
        },
    )


def _free_tags(request: Request, session: Session | None) -> dict[str, Any] | None:
    """What the pages need where people may add tags the catalog does not store, as the Tag API
    judges one (``manual.check_tags``, ``governance.refusal``): the tag-name pattern and each
    family whose tags (``risk:…``) the person's role may not add, with the roles that may (the
    rules' prefixes: ``_rule_prefixes``, in either case). None where free tags are not allowed
    (``ORDERTAG_TAGGER_ALLOW_FREE_TAGS``) or the reader may not tag (no ``Scope.TAG``: a
    viewer, or no session), who is offered nothing to add."""
    tagger = tagger_of(request)
    if not tagger.settings.tagger_allow_free_tags or session is None:
        return None
    if Scope.TAG not in session.role.scopes:
        return None
    families = tagger.commands.families
    role = session.role.value
    closed = {
        name: list(found.allowed)
        for name in families
        if (found := refusal(f"{name}:x", "add", role, {}, families)) is not None
    }
    return {"pattern": TAG_NAME, "closedFamilies": closed}


def _rule_prefixes(request: Request, session: Session | None) -> list[str] | None:
    """The prefixes only the rules name tags under (``status:``, ``category:``), which the Tag
    API refuses by hand free tags or not (``manual.check_tags``): the pages check a typed name
    against them before anything is sent, so the batch bar makes no catalog tag for a name it
    may not add. None for a reader who may not tag (no ``Scope.TAG``)."""
    if session is None or Scope.TAG not in session.role.scopes:
        return None
    return fact_prefixes(tagger_of(request).rules.current)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/console/", status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/console/login")
async def login_page(request: Request, next: str = "/console/") -> HTMLResponse:
    if settings_of(request).local:
        await _ensure_local_user(request)
    return login_form(request, next)


def login_form(
    request: Request, next: str, error: str | None = None, status_code: int = status.HTTP_200_OK
) -> HTMLResponse:
    """The sign-in page: local accounts, and the company's provider when one is configured."""
    settings = settings_of(request)
    response = _render(
        request,
        "login.html",
        None,
        next=_safe_next(next),
        local=settings.local,
        local_user=settings.console_local_user,
        local_password=settings.console_local_password.get_secret_value(),
        oidc_label=settings.console_oidc_label if settings.oidc else None,
        error=_lang(request).t(error) if error else None,
    )
    response.status_code = status_code
    return response


def signed_in(request: Request, cookie: str, next: str) -> RedirectResponse:
    """Off to where the person was going, with the session's cookie."""
    settings = settings_of(request)
    redirect = RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)
    redirect.set_cookie(
        COOKIE,
        cookie,
        max_age=int(settings.console_session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=not settings.local,
        path="/",
        domain=settings.console_cookie_domain,  # the support page's host too, when it is set
    )
    return redirect


async def _ensure_local_user(request: Request) -> None:
    """Locally the sign-in page names an admin account; it exists from the first visit."""
    settings, users = settings_of(request), users_of(request)
    await users.ensure_indexes()
    if not await users.exists(settings.console_local_user):
        with contextlib.suppress(UserExists):  # another process created it first
            await users.create(
                settings.console_local_user,
                Role.ADMIN,
                settings.console_local_password.get_secret_value(),
            )


@router.post("/console/login")
async def sign_in(
    request: Request,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = "/console/",
) -> Response:
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.url.netloc:  # login CSRF
        return Response("sign-in from another site refused", status.HTTP_403_FORBIDDEN)
    user = await users_of(request).verify(name, password)
    if user is None:
        log.info("sign_in_refused", user=name)
        return login_form(request, next, "login.failed", status.HTTP_401_UNAUTHORIZED)
    cookie, _ = await sessions_of(request).open(user)
    log.info("signed_in", user=user.name, role=user.role.value)
    return signed_in(request, cookie, next)


@router.post("/console/logout")
async def sign_out(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    session = await current_session(request)
    if session is not None and csrf == session.csrf:
        await sessions_of(request).revoke(request.cookies[COOKIE])
        log.info("signed_out", user=session.user)
    redirect = RedirectResponse("/console/login", status.HTTP_303_SEE_OTHER)
    domain = settings_of(request).console_cookie_domain
    redirect.delete_cookie(COOKIE, path="/", domain=domain)
    if domain is not None:  # and one set on this host alone before the domain was configured
        redirect.delete_cookie(COOKIE, path="/")
    return redirect


def language_switched(
    code: str, next: str, cookie_domain: str | None, home: str = "/console/"
) -> RedirectResponse:
    """Back to ``next`` (a path of this site, else ``home``) in the language picked, on every
    page that reads the console's language cookie (the support page's host too, with a cookie
    domain)."""
    redirect = RedirectResponse(_safe_next(next, home), status.HTTP_303_SEE_OTHER)
    if code in LANGUAGES:
        redirect.set_cookie(
            LANG_COOKIE,
            code,
            max_age=365 * 86400,
            samesite="lax",
            path="/",
            domain=cookie_domain,
        )
    return redirect


@router.get("/console/lang/{code}")
async def switch_language(request: Request, code: str, next: str = "/console/") -> Response:
    return language_switched(code, next, settings_of(request).console_cookie_domain)


@router.get("/console/alerts")
async def alerts_page(request: Request) -> RedirectResponse:
    """The live support page, on the notifier's origin: a sign-in started there comes back with
    ``next=/console/alerts`` (a path of this site, as every ``next``), and only ever to the page
    configured here, never to an address taken from the request."""
    return RedirectResponse(settings_of(request).alerts_url, status.HTTP_303_SEE_OTHER)


async def page_session(request: Request) -> Session:
    """The signed-in person a page is for, else a 303 to the sign-in page (coming back here
    afterwards). A dependency of every page: resolved before the page's route runs, so a
    visitor without a session is sent away before anything is read for the page (not even
    whether the order or customer asked for exists)."""
    session = await current_session(request)
    if session is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(
            status.HTTP_303_SEE_OTHER,
            "sign in first",
            headers={"Location": f"/console/login?next={quote(here, safe='/')}"},
        )
    return session


PageSession = Annotated[Session, Depends(page_session)]


def _page(
    request: Request,
    session: Session,
    template: str,
    status_code: int = status.HTTP_200_OK,
    **context: Any,
) -> Response:
    """The page for a signed-in person (``status_code``: 404 for a page about nothing)."""
    response = _render(request, template, session, **context)
    response.status_code = status_code
    return response


@router.get("/console/")
async def orders_page(request: Request, session: PageSession) -> Response:
    return _page(request, session, "orders.html", page="orders")


@router.get("/console/orders/{order_no}")
async def order_page(request: Request, session: PageSession, order_no: str) -> Response:
    found = await database_of(request)["orders"].find_one({"order_no": order_no}, {"_id": 1})
    if found is None:
        return _page(
            request,
            session,
            "order.html",
            status.HTTP_404_NOT_FOUND,
            page="orders",
            order_no=order_no,
            missing=True,
        )
    # how long a rule's tag lasts ("lasts while order status is one of [Pending, Processing]"),
    # per rule: the condition inside the page's sentence
    lang = _lang(request)
    holds = {
        rule.id: in_words(rule.holds_while, lang.code, opens_sentence=False)
        for rule in tagger_of(request).rules.current.rules
        if rule.holds_while is not None
    }
    return _page(
        request,
        session,
        "order.html",
        page="orders",
        order_no=order_no,
        holds=json.dumps(holds, ensure_ascii=False).replace("</", "<\\/"),
    )


@router.get("/console/tags")
async def tags_page(request: Request, session: PageSession) -> Response:
    rules = tagger_of(request).rules.current
    # a family whose every tag only customer rules give sits on customers (lifecycle)
    on_customers = {
        family.name
        for family in rules.families
        if (named := [tag.name for tag in rules.tags if tag.family == family.name])
        and all(given_to_customers(name, rules) for name in named)
    }
    families = [{**f.model_dump(), "on_customers": f.name in on_customers} for f in rules.families]
    # rename and merge are refused for tags the rules give: the page offers them only for others
    rule_tags = sorted(fixed_rule_tags(rules))
    rule_prefixes = fact_prefixes(rules)
    max_tags = tagger_of(request).settings.tagger_max_tags_per_order
    return _page(
        request,
        session,
        "tags.html",
        page="tags",
        families=families,
        max_tags=max_tags,
        rule_tags=json.dumps({"tags": rule_tags, "prefixes": rule_prefixes}).replace("</", "<\\/"),
    )


@router.get("/console/reports")
async def reports_page(request: Request, session: PageSession) -> Response:
    return _page(request, session, "reports.html", page="reports")


@router.get("/console/rules")
async def rules_page(request: Request, session: PageSession) -> Response:
    from services.console.rule_table import customer_rule_rows, rule_rows

    book = tagger_of(request).rules
    # one snapshot, taken before any await: the book may follow a rollback meanwhile, and a
    # table of one version labelled with the next is one the page then never refreshes
    rules, version = book.current, book.version
    lang = _lang(request)
    hits = (await tagger_of(request).rule_hits.get()).value
    shown = rule_rows(rules, lang, hits.orders)
    customer_rules = customer_rule_rows(rules, lang, hits.customers)
    return _page(
        request,
        session,
        "rules.html",
        page="rules",
        rules=shown,
        customer_rules=customer_rules,
        rules_version=version,
    )
