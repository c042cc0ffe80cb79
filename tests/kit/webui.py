"""Paths and the page handle shared by the /verify browser tests (conftest.py and the test modules)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "gateway" / "static" / "verify"
BUNDLES = ROOT / "tests" / "assets" / "bundles"
ARTIFACTS = ROOT / "test-artifacts" / "webui"
CHROMIUM = Path("/usr/bin/chromium")
# The fixture API, like the gateway, wants an organisation's bearer token.
TOKEN = "regulator-test-token"
HISTORY_PAGE = 1  # a small page so that every history of two or more records is paginated
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class PageProbe:
    """A page plus the console errors and uncaught exceptions it produced."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list)
    allowed_errors: list[str] = field(default_factory=list)  # substrings of expected browser messages

    def open(self, query: str = "") -> None:
        self.page.goto(f"{self.base}/verify/{query}")
        self.page.wait_for_selector("html[lang]")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        # JPEG: half the time of PNG for a long page, and plenty for a test artifact.
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.jpg"), full_page=True, type="jpeg", quality=85)
