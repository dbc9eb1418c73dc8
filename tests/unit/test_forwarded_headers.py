"""Behind the ingress or a TLS proxy a service sees the proxy's address and http: it believes the
proxy's X-Forwarded-For and X-Forwarded-Proto only from ``ORDERTAG_FORWARDED_ALLOW_IPS``, through
uvicorn configured as ``shared.serve`` configures it."""

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from pydantic import ValidationError

from shared.serve import proxy_options
from shared.settings import Settings

PROXY = "10.244.3.7"  # an ingress controller's pod
FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def seen_by_the_app() -> FastAPI:
    app = FastAPI()

    @app.get("/who")
    async def who(request: Request) -> dict[str, str | None]:
        client = request.client.host if request.client else None
        return {"client": client, "scheme": request.url.scheme}

    return app


async def seen_from(peer: str, settings: Settings) -> dict[str, str]:
    """What the app sees of a request the peer sends with the proxy's headers, through the
    middleware uvicorn puts in front of it with these settings."""
    config = uvicorn.Config(seen_by_the_app(), **proxy_options(settings))
    config.load()
    transport = httpx.ASGITransport(app=config.loaded_app, client=(peer, 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://tagger") as client:
        answer: dict[str, str] = (await client.get("/who", headers=FORWARDED)).json()
    return answer


async def test_a_trusted_proxys_forwarded_client_and_scheme_are_used() -> None:
    settings = Settings(forwarded_allow_ips="10.244.0.0/16")

    assert await seen_from(PROXY, settings) == {"client": "203.0.113.9", "scheme": "https"}


async def test_forwarded_headers_from_a_peer_that_is_not_a_trusted_proxy_are_ignored() -> None:
    behind_the_ingress = Settings(forwarded_allow_ips="10.244.0.0/16")

    assert await seen_from("192.0.2.50", behind_the_ingress) == {
        "client": "192.0.2.50",
        "scheme": "http",
    }
    # by default nobody is trusted, not even a local process (uvicorn's own default trusts it)
    assert await seen_from("127.0.0.1", Settings()) == {"client": "127.0.0.1", "scheme": "http"}


def test_the_setting_takes_addresses_and_networks_and_refuses_what_would_never_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERTAG_FORWARDED_ALLOW_IPS", "10.244.0.0/16, 172.30.80.1,fd00::/8")
    assert Settings().forwarded_allow_ips == ("10.244.0.0/16", "172.30.80.1", "fd00::/8")
    monkeypatch.setenv("ORDERTAG_FORWARDED_ALLOW_IPS", "")
    assert Settings().forwarded_allow_ips == ()
    for bad in ("10.244.0.1/16", "ingress-nginx", "*", "10.0.0.256"):
        monkeypatch.setenv("ORDERTAG_FORWARDED_ALLOW_IPS", bad)
        with pytest.raises(ValidationError, match="forwarded_allow_ips"):
            Settings()
