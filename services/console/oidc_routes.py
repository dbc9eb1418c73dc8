"""The console's sign-in through the company's OpenID Connect provider: off to the provider,
and back with a code that becomes a console session (``services/console/oidc.py`` checks it)."""

import structlog
from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse, Response

from services.console.deps import oidc_of, sessions_of, settings_of
from services.console.oidc import STATE_COOKIE, OidcRefused, OidcUnavailable
from services.console.pages import login_form, signed_in

log = structlog.get_logger("console.oidc")
router = APIRouter(include_in_schema=False)
CALLBACK = "/console/login/oidc/callback"
RETRY_AFTER_S = "30"


def _callback_url(request: Request) -> str:
    configured = settings_of(request).console_oidc_redirect_url
    return configured or str(request.base_url).rstrip("/") + CALLBACK


def _unavailable(request: Request, next: str, error: OidcUnavailable) -> Response:
    log.warning("oidc_unavailable", error=str(error))
    unavailable = status.HTTP_503_SERVICE_UNAVAILABLE
    answer = login_form(request, next, "login.oidc.unavailable", unavailable)
    answer.headers["Retry-After"] = RETRY_AFTER_S
    return answer


@router.get("/console/login/oidc")
async def oidc_start(request: Request, next: str = "/console/") -> Response:
    oidc = oidc_of(request)
    if oidc is None:
        return RedirectResponse("/console/login", status.HTTP_303_SEE_OTHER)
    try:
        target, state = await oidc.start(_callback_url(request), next)
    except OidcUnavailable as error:
        return _unavailable(request, next, error)
    redirect = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    # Lax: sent on the provider's top-level redirect back, not on another site's requests
    redirect.set_cookie(
        STATE_COOKIE,
        state,
        max_age=600,
        httponly=True,
        samesite="lax",
        secure=not settings_of(request).local,
        path=CALLBACK,
    )
    return redirect


@router.get(CALLBACK)
async def oidc_callback(
    request: Request, state: str = "", code: str = "", error: str = ""
) -> Response:
    oidc = oidc_of(request)
    if oidc is None:
        return RedirectResponse("/console/login", status.HTTP_303_SEE_OTHER)
    try:
        if error or not code:  # the person declined, or the provider refused
            raise OidcRefused("login.oidc.refused", f"provider answered error={error!r}")
        user, next = await oidc.finish(code, state, request.cookies.get(STATE_COOKIE))
    except OidcUnavailable as failure:
        return _unavailable(request, "/console/", failure)
    except OidcRefused as refused:
        log.info("oidc_sign_in_refused", reason=refused.reason, detail=str(refused))
        answer = login_form(request, "/console/", refused.reason, status.HTTP_403_FORBIDDEN)
        answer.delete_cookie(STATE_COOKIE, path=CALLBACK)
        return answer
    cookie, _ = await sessions_of(request).open(user)
    log.info("signed_in", user=user.name, role=user.role.value, via="oidc")
    redirect = signed_in(request, cookie, next)
    redirect.delete_cookie(STATE_COOKIE, path=CALLBACK)
    return redirect
