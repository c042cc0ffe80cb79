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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from provenance.demo_rx import fresh_code
from tests.kit.batches import submit_when_seen
from tests.kit.gateway import (
    Harness,
    env_batch,
    error_code,
    hj212_packets,
    hj212_series,
    party_meeting,
    register_station,
    rx_dispense,
    rx_issue,
    share_access,
    tamper_signature,
    trust_path,
)
from tests.kit.webui import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.timeout(400)
TOKEN_KEY = "shancheng.verify.token"


EXCEEDING = 3  # readings of the seeded batch over their limit (O3 1,000 µg/m³ against 200, 1-hour)


@pytest.fixture(scope="module")
def seeded(harness: Harness) -> dict[str, str]:
    """Records of three domains today, anchored; an env batch whose readings exceed their limit; a box
    dispensed twice (the second refused); a forged submission and an access without consent refused."""
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
    for _ in range(2):
        denied = harness.client("data-user").submit(
            "share.access", share_access("REQ-D" + secrets.token_hex(4), "0" * 64, "data-user")
        )
        assert error_code(denied) == "CONSENT_MISSING"
    # Ambient-air minute data over the O3 limit, a batch of a station of its own.
    mn = register_station(harness.network)
    start = (datetime.now(UTC) - timedelta(seconds=120)).replace(microsecond=0)
    items = hj212_series(
        mn, start, EXCEEDING, template="air-quality-minute-2051-flags.txt", vary=lambda i, p: None
    )
    batch = submit_when_seen(
        harness.client("station-1"),
        "env.batch",
        env_batch(items, mn, start, start + timedelta(seconds=EXCEEDING)),
    )
    assert batch.status_code == 202, batch.text
    # One box handed over twice: the second pharmacy is refused (回流药).
    shared = fresh_code()
    rx_first, rx_again = "RXD" + secrets.token_hex(4), "RXD" + secrets.token_hex(4)
    for rx in (rx_first, rx_again):
        assert harness.client("hospital-1").submit("rx.issue", rx_issue(rx)).status_code == 202
    first = harness.client("pharmacy-1").submit("rx.dispense", rx_dispense(rx_first, [shared, fresh_code()]))
    assert first.status_code == 202, first.text
    again = harness.client("pharmacy-2").submit("rx.dispense", rx_dispense(rx_again, [fresh_code(), shared]))
    assert error_code(again) == "TRACE_CODE_REUSED", again.text
    ids |= {"mn": mn, "batch": batch.json()["id"], "dispense": first.json()["id"], "box": shared}
    for key in ("rx", "env", "party", "batch", "dispense"):
        harness.wait_status(ids[key], "anchored", timeout=90)
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


