"""The live support page and its JSON API: open alerts, live updates, acknowledge and claim.

The page is part of the staff console: the console's look and top bar (its templates and static
files), its sign-in (the console's session in Redis), its languages; order numbers open the
console's order detail. A login here with an API key or a configured user still works.

Forms and state-changing calls accept only same-origin requests (the ``Origin`` header, else
``Referer``, must name this site or ``ORDERTAG_NOTIFIER_ALLOWED_ORIGINS``); clients that send
neither (API keys from scripts) are not browsers and carry no ambient cookie risk.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.templating import Jinja2Templates

from services.console.i18n import LANG_COOKIE, language, pick_language
from services.console.pages import language_switched
from services.console.sessions import COOKIE as CONSOLE_COOKIE
from services.console.sessions import Session as ConsoleSession
from services.notifier.errors import AlertNotFound
from services.notifier.reasons import readable_causes, translations_of
from services.notifier.sessions import (
    COOKIE,
    SESSION_S,
    CurrentUser,
    console_session_of,
    console_sessions,
    find_user,
    make_session,
    session_of,
)
from shared.auth import Scope, find_key
from shared.http import error_responses as responses

STATIC = Path(__file__).parent / "static"
CONSOLE = Path(__file__).parents[1] / "console"
# the console's base template gives the page its top bar; the page itself lives here
templates = Jinja2Templates(directory=[STATIC, CONSOLE / "templates"])
SHARED_STATIC = {"console.css", "console.js"}


@dataclass(frozen=True, slots=True)
class KeyRole:
    """How someone who signed in here with an API key or page user shows in the top bar."""

    value: str = "key"


@dataclass(frozen=True, slots=True)
class KeyPerson:
    user: str
    role: KeyRole = KeyRole()
    csrf: str = ""


def same_origin(request: Request) -> None:
    """Refuse cross-site form posts and calls (CSRF): 403."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed:
        return
    origin = urlsplit(claimed)
    allowed = request.app.state.settings.notifier_allowed_origins
    if origin.netloc == request.headers.get("host") or f"{origin.scheme}://{origin.netloc}" in (
        allowed
    ):
        return
    raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site request refused")


SameOrigin = Depends(same_origin)
router = APIRouter()
api = APIRouter(prefix="/api", responses=responses(401, 422, 429, 503))


