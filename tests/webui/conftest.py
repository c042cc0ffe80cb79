"""Browser tests of the /verify page: Playwright (Python) driving Debian's Chromium, no browser download.

The page is served from ``gateway/static/verify`` by a small local server that also answers the two gateway
endpoints the page calls, from the golden files in ``tests/assets/bundles``, so these tests do not need
the gateway. Screenshots go to ``test-artifacts/webui/`` (git-ignored).
"""

from __future__ import annotations

import json
import mimetypes
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

# The real network of test_verify_page_chain.py (node, contracts, gateway), started only when asked for.
from tests.kit.network import backend, deployed, engine, network, start_harness  # noqa: F401
from tests.kit.webui import BUNDLES, CHROMIUM, CHROMIUM_ARGS, HISTORY_PAGE, STATIC, TOKEN, PageProbe

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage

    from devnet.engines import EngineHandle
    from provenance.manifest import Manifest
    from tests.kit.gateway import Harness

_RECORD = re.compile(r"^/api/v1/records/([^/]+)/bundle$")
_SUBJECT = re.compile(r"^/api/v1/subjects/([^/]+)/records$")


def _fixture() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((BUNDLES / "gateway-fixture.json").read_text("utf-8"))
    return data


class _Handler(BaseHTTPRequestHandler):
    """Static files under /verify/ and the gateway's two read endpoints, from golden data."""

    fixture: ClassVar[dict[str, Any]] = {}

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, doc: Any) -> None:
        self._send(status, json.dumps(doc, ensure_ascii=False).encode("utf-8"), "application/json")

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"error": {"code": code, "message": message, "details": {}}})

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/verify":
            self._send(307, b"", "text/plain", {"Location": "/verify/"})
            return
        if path.startswith("/verify/"):
            name = path.removeprefix("/verify/") or "index.html"
            file = (STATIC / name).resolve()
            if file.parent != STATIC.resolve() or not file.is_file():
                self._error(404, "NOT_FOUND", f"no file {name}")
                return
            ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            if ctype.startswith("text/") or ctype.endswith("javascript"):
                ctype += "; charset=utf-8"
            self._send(200, file.read_bytes(), ctype)
            return
        if path == "/api/v1/chain":  # a gateway that suggests no chain node: the page stays offline
            self._json(200, {"rpc_url": None})
            return
        if path.startswith("/api/") and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._error(401, "AUTH_REQUIRED", "an API token is required: Authorization: Bearer <token>")
            return
        if m := _RECORD.match(path):
            bundle = self.fixture["bundles"].get(unquote(m.group(1)))
            if bundle is None:
                self._error(404, "NOT_FOUND", f"no record {unquote(m.group(1))}")
            else:
                self._json(200, bundle)
            return
        if m := _SUBJECT.match(path):
            # The gateway's pagination: ?after=<cursor>, next_cursor null on the last page.
            subject = unquote(m.group(1))
            after = int(parse_qs(urlsplit(self.path).query).get("after", ["0"])[0])
            mode = self.fixture.get("pagination", {}).get(subject)
            if mode is not None:  # a gateway's listing that lies about its pages (second attack, 4)
                self._json(200, _lying_page(subject, after, mode, self.fixture))
                return
            items = self.fixture["subjects"].get(subject, [])
            page = items[after : after + HISTORY_PAGE]
            more = after + HISTORY_PAGE < len(items)
            doc = {"subject": subject, "items": page, "next_cursor": after + HISTORY_PAGE if more else None}
            self._json(200, doc)
            return
        self._error(404, "NOT_FOUND", f"no route {path}")


def _lying_page(subject: str, after: int, mode: str, fixture: dict[str, Any]) -> dict[str, Any]:
    """A page of gateway-fixture.json's "pagination" modes: "stuck" (next_cursor 1 whatever was asked),
    "empty-more" (no records, a next_cursor), "endless" (an id of its own on every page, always more)."""
    real = fixture["subjects"]["rx:golden-0001"][0] | {"subject": subject}
    if mode == "stuck":
        return {"subject": subject, "items": [real], "next_cursor": 1}
    if mode == "empty-more":
        return {"subject": subject, "items": [], "next_cursor": after + 1}
    assert mode == "endless", mode
    return {"subject": subject, "items": [real | {"id": f"{after:064x}"}], "next_cursor": after + 1}


@pytest.fixture(scope="session")
def harness(
    network: Manifest,  # noqa: F811 (the fixtures imported above)
    engine: EngineHandle,  # noqa: F811
    backend: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Harness]:
    """The page tests' own gateway on the session's network; on PostgreSQL in a database of its own (the
    gateway and security suites' gateways keep theirs: one database, one worker owner)."""
    h = start_harness(network, engine, backend, tmp_path_factory.mktemp("gateway"), pg_suffix="webui")
    yield h
    h.server.stop()
    h.http.close()


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """Base URL of a local server for the page and the fixture API."""
    _Handler.fixture = _fixture()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# Module scope, never session: a live sync Playwright keeps an event loop running on the main thread, so
# a session-wide browser would break any asyncio test (and another module's browser) that pytest's
# reordering by the session-scoped ``harness`` parameters interleaves with these modules.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium) to run these"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="the playwright Python package is not installed (pip install playwright)",
    )
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def probe(browser: Browser, server: str) -> Iterator[PageProbe]:
    """A fresh page (own storage) in English; fails the test on any console error or page exception."""
    yield from _probe(browser, server)


@pytest.fixture(scope="module")
def shared_probe(browser: Browser, server: str) -> Iterator[PageProbe]:
    """One page for a module's tests that only drop bundles on it (a page per case costs ~1 s)."""
    yield from _probe(browser, server)


@pytest.fixture
def gateway_probe(browser: Browser, harness: Harness) -> Iterator[PageProbe]:
    """A fresh page served by the real gateway (``harness``), not signed in."""
    yield from _probe(browser, harness.server.url, token=None)


def _probe(browser: Browser, server: str, *, token: str | None = TOKEN) -> Iterator[PageProbe]:
    context = browser.new_context(locale="en-US", viewport={"width": 1100, "height": 900})
    if token is not None:
        # Signed in, as a regulator would be after entering the token once in this tab.
        context.add_init_script(f"sessionStorage.setItem('shancheng.verify.token', {token!r})")
    page = context.new_page()
    p = PageProbe(page=page, base=server)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and not any(a in msg.text for a in p.allowed_errors):
            p.errors.append(f"console: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: p.errors.append(f"pageerror: {exc}"))
    try:
        yield p
    finally:
        context.close()
    assert p.errors == [], "the page logged errors"


@pytest.fixture
def page_probe(browser: Browser, harness: Harness) -> Iterator[PageProbe]:
    """The page as the session's real gateway serves it, no token, no trust file; fails on any unexpected
    console error."""
    yield from _probe(browser, harness.server.url, token=None)
