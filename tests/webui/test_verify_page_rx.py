"""The /verify page on the prescription chain, served by a real gateway on a real network: a prescription's
look-up shows issue → 审方 review → dispense with its boxes' codes → 医保 settlement in order, each step
verified in the browser (keys from OrgRegistry, through the node); a box's look-up (``code:…``) shows where
and when it was dispensed with that dispense record verified and listing the box; another pharmacy's token
gets TRACE_CODE_REUSED naming the code only."""

from __future__ import annotations

import secrets

from provenance.demo_rx import fresh_code
from tests.kit.gateway import Harness, rx_dispense, rx_issue, rx_review, rx_settle
from tests.kit.webui import PageProbe


def _accepted(r: object) -> str:
    assert getattr(r, "status_code", None) == 202, getattr(r, "text", r)
    return str(r.json()["id"])  # type: ignore[attr-defined]


def _look_up(p: PageProbe, token: str, query: str) -> None:
    page = p.page
    page.fill("#token", token)
    page.fill("#q", query)
    page.press("#q", "Enter")


def test_page_shows_the_prescription_chain_and_a_box(page_probe: PageProbe, harness: Harness) -> None:
    h, p = harness, page_probe
    rx = "RX" + secrets.token_hex(5).upper()
    boxes = [fresh_code(), fresh_code()]
    issue = _accepted(h.client("hospital-1").submit("rx.issue", rx_issue(rx)))
    review = _accepted(h.client("pharmacist-1").submit("rx.review", rx_review(rx)))
    dispense = _accepted(h.client("pharmacy-1").submit("rx.dispense", rx_dispense(rx, boxes)))
    settle = _accepted(h.client("insurer").submit("rx.settle", rx_settle(rx, dispense)))
    h.wait_status(settle, "anchored")

    p.open()
    page = p.page
    # The node itself, so that the page reads the keys from OrgRegistry: "verified", not "consistent".
    page.locator("#rpc-status[data-state=ready], #rpc-status[data-state=error]").wait_for(timeout=20_000)
    page.locator("#rpc").fill(h.network.rpc_url)
    page.locator("#rpc").dispatch_event("change")
    page.locator("#rpc-status[data-state=ready]").wait_for(timeout=20_000)

    _look_up(p, h.tokens["regulator"], f"rx:{rx}")
    timeline = page.locator(".timeline")
    timeline.wait_for(timeout=20_000)
    steps = timeline.locator("ol > li")
    page.locator(".timeline ol > li[data-stage=settled][data-verdict=verified]").wait_for(timeout=30_000)
    # Every row decided: a row shows "pending" while its bundle is still being verified.
    page.wait_for_function(
        "n => document.querySelectorAll('.subject-result tbody tr[data-verdict]:not([data-verdict=pending])')"
        ".length === n",
        arg=4,
        timeout=30_000,
    )
    rows = page.locator(".subject-result tbody tr").all()
    assert [r.get_attribute("data-record") for r in rows] == [issue, review, dispense, settle]
    assert [r.get_attribute("data-verdict") for r in rows] == ["verified"] * 4
    assert [li.get_attribute("data-stage") for li in steps.all()] == [
        "issued",
        "reviewed",
        "dispensed",
        "settled",
    ]
    assert [li.get_attribute("data-verdict") for li in steps.all()] == ["verified"] * 4
    assert timeline.get_attribute("data-state") == "settled"
    assert page.locator(".timeline .decision").get_attribute("data-decision") == "approved"
    # The boxes as the verified dispense lists them; the amounts as the verified settlement says.
    dispensed = page.locator(".timeline ol > li[data-stage=dispensed]")
    assert [c.get_attribute("data-code") for c in dispensed.locator("ul.codes > li").all()] == boxes
    assert (
        "fund paid ¥23.40, personal ¥5.85"
        in page.locator(".timeline ol > li[data-stage=settled]").inner_text()
    )
    for org in ("hospital-1", "pharmacist-1", "pharmacy-1", "insurer"):
        assert org in timeline.inner_text()
    p.shot("rx-chain")

    # A box by its code: where and when, the dispense record verified and listing the box.
    _look_up(p, h.tokens["regulator"], f"code:{boxes[1]}")
    result = page.locator(f'.code-result[data-code="{boxes[1]}"]')
    result.wait_for(timeout=20_000)
    verdict = page.locator(".code-record .verdict:not([data-verdict=pending])")
    verdict.wait_for(timeout=30_000)
    assert verdict.get_attribute("data-verdict") == "verified"
    assert "listing:passed" in str(verdict.get_attribute("data-steps"))
    field = {
        str(dd.get_attribute("data-field")): dd.inner_text() for dd in result.locator(".code-use dd").all()
    }
    assert (field["pharmacy"], field["rx"], field["record"]) == ("pharmacy-1", f"rx:{rx}", dispense)
    assert field["handed_over"].endswith("Z")
    assert page.locator("[data-box-listed]").get_attribute("data-box-listed") == "true"
    p.shot("rx-box")

    # A box never dispensed.
    fresh = fresh_code()
    _look_up(p, h.tokens["regulator"], f"code:{fresh}")
    page.locator(f'.code-result[data-code="{fresh}"] [data-dispensed=false]').wait_for(timeout=20_000)

    # Another pharmacy: the code, and nothing of where (no record, no prescription) on the page.
    p.allowed_errors.append("status of 409")  # Chromium logs the 409 response itself
    _look_up(p, h.tokens["pharmacy-2"], f"code:{boxes[0]}")
    err = page.locator('[data-error="error.http"]')
    err.wait_for(timeout=20_000)
    said = err.inner_text()
    assert "TRACE_CODE_REUSED" in said and boxes[0] in said
    assert dispense not in page.content() and rx not in page.content()
