"""One sign-in for the console and the support page when they are on two hosts: the console's
cookies (session, language) go to ORDERTAG_CONSOLE_COOKIE_DOMAIN, a parent of both hosts; unset,
to the host that set them, as on one machine (the ports share a host's cookies)."""

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from services.console.i18n import LANG_COOKIE
from services.console.pages import signed_in
from services.console.sessions import COOKIE
from services.console.settings import ConsoleSettings
from services.notifier.app import create_app as create_notifier_app
from services.notifier.settings import NotifierSettings
from services.notifier.settings import Role as NotifierRole
from services.tagger.app import create_app as create_tagger_app
from services.tagger.settings import Role as TaggerRole
from services.tagger.settings import TaggerSettings

DOMAIN = "ordertag.example.com"
SUPPORT = f"https://support.{DOMAIN}/"
CONSOLE = f"https://api.{DOMAIN}"


def console(settings: ConsoleSettings) -> FastAPI:
    """The tagger's api role (the console mounted), no lifespan: nothing here needs a server."""
    app = create_tagger_app(TaggerSettings(tagger_roles=frozenset({TaggerRole.API})))
    app.state.console_settings = settings
    return app


def client(app: FastAPI, base_url: str) -> httpx.AsyncClient:
    """No lifespan: these answers need no Kafka, MongoDB or Redis (no cookie is sent to read)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=base_url)


def support_page(**settings: object) -> FastAPI:
    return create_notifier_app(NotifierSettings(notifier_role=NotifierRole.WEB, **settings))  # type: ignore[arg-type]


def set_cookie(headers: list[str], name: str) -> str:
    [header] = [h for h in headers if h.startswith(f"{name}=")]
    return header


def session_cookie(settings: ConsoleSettings) -> str:
    app = FastAPI()
    app.state.console_settings = settings
    request = Request({"type": "http", "app": app, "headers": [], "method": "POST", "path": "/"})
    answer = signed_in(request, "session.mac", "/console/alerts")
    return set_cookie(answer.headers.getlist("set-cookie"), COOKIE)


def test_the_session_cookie_goes_to_the_parent_domain_of_both_hosts() -> None:
    settings = ConsoleSettings(console_cookie_domain=DOMAIN, console_alerts_url=SUPPORT)

    cookie = session_cookie(settings)

    assert f"Domain={DOMAIN}" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie


def test_without_a_domain_the_session_cookie_stays_on_its_host_as_before() -> None:
    assert "Domain=" not in session_cookie(ConsoleSettings())


@pytest.mark.parametrize("domain", [DOMAIN, None])
async def test_signing_out_at_the_console_deletes_the_cookie_where_it_was_set(
    domain: str | None,
) -> None:
    settings = ConsoleSettings(console_cookie_domain=domain, console_alerts_url=SUPPORT)
    async with client(console(settings), CONSOLE) as browser:
        answer = await browser.post("/console/logout")

    deleted = [c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}=")]
    assert all("Max-Age=0" in c for c in deleted)
    # on the domain, and on the host alone (a cookie from before the domain was configured)
    assert sorted(f"Domain={DOMAIN}" in c for c in deleted) == (
        [False, True] if domain is not None else [False]
    )


async def test_signing_out_on_the_support_page_deletes_the_consoles_cookie_on_its_domain() -> None:
    app = support_page(console_cookie_domain=DOMAIN, notifier_console_url=CONSOLE)
    async with client(app, SUPPORT) as browser:
        answer = await browser.post("/console/logout")

    deleted = [c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}=")]
    assert all("Max-Age=0" in c for c in deleted)
    assert sorted(f"Domain={DOMAIN}" in c for c in deleted) == [False, True]


async def test_the_language_picked_on_either_host_is_the_others_too() -> None:
    settings = ConsoleSettings(console_cookie_domain=DOMAIN, console_alerts_url=SUPPORT)
    hosts = [
        (console(settings), CONSOLE, "/console/"),
        (support_page(console_cookie_domain=DOMAIN, notifier_console_url=CONSOLE), SUPPORT, "/"),
    ]
    for app, base_url, back in hosts:
        async with client(app, base_url) as browser:
            answer = await browser.get("/console/lang/en", params={"next": back})

        picked = set_cookie(answer.headers.get_list("set-cookie"), LANG_COOKIE)
        assert answer.headers["location"] == back
        assert picked.startswith(f"{LANG_COOKIE}=en;")
        assert f"Domain={DOMAIN}" in picked
        # a next off the site goes home: the support page's is "/", not the console's
        async with client(app, base_url) as browser:
            away = await browser.get("/console/lang/en", params={"next": "https://evil.example/"})
            tab = await browser.get("/console/lang/en", params={"next": "/\t/evil.example"})
        assert away.headers["location"] == tab.headers["location"] == back


@pytest.mark.parametrize(
    ("given", "kept"), [("", None), (".Ordertag.Example.com", DOMAIN), (DOMAIN, DOMAIN)]
)
def test_the_domain_is_a_host_name_and_empty_means_unset(given: str, kept: str | None) -> None:
    at_console = ConsoleSettings(console_cookie_domain=given, console_alerts_url=SUPPORT)
    at_support = NotifierSettings(console_cookie_domain=given, notifier_console_url=CONSOLE)

    assert at_console.console_cookie_domain == at_support.console_cookie_domain == kept


@pytest.mark.parametrize(
    "given",
    [
        "https://ordertag.example.com",
        "ordertag.example.com:443",
        "a b",
        "com",
        "localhost",
        "127.0.0.1",
    ],
)
def test_a_domain_that_is_not_a_host_name_is_refused(given: str) -> None:
    """Nor a top-level name or an address: browsers keep no cookie for them."""
    with pytest.raises(ValueError, match="ORDERTAG_CONSOLE_COOKIE_DOMAIN"):
        ConsoleSettings(console_cookie_domain=given, console_alerts_url=SUPPORT)
    with pytest.raises(ValueError, match="ORDERTAG_CONSOLE_COOKIE_DOMAIN"):
        NotifierSettings(console_cookie_domain=given, notifier_console_url=CONSOLE)


@pytest.mark.parametrize(
    "alerts",
    [
        "https://alerts.example.org/",
        "https://evilordertag.example.com/",  # ends like the domain, is not under it
        None,  # the default: the notifier on 127.0.0.1
    ],
)
def test_a_support_page_outside_the_domain_is_refused_at_start(alerts: str | None) -> None:
    """The console's session would never reach it: one sign-in would silently not be enough."""
    with pytest.raises(ValueError, match=r"ORDERTAG_CONSOLE_ALERTS_URL.*ORDERTAG_CONSOLE_COOKIE"):
        ConsoleSettings(console_cookie_domain=DOMAIN, console_alerts_url=alerts)


def test_a_console_outside_the_domain_is_refused_at_start_by_the_support_page() -> None:
    with pytest.raises(ValueError, match=r"ORDERTAG_NOTIFIER_CONSOLE_URL.*ORDERTAG_CONSOLE_COOKIE"):
        NotifierSettings(console_cookie_domain=DOMAIN, notifier_console_url="https://x.example.org")
    at_the_apex = NotifierSettings(
        console_cookie_domain=DOMAIN, notifier_console_url=f"https://{DOMAIN}"
    )
    assert at_the_apex.console_url == f"https://{DOMAIN}"
