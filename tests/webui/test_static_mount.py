"""The mount the gateway uses for the page (see docs/design/verify-page.md) serves it as the page expects."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from webui_support import STATIC


def test_static_mount_serves_the_page() -> None:
    app = FastAPI()
    app.mount("/verify", StaticFiles(directory=STATIC, html=True), name="verify")
    client = TestClient(app)

    # Without the slash the page's relative URLs (app.js, style.css) would resolve against "/".
    first = client.get("/verify", follow_redirects=False)
    assert first.status_code in (301, 302, 307, 308)
    assert first.headers["location"].endswith("/verify/")

    page = client.get("/verify/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="app.js"' in page.text
    script = client.get("/verify/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert client.get("/verify/style.css").headers["content-type"].startswith("text/css")
