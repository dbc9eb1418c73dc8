"""The live support page and its JSON API: open alerts, live updates, acknowledge and claim."""

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from services.notifier.sessions import (
    COOKIE,
    SESSION_S,
    CurrentUser,
    find_user,
    make_session,
    read_session,
)
from shared.auth import Scope, find_key

STATIC = Path(__file__).parent / "static"
router = APIRouter()


def _page(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form() -> str:
    return _page("login.html")


@router.post("/login", include_in_schema=False)
async def login(
    request: Request,
    api_key: Annotated[str, Form(max_length=200)] = "",
    user: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    settings = request.app.state.settings
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
    )
    return answer


@router.post("/logout", include_in_schema=False)
async def logout() -> Response:
    answer = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    answer.delete_cookie(COOKIE)
    return answer


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def support_page(request: Request) -> Response:
    token = request.cookies.get(COOKIE)
    if not token or read_session(token, request.app.state.settings.notifier_session_secret) is None:
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    return HTMLResponse(_page("index.html"))


@router.get("/api/alerts")
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


@router.get("/api/alerts/{alert_id}")
async def alert_detail(request: Request, alert_id: str, user: CurrentUser) -> dict[str, Any]:
    store = request.app.state.notifier.store
    alert = await store.get(alert_id)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id!r}")
    attempts = await store.attempts.find({"alert_ids": alert_id}, {"_id": 0}).to_list(50)
    return {
        "alert": alert,
        "order": await store.order_of(alert["order_no"]),
        "delivery_attempts": attempts,
    }


@router.post("/api/alerts/{alert_id}/ack")
async def acknowledge(request: Request, alert_id: str, user: CurrentUser) -> dict[str, Any]:
    return await _change(request, alert_id, user, "acknowledged")


@router.post("/api/alerts/{alert_id}/claim")
async def claim(request: Request, alert_id: str, user: CurrentUser) -> dict[str, Any]:
    return await _change(request, alert_id, user, "claimed")


async def _change(request: Request, alert_id: str, user: str, change: str) -> dict[str, Any]:
    store = request.app.state.notifier.store
    updated = await (store.acknowledge if change == "acknowledged" else store.claim)(alert_id, user)
    if updated is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id!r}")
    await request.app.state.notifier.live.publish(change, updated)
    result: dict[str, Any] = updated
    return result


@router.get("/api/events")
async def live_events(request: Request, user: CurrentUser) -> StreamingResponse:
    live = request.app.state.notifier.live
    return StreamingResponse(
        live.follow(await live.subscribe()),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
