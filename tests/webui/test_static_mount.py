"""The mount the gateway uses for the page (see docs/design/verify-page.md) serves it as the page expects."""

from __future__ import annotations

import asyncio
import threading

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from webui_support import STATIC


def test_static_mount_serves_the_page() -> None:
    app = FastAPI()
    app.mount("/verify", StaticFiles(directory=STATIC, html=True), name="verify")

    async def fetch() -> dict[str, httpx.Response]:
        # httpx's ASGI transport (starlette's TestClient over httpx is deprecated).
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            paths = ("/verify", "/verify/", "/verify/app.js", "/verify/style.css")
            return {p: await client.get(p, follow_redirects=False) for p in paths}

    # On a thread of its own: the browser tests' sync API keeps an event loop running on this one.
    got: dict[str, httpx.Response] = {}
    worker = threading.Thread(target=lambda: got.update(asyncio.run(fetch())))
    worker.start()
    worker.join(30)
    assert got, "the ASGI requests did not complete"
    # Without the slash the page's relative URLs (app.js, style.css) would resolve against "/".
    first = got["/verify"]
    assert first.status_code in (301, 302, 307, 308)
    assert first.headers["location"].endswith("/verify/")
    page = got["/verify/"]
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="app.js"' in page.text
    script = got["/verify/app.js"]
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert got["/verify/style.css"].headers["content-type"].startswith("text/css")
