"""Issue #23, the third (unbriefed) attack on the running devnet: its gateway findings replayed through the
real HTTP API against the gateway suite's network (``/work/attack`` report F2, F3)."""

from __future__ import annotations

import secrets
from typing import Any

from tests.kit.gateway import Harness, error_code, rx_dispense, rx_issue


def _body(
    text: str, harness: Harness, headers: dict[str, str] | None = None, path: str = "/api/v1/records"
) -> Any:
    return harness.http.post(
        path, content=text.encode("ascii"), headers={"content-type": "application/json", **(headers or {})}
    )


def test_lone_surrogates_in_error_details_are_4xx(harness: Harness) -> None:
    # A lone surrogate ("\ud800" decodes to one) echoed in an error's details cannot be UTF-8: it answered
    # 500 INTERNAL, even without a token. Each is now its own 4xx with the text escaped.
    r = _body('{"\\ud800":1,"\\ud800":2}', harness)
    assert r.status_code == 400 and error_code(r) == "JSON_DUPLICATE_KEY", r.text
    assert r.json()["error"]["code"] == "JSON_DUPLICATE_KEY"
    party = harness.client("party-branch")
    record = '{"record":{"version":1,"\\ud800":1},"signature":"AAAA","payload":{}}'
    r = _body(record, harness, party.headers)
    assert r.status_code == 400 and error_code(r) == "RECORD_INVALID", r.text
    assert r.json()["error"]["details"]["unexpected"] == ["\\ud800"]  # the escape, as text
    r = _body('{"records":[' + record + "]}", harness, party.headers, "/api/v1/records:bulk")
    assert r.status_code == 200 and r.json()["items"][0]["error"]["code"] == "RECORD_INVALID", r.text
    assert harness.http.get("/healthz").status_code == 200


def test_dispense_in_another_coded_unit_refused(harness: Harness) -> None:
    # The prescription's quantity is 2 boxes in UCUM ({box}); a dispense with the same display text and the
    # code "kg" was accepted: the machine-readable unit must match as well as the text.
    rx = "RXUNIT" + secrets.token_hex(5).upper()
    issue = rx_issue(rx)
    issue["dispenseRequest"]["quantity"] = {
        "value": 2,
        "unit": "盒",
        "system": "http://unitsofmeasure.org",
        "code": "{box}",
    }
    r = harness.client("hospital-1").submit("rx.issue", issue)
    assert r.status_code == 202, r.text
    dispense = rx_dispense(rx)
    dispense["quantity"] = {"value": 2, "unit": "盒", "system": "http://unitsofmeasure.org", "code": "kg"}
    d = harness.client("pharmacy-1").submit("rx.dispense", dispense)
    assert d.status_code == 400 and error_code(d) == "RX_DISPENSE_MISMATCH", d.text
    assert d.json()["error"]["details"]["field"] == "quantity.unit"
    dispense["quantity"]["code"] = "{box}"
    ok = harness.client("pharmacy-1").submit("rx.dispense", dispense)
    assert ok.status_code == 202, ok.text
