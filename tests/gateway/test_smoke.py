"""Smoke: one prescription through the gateway to an anchored, verifiable bundle."""

from __future__ import annotations

import secrets

from gateway_kit import Harness, rx_issue


def test_issue_is_anchored(harness: Harness) -> None:
    h = harness.client("hospital-1")
    rx = "RX" + secrets.token_hex(4).upper()
    r = h.submit("rx.issue", rx_issue(rx))
    assert r.status_code == 202, r.text
    rid = r.json()["id"]
    rec = harness.wait_status(rid)
    assert rec["leaf_index"] is not None
