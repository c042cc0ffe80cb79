"""The gateway's own app (``gateway.main.create_app``: its mount, its middleware) serves the /verify page as
the page expects (see docs/design/verify-page.md): the committed bundle, a redirect that keeps the page's
relative URLs working and never names a host the request chose."""

from __future__ import annotations

import asyncio
import threading

import httpx

from gateway.core.config import GatewaySettings
from gateway.main import create_app
from tests.kit.webui import STATIC


def _fetch(settings: GatewaySettings, requests: list[tuple[str, dict[str, str]]]) -> list[httpx.Response]:
    """The answers of the gateway app built by its factory (its lifespan, which opens the database and the
    chain, does not run: static files need neither)."""
    app = create_app(settings)

    async def fetch() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return [await client.get(p, headers=h, follow_redirects=False) for p, h in requests]

    # On a thread of its own: the browser tests' sync API keeps an event loop running on this one.
    got: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: got.extend(asyncio.run(fetch())))
    worker.start()
    worker.join(30)
    assert len(got) == len(requests), "the ASGI requests did not complete"
    return got


def test_the_gateway_app_serves_the_committed_page() -> None:
    paths = ["/verify", "/verify/", "/verify/app.js", "/verify/style.css"]
    first, page, script, style = _fetch(GatewaySettings(), [(p, {}) for p in paths])
    # Without the slash the page's relative URLs (app.js, style.css) would resolve against "/".
    assert first.status_code in (301, 302, 307, 308)
    assert first.headers["location"] == "/verify/"
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="app.js"' in page.text and page.content == (STATIC / "index.html").read_bytes()
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert script.content == (STATIC / "app.js").read_bytes()  # the committed bundle, byte for byte
    assert style.headers["content-type"].startswith("text/css")


def test_the_page_redirect_never_names_the_requests_host() -> None:
    hostile = {"host": "evil.example"}
    (plain,) = _fetch(GatewaySettings(), [("/verify", hostile)])
    assert plain.headers["location"] == "/verify/"
    settings = GatewaySettings(public_url="https://gw.example.cn/prov/")
    (public,) = _fetch(settings, [("/verify?x=1", hostile)])
    assert public.headers["location"] == "https://gw.example.cn/prov/verify/?x=1"