def test_refusal_codes_and_domain_panels_open_what_is_behind_them(
    harness: Harness, seeded: dict[str, str]
) -> None:
    regulator = harness.client("regulator")
    doc = regulator.get("/api/v1/dashboard/summary", params={"days": 2}).json()
    refused = {(i["kind"], i["code"]) for i in doc["refusals"]["items"]}
    # A consent violation, a forged signature and a trace-code reuse are each counted under their code.
    assert {
        ("share.access", "CONSENT_MISSING"),
        ("party.record", "SIGNATURE_INVALID"),
        ("rx.dispense", "TRACE_CODE_REUSED"),
    } <= refused
    panels = {(p["domain"], p["name"]): p for p in doc["panels"]}
    stations = {c["key"]: c["count"] for c in panels[("env", "exceedances")]["counts"]}
    assert stations[seeded["mn"]] == EXCEEDING
    assert panels[("env", "exceedances")]["title"]["zh"] == "各监测站超标次数"
    reuse = {c["key"]: c["count"] for c in panels[("rx", "trace_reuse")]["counts"]}
    assert reuse.get("pharmacy-2", 0) >= 1

    # The exceedances behind the station's number, two a page: each names the batch holding its reading.
    path = "/api/v1/dashboard/panels/env/exceedances"
    seen, after = [], None
    while True:
        r = regulator.get(
            path, params={"key": seeded["mn"], "limit": 2, **({"after": after} if after else {})}
        )
        assert r.status_code == 200, r.text
        seen += r.json()["items"]
        after = r.json()["next_cursor"]
        if after is None:
            break
    assert len(seen) == EXCEEDING and {i["record_id"] for i in seen} == {seeded["batch"]}
    assert all(i["detail"].endswith("a05024 1000 > 200 (hour)") for i in seen), seen
    assert {i["subject"] for i in seen} == {f"station:{seeded['mn']}"} and seen[0]["org"] == "station-1"

    # Behind the pharmacy's reuse: the dispense that handed the box over first (the refusal never names it).
    items = regulator.get(
        "/api/v1/dashboard/panels/rx/trace_reuse", params={"key": "pharmacy-2", "limit": 100}
    ).json()["items"]
    mine = [i for i in items if i["detail"] == f"rx.dispense {seeded['box']}"]
    assert len(mine) == 1 and mine[0]["record_id"] == seeded["dispense"], items
    # Behind a refusal code: the refused submissions, with who sent them and what they were told.
    kept = regulator.get("/api/v1/dashboard/refusals", params={"code": "TRACE_CODE_REUSED"}).json()["items"]
    assert any(k["org"] == "pharmacy-2" and k["details"]["code"] == seeded["box"] for k in kept), kept
    # A page at a time, oldest first: the two accesses without consent of the seeded data are the last.
    pages: list[list[dict[str, Any]]] = []
    cursor = 0
    while cursor is not None:
        r = regulator.get(
            "/api/v1/dashboard/refusals", params={"code": "CONSENT_MISSING", "limit": 1, "after": cursor}
        )
        pages.append(r.json()["items"])
        cursor = r.json()["next_cursor"]
    assert all(len(p) == 1 for p in pages) and len(pages) >= 2
    seqs = [p[0]["seq"] for p in pages]
    assert seqs == sorted(set(seqs)) and {p[0]["org"] for p in pages[-2:]} == {"data-user"}
    forged = regulator.get(
        "/api/v1/dashboard/refusals", params={"code": "SIGNATURE_INVALID", "kind": "party.record"}
    ).json()["items"]
    assert forged and {k["org"] for k in forged} == {"party-branch"}

    # Bad input: 422 naming what; other roles: 403.
    bad = {
        "/api/v1/dashboard/panels/env/nope": ({"key": "X"}, "name"),
        "/api/v1/dashboard/panels/lab/exceedances": ({"key": "X"}, "domain"),
        "/api/v1/dashboard/panels/rx/trace_reuse": ({"key": "pharmacy-2", "after": "-1"}, "after"),
        path: ({"key": "not an MN!"}, "mn"),
        "/api/v1/dashboard/refusals": ({"code": "no such code"}, "code"),
    }
    for url, (params, field) in bad.items():
        r = regulator.get(url, params=params)
        assert r.status_code == 422 and error_code(r) == "REQUEST_INVALID", (url, r.text)
        assert r.json()["error"]["details"]["field"] == field, (url, r.text)
    for params in ({"key": "X", "limit": 0}, {}):
        assert error_code(regulator.get(path, params=params)) == "REQUEST_INVALID"
    for url, params in ((path, {"key": seeded["mn"]}), ("/api/v1/dashboard/refusals", {"code": "X"})):
        r = harness.client("station-1").get(url, params=params)
        assert r.status_code == 403 and error_code(r) == "ROLE_FORBIDDEN", url


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
    # The domains' panels, titled in Chinese, drawn with the seeded exceedances and reuse.
    for panel, title in (
        ("env-exceedances", "各监测站超标次数"),
        ("rx-trace_reuse", "追溯码重复使用（按药店）"),
    ):
        assert page.locator(f"#panel-{panel} h2").inner_text() == title
        shot = page.locator(f"#chart-{panel}").screenshot(path=str(ARTIFACTS / f"dashboard-zh-{panel}.png"))
        assert _inked(shot) > 0.01, f"chart {panel} is empty"
    # The refusals of the forged signature, of the access without consent and of the reused box are
    # there, flagged as such.
    for code, category in (
        ("SIGNATURE_INVALID", "伪造签名"),
        ("CONSENT_MISSING", "违反授权同意"),
        ("TRACE_CODE_REUSED", "追溯码重复使用"),
    ):
        assert category in page.locator(f"#table-refusals tr[data-code={code}]").first.inner_text()
    # The reuse count opens the refused attempts; the pharmacy's number on the panel opens the dispense
    # that handed the box over first; the station's number the batch holding the readings over the limit.
    page.click("#table-refusals button[data-code=TRACE_CODE_REUSED]")
    page.locator("#drill-refusals td", has_text=seeded["box"]).first.wait_for(timeout=10_000)
    assert "pharmacy-2" in page.locator("#drill-refusals").inner_text()
    page.click("#table-rx-trace_reuse button[data-key=pharmacy-2]")
    page.locator(f"#drill-rx-trace_reuse a[href='/verify/?q={seeded['dispense']}']").wait_for(timeout=10_000)
    page.click(f"#table-env-exceedances button[data-key={seeded['mn']}]")
    batch_links = page.locator(f"#drill-env-exceedances a[href='/verify/?q={seeded['batch']}']")
    batch_links.first.wait_for(timeout=10_000)
    assert batch_links.count() == EXCEEDING
    for drill in ("#drill", "#drill-refusals", "#drill-rx-trace_reuse", "#drill-env-exceedances"):
        assert "null" not in page.locator(drill).inner_text(), drill
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
    assert page.locator("#panel-env-exceedances h2").inner_text() == "Environmental exceedances per station"
    assert page.locator("#panel-rx-trace_reuse h2").inner_text() == "Trace-code reuse (by pharmacy)"
    for panel in ("env-exceedances", "rx-trace_reuse"):
        shot = page.locator(f"#chart-{panel}").screenshot(path=str(ARTIFACTS / f"dashboard-en-{panel}.png"))
        assert _inked(shot) > 0.01, f"chart {panel} is empty"
    # The open drill-downs follow the language.
    assert "Refused at" in page.locator("#drill-refusals").inner_text()
    assert batch_links.count() == EXCEEDING
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