def _render(
    request: Request,
    template: str,
    person: ConsoleSession | KeyPerson | None,
    catalog: list[dict[str, Any]] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page in the console's look and in the reader's language (the console's cookie, else
    Accept-Language), as the console renders its own."""
    lang = language(
        pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    )
    console_url = request.app.state.settings.console_url
    boot = {
        "lang": lang.code,
        "messages": lang.messages,
        "labels": lang.labels,
        "user": person.user if person else None,
        "role": person.role.value if person else None,
        "csrf": (person.csrf or None) if person else None,
        "consoleUrl": console_url,
        "teams": request.app.state.notifier.routing.team_names_in(lang.code),
        "catalog": catalog or [],  # colours and a business's own labels, as the console's
    }
    return templates.TemplateResponse(
        request,
        template,
        {
            "lang": lang,
            "t": lang.t,
            "session": person,
            "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "console_base": console_url,
            "alerts_url": "/",
            "boot": json.dumps(boot, ensure_ascii=False).replace("</", "<\\/"),
            **context,
        },
    )


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(request: Request, failed: bool = False) -> HTMLResponse:
    return _render(request, "login.html", None, failed=failed, page="login")


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon")


@router.get("/favicon.svg", include_in_schema=False)
async def favicon_svg() -> FileResponse:
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


@router.post("/login", include_in_schema=False, dependencies=[SameOrigin])
async def login(
    request: Request,
    api_key: Annotated[str, Form(max_length=200)] = "",
    user: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    settings = request.app.state.settings
    address = request.client.host if request.client else "unknown"
    await request.app.state.notifier.login_limit.check(
        address, "too many sign-in attempts from this address"
    )
    name = None
    if api_key:
        key = find_key(api_key, settings.api_keys)
        if key and (Scope.ALERTS in key.scopes or Scope.ADMIN in key.scopes):
            name = key.name
    elif user and password:
        found = find_user(user, password, settings.notifier_page_users)
        name = found.name if found else None
    if name is None:
        return RedirectResponse("/login?failed=1", status.HTTP_303_SEE_OTHER)
    answer = RedirectResponse("/", status.HTTP_303_SEE_OTHER)
    answer.set_cookie(
        COOKIE,
        make_session(name, settings.notifier_session_secret),
        max_age=SESSION_S,
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
    )
    return answer


@router.post("/logout", include_in_schema=False, dependencies=[SameOrigin])
async def logout(request: Request) -> Response:
    session = await session_of(request)
    if session is not None:
        await request.app.state.notifier.revoked.revoke(session)
    answer = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    answer.delete_cookie(COOKIE, secure=request.app.state.settings.cookie_secure, httponly=True)
    return answer


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def support_page(request: Request) -> Response:
    person: ConsoleSession | KeyPerson | None = await console_session_of(request)
    if person is None:
        own = await session_of(request)
        person = KeyPerson(own.name) if own else None
    if person is None:
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    catalog = await request.app.state.notifier.tag_looks.all()
    return _render(request, "index.html", person, catalog, page="alerts")


@router.get("/static/alerts.js", include_in_schema=False)
async def alerts_script() -> FileResponse:
    return FileResponse(STATIC / "alerts.js", media_type="text/javascript")


@router.get("/console/static/{name}", include_in_schema=False)
async def console_static(name: str) -> FileResponse:
    """The console's stylesheet and shared script, so the page looks like the console even when
    the console's process is elsewhere."""
    if name not in SHARED_STATIC:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no static file {name!r}")
    return FileResponse(CONSOLE / "static" / name)


@router.get("/console-login", include_in_schema=False)
async def console_login(request: Request) -> RedirectResponse:
    """Sign in once at the console; its session is accepted here too. The console then sends
    the person back here through its own ``/console/alerts`` (it takes only paths of its site as
    ``next``, and leads that one to the support page it is configured with)."""
    return RedirectResponse(
        f"{request.app.state.settings.console_url}/console/login?next=%2Fconsole%2Falerts",
        status.HTTP_303_SEE_OTHER,
    )


# the top bar's language switch and sign-out, answered here as the console answers them
@router.get("/console/lang/{code}", include_in_schema=False)
async def switch_language(request: Request, code: str, next: str = "/") -> RedirectResponse:
    return language_switched(code, next, request.app.state.settings.console_cookie_domain, "/")


@router.post("/console/logout", include_in_schema=False, dependencies=[SameOrigin])
async def console_logout(request: Request) -> Response:
    """Sign out of the console (its session dies for every page) and of this page's own login."""
    cookie = request.cookies.get(CONSOLE_COOKIE)
    if cookie:
        await console_sessions(request).revoke(cookie)
    session = await session_of(request)
    if session is not None:
        await request.app.state.notifier.revoked.revoke(session)
    answer = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    answer.delete_cookie(COOKIE, secure=request.app.state.settings.cookie_secure, httponly=True)
    # where the console set it: on its domain when the console and this page share one
    domain = request.app.state.settings.console_cookie_domain
    answer.delete_cookie(CONSOLE_COOKIE, path="/", domain=domain)
    if domain is not None:  # and one set on the console's host alone before the domain was set
        answer.delete_cookie(CONSOLE_COOKIE, path="/")
    return answer


@api.get("/alerts")
async def list_alerts(
    request: Request,
    user: CurrentUser,
    status_: Annotated[str | None, Query(alias="status", pattern="^(open|acknowledged)$")] = None,
    severity: Annotated[str | None, Query(pattern="^(info|warning|critical)$")] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    team: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = await request.app.state.notifier.store.find_alerts(
        status=status_, severity=severity, tag=tag, team=team, limit=limit
    )
    return alerts


@api.get("/alerts/{alert_id}", responses=responses(404))
async def alert_detail(request: Request, alert_id: str, user: CurrentUser) -> dict[str, Any]:
    store = request.app.state.notifier.store
    alert = await store.get(alert_id)
    if alert is None:
        raise AlertNotFound(alert_id)
    code = pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    rule_reasons = request.app.state.notifier.reasons
    # the alert quotes its tags' reasons in the rules' own words: read them in the reader's
    order, own_words = await store.order_in_two_words(
        alert["order_no"], await rule_reasons.templates(code), await rule_reasons.templates(None)
    )
    translations = translations_of(own_words, order["tags"]) if order is not None else {}
    return {
        "alert": alert,
        "reasons": readable_causes(
            alert, translations, request.app.state.notifier.routing.whys_in(code)
        ),
        "order": order,
        "delivery_attempts": await store.attempts_of(alert_id),
    }


@api.post("/alerts/{alert_id}/ack", responses=responses(403, 404), dependencies=[SameOrigin])
async def acknowledge(request: Request, alert_id: str, user: CurrentUser) -> dict[str, Any]:
    return await _change(request, alert_id, user, "acknowledged")


@api.post("/alerts/{alert_id}/claim", responses=responses(403, 404), dependencies=[SameOrigin])
async def claim(request: Request, alert_id: str, user: CurrentUser) -> dict[str, Any]:
    return await _change(request, alert_id, user, "claimed")


async def _change(request: Request, alert_id: str, user: str, change: str) -> dict[str, Any]:
    notifier = request.app.state.notifier
    store = notifier.store
    updated = await (store.acknowledge if change == "acknowledged" else store.claim)(alert_id, user)
    if updated is None:
        raise AlertNotFound(alert_id)
    await notifier.live.publish(change, updated)  # best effort: the change is stored
    result: dict[str, Any] = updated
    return result


@api.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}},
)
async def live_events(request: Request, user: CurrentUser) -> StreamingResponse:
    live = request.app.state.notifier.live
    return StreamingResponse(
        live.follow(await live.subscribe()),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


router.include_router(api)
