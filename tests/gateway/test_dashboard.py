"""The supervision dashboard (issue 21): its data for auditors and regulators from a real gateway, and the
page in Debian's Chromium (headless) with the network's records: charts drawn (screenshots in
test-artifacts/webui/, checked for non-empty chart areas), numbers that open the records behind them, zh-CN
and English; and the /verify page opened from a certificate's QR code verifies that record."""

from __future__ import annotations

import io
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.kit.gateway import Harness, hj212_packets, party_meeting, rx_issue, tamper_signature, trust_path
from tests.kit.webui import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.timeout(400)
TOKEN_KEY = "shancheng.verify.token"


@pytest.fixture(scope="module")
def seeded(harness: Harness) -> dict[str, str]:
    """Records of three domains today, anchored, and one forged submission refused."""
    rx = "RXD" + secrets.token_hex(4)
    ids = {
        "rx": harness.client("hospital-1").submit("rx.issue", rx_issue(rx)).json()["id"],
        "env": harness.client("station-1").submit("env.reading", hj212_packets(1)[0]).json()["id"],
        "party": harness.client("party-branch")
        .submit("party.record", party_meeting("BR-D" + secrets.token_hex(3), "MTG-1"))
        .json()["id"],
    }
    branch = harness.client("party-branch")
    forged = branch.post(tamper_signature(branch.body("party.record", party_meeting("BR-DF", "MTG-F"))))
    assert forged.json()["error"]["code"] == "SIGNATURE_INVALID"
    for rid in ids.values():
        harness.wait_status(rid, "anchored", timeout=90)
    return ids


def test_dashboard_data_for_supervisors_only(harness: Harness, seeded: dict[str, str]) -> None:
    regulator = harness.client("regulator")
    r = regulator.get("/api/v1/dashboard/summary", params={"days": 3})
    assert r.status_code == 200, r.text
    doc = r.json()
    today = datetime.now(UTC).date().isoformat()
    assert doc["days"][-1] == today and len(doc["days"]) == 3
    counts = {(c["domain"], c["day"]): c["count"] for c in doc["records"]}
    assert all(counts.get((d, today), 0) >= 1 for d in ("rx", "env", "party")), counts
    assert {"kind": "party.record", "code": "SIGNATURE_INVALID"}.items() <= next(
        i for i in doc["refusals"]["items"] if i["code"] == "SIGNATURE_INVALID"
    ).items()
    assert any(s["subject"].startswith("station:") for s in doc["subjects"] if s["domain"] == "env")
    p = doc["progress"]
    assert p["anchored_size"] >= 1 and p["tree_size"] >= p["anchored_size"] and "witnesses" in p
    # Each number opens the records behind it: the day's rx records hold the one submitted.
    page = regulator.get("/api/v1/dashboard/records", params={"domain": "rx", "day": today})
    assert page.status_code == 200 and seeded["rx"] in [i["id"] for i in page.json()["items"]]
    assert len(page.json()["items"]) == counts[("rx", today)] or page.json()["next_cursor"] is not None
    # Bad input: a clear 422; other roles: 403; no token: 401.
    bad = regulator.get("/api/v1/dashboard/records", params={"domain": "nope", "day": today})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "REQUEST_INVALID"
    bad = regulator.get("/api/v1/dashboard/records", params={"domain": "rx", "day": "2026-1-1"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "day"
    for org in ("hospital-1", "log-operator"):
        r = harness.client(org).get("/api/v1/dashboard/summary")
        assert r.status_code == 403 and r.json()["error"]["code"] == "ROLE_FORBIDDEN", org
    assert harness.client("auditor").get("/api/v1/dashboard/summary").status_code == 200
    assert harness.http.get("/api/v1/dashboard/summary").status_code == 401


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is absent: install Debian's chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _page(browser: Browser, harness: Harness, locale: str, org: str = "regulator") -> tuple[Page, list[str]]:
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000})
    context.add_init_script(f"sessionStorage.setItem({TOKEN_KEY!r}, {harness.tokens[org]!r})")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return page, errors


def _inked(png: bytes) -> float:
    """Share of a screenshot's pixels that are not the background (white)."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("L")
    pixels = list(img.getdata())
    return sum(1 for v in pixels if v < 235) / len(pixels)


def test_dashboard_page_draws_every_chart_in_chinese_and_english(
    browser: Browser, harness: Harness, seeded: dict[str, str]
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = _page(browser, harness, "zh-CN")
    page.goto(f"{harness.server.url}/dashboard/")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "监管看板"
    page.screenshot(path=str(ARTIFACTS / "dashboard-zh.jpg"), full_page=True, type="jpeg", quality=85)
    for name in ("records", "refusals", "subjects", "lag"):
        canvas = page.locator(f"#chart-{name}")
        shot = canvas.screenshot(path=str(ARTIFACTS / f"dashboard-zh-{name}.png"))
        assert _inked(shot) > 0.01, f"chart {name} is empty"
    # The refusal of the forged signature is there, flagged as such.
    row = page.locator("#table-refusals tr[data-code=SIGNATURE_INVALID]")
    assert "伪造签名" in row.inner_text()
    # A number opens the records behind it, each linking to the /verify page's look-up.
    today = datetime.now(UTC).date().isoformat()
    page.click(f"#table-records button[data-domain=rx][data-day='{today}']")
    link = page.locator(f"#drill a[href='/verify/?q={seeded['rx']}']")
    link.wait_for(timeout=10_000)
    # English on the switch, charts drawn again.
    page.click("button[data-lang=en]")
    assert page.locator("h1").inner_text() == "Supervision dashboard"
    assert page.locator("html").get_attribute("lang") == "en"
    assert "forged signature" in page.locator("#table-refusals tr[data-code=SIGNATURE_INVALID]").inner_text()
    assert _inked(page.locator("#chart-records").screenshot()) > 0.01
    page.screenshot(path=str(ARTIFACTS / "dashboard-en.jpg"), full_page=True, type="jpeg", quality=85)
    assert errors == []
    # An English browser gets English; a hospital's token gets the refusal, and no charts.
    page, errors = _page(browser, harness, "en-US", org="hospital-1")
    page.goto(f"{harness.server.url}/dashboard/")
    page.locator("#status.error").wait_for(timeout=10_000)
    assert page.locator("h1").inner_text() == "Supervision dashboard"
    assert "auditors and regulators" in page.locator("#status").inner_text()
    assert page.locator("#panels").is_hidden()


def test_certificate_qr_opens_the_verify_page_on_that_record(
    browser: Browser, harness: Harness, seeded: dict[str, str], tmp_path: Path
) -> None:
    import zxingcpp
    from PIL import Image

    rid = seeded["env"]
    pdf = tmp_path / "cert.pdf"
    pdf.write_bytes(harness.client("regulator").get(f"/api/v1/records/{rid}/certificate").content)
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm is not None, "install Debian's poppler-utils"
    subprocess.run([pdftoppm, "-r", "110", "-png", str(pdf), str(tmp_path / "p")], check=True)
    (found,) = zxingcpp.read_barcodes(Image.open(next(tmp_path.glob("p-*.png"))))
    url = found.text
    assert url == f"{harness.server.url}/verify/?q={rid}"
    page, errors = _page(browser, harness, "zh-CN")
    page.goto(url)
    page.locator(".verdict[data-verdict]").wait_for(timeout=20_000)
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    # With the network's trust file the record the certificate names is verified in the browser.
    page.set_input_files("#trust", str(trust_path(harness.network)))
    page.locator(".verdict[data-verdict=verified]").wait_for(timeout=20_000)
    assert rid in page.locator("#results").inner_text()
    page.screenshot(path=str(ARTIFACTS / "verify-from-qr-zh.jpg"), full_page=True, type="jpeg", quality=85)
    assert errors == []
