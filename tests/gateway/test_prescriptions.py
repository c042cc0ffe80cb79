"""E-prescriptions end to end: issue -> check -> dispense once (also under a race), revoke, expiry."""

from __future__ import annotations

from datetime import timedelta

from provenance.access_code import HEADER, AccessCode
from tests.kit.gateway import (
    Harness,
    chain_lead,
    error_code,
    new_rx_id,
    rx_dispense,
    rx_issue,
    rx_revoke,
    verify_bundle,
)
from tests.kit.race import race


def _issue(harness: Harness, rx: str, **kw: object) -> str:
    r = harness.client("hospital-1").submit("rx.issue", rx_issue(rx, **kw))  # type: ignore[arg-type]
    assert r.status_code == 202, r.text
    rid: str = r.json()["id"]
    return rid


def test_issue_check_dispense_then_second_dispense_refused(harness: Harness) -> None:
    rx, code = new_rx_id(), AccessCode.new()
    issue_id = _issue(harness, rx, access_code=code)
    pharmacy = harness.client("pharmacy-1")
    slip = {HEADER: str(code)}  # the patient shows the pharmacy the slip

    closed = pharmacy.get(f"/api/v1/rx/{rx}/check")
    assert closed.status_code == 403 and error_code(closed) == "ACCESS_CODE_REQUIRED"
    check = pharmacy.get(f"/api/v1/rx/{rx}/check", headers=slip).json()
    assert check["valid"] and check["issuer"] == "hospital-1" and check["issuer_registered"]
    # The pharmacy reads the prescription it fills, by its code (another domain's org does not see it).
    harness.wait_status(issue_id, "sequenced")
    url = f"/api/v1/records/{issue_id}/bundle"
    harness.wait(lambda: pharmacy.get(url, headers=slip).status_code == 200, what="bundle")
    issued = pharmacy.get(url, params={"payload": "true"}, headers=slip).json()
    assert issued["payload"]["resourceType"] == "MedicationRequest"
    other = harness.client("party-branch").get(url, params={"payload": "true"})
    assert other.status_code == 404 and error_code(other) == "RECORD_NOT_FOUND"
    assert not check["dispensed"] and not check["revoked"] and not check["expired"]
    assert check["issue_record"] == issue_id

    # The dispense presents the slip's code too (never signed: a header beside the record).
    r = pharmacy.submit("rx.dispense", rx_dispense(rx), access_code=code)
    assert r.status_code == 202, r.text
    dispense_id = r.json()["id"]

    # Another pharmacy shown the same slip later learns that it was dispensed, not by whom.
    again = harness.client("pharmacy-2").submit("rx.dispense", rx_dispense(rx), access_code=code)
    assert again.status_code == 409
    assert error_code(again) == "RX_ALREADY_DISPENSED"
    assert again.json()["error"]["details"] == {"rx_id": rx}

    # Having dispensed it, the pharmacy checks and reads it without the code.
    check = pharmacy.get(f"/api/v1/rx/{rx}/check").json()
    assert check["dispensed"] and check["dispensed_by"] == "pharmacy-1" and not check["valid"]
    assert pharmacy.get(url, params={"payload": "true"}).json()["payload"] == issued["payload"]

    # The contract saw both calls in order; the dispense is final on chain too.
    assert harness.wait_chain(issue_id)["chain_status"] == "confirmed"
    assert harness.wait_chain(dispense_id)["chain_status"] == "confirmed"
    on_chain = pharmacy.get(f"/api/v1/rx/{rx}/check").json()["on_chain"]
    assert on_chain["status"] == "dispensed" and on_chain["dispenser"] == "pharmacy-1"

    harness.wait_status(dispense_id, "anchored")
    bundle = pharmacy.get(f"/api/v1/records/{dispense_id}/bundle")
    assert bundle.status_code == 200, bundle.text
    assert bundle.json()["payload"]["resourceType"] == "MedicationDispense"
    verify_bundle(bundle.json(), harness)


def test_two_pharmacies_racing_exactly_one_wins(harness: Harness) -> None:
    rx = new_rx_id()
    _issue(harness, rx)
    bodies = {
        org: harness.client(org).body("rx.dispense", rx_dispense(rx)) for org in ("pharmacy-1", "pharmacy-2")
    }
    results = race(harness, bodies)
    codes = sorted(r.status_code for r in results.values())
    assert codes == [202, 409], {k: v.text for k, v in results.items()}
    loser = next(r for r in results.values() if r.status_code == 409)
    assert error_code(loser) == "RX_ALREADY_DISPENSED"


def test_revoke_then_dispense_refused(harness: Harness) -> None:
    rx = new_rx_id()
    _issue(harness, rx)
    other = harness.client("hospital-2").submit("rx.revoke", rx_revoke(rx))
    assert other.status_code == 403 and error_code(other) == "RX_NOT_ISSUER"
    r = harness.client("hospital-1").submit("rx.revoke", rx_revoke(rx))
    assert r.status_code == 202, r.text
    d = harness.client("pharmacy-1").submit("rx.dispense", rx_dispense(rx))
    assert d.status_code == 409 and error_code(d) == "RX_REVOKED"
    again = harness.client("hospital-1").submit("rx.revoke", rx_revoke(rx))
    assert again.status_code == 409 and error_code(again) == "RX_REVOKED"
    check = harness.client("hospital-1").get(f"/api/v1/rx/{rx}/check").json()  # the issuer's own
    assert check["revoked"] and not check["valid"]


def test_expired_prescription_refused(harness: Harness) -> None:
    rx, code = new_rx_id(), AccessCode.new()
    # Expiring in a few seconds by the chain's clock (which the contract checks, and runs ahead of ours);
    # the margin lets a loaded chain caller send the issue before it expires.
    lead = chain_lead(harness)
    _issue(harness, rx, valid_for=timedelta(seconds=lead + 12), access_code=code)
    pharmacy = harness.client("pharmacy-1")
    check_url = f"/api/v1/rx/{rx}/check"
    headers = {HEADER: str(code)}
    harness.wait(
        lambda: pharmacy.get(check_url, headers=headers).json()["expired"], timeout=lead + 45, what="expiry"
    )
    check = pharmacy.get(check_url, headers=headers).json()
    assert check["expired"] and not check["valid"]
    d = harness.client("pharmacy-1").submit("rx.dispense", rx_dispense(rx), access_code=code)
    assert d.status_code == 409 and error_code(d) == "RX_EXPIRED"


def test_unknown_and_duplicate_prescriptions(harness: Harness) -> None:
    rx = new_rx_id()
    # A pharmacy is told of a prescription that does not exist what it is told of one whose code it lacks.
    d = harness.client("pharmacy-1").submit("rx.dispense", rx_dispense(rx))
    assert d.status_code == 403 and error_code(d) == "ACCESS_CODE_INVALID"
    d = harness.client("pharmacy-1").submit("rx.dispense", rx_dispense(rx), access_code=None)
    assert d.status_code == 403 and error_code(d) == "ACCESS_CODE_REQUIRED"
    # Only readers of every prescription learn that one does not exist; a pharmacy is told what it
    # would be told of an existing one it holds no code for.
    c = harness.client("auditor").get(f"/api/v1/rx/{rx}/check")
    assert c.status_code == 404 and error_code(c) == "RX_UNKNOWN"
    c = harness.client("pharmacy-1").get(f"/api/v1/rx/{rx}/check")
    assert c.status_code == 403 and error_code(c) == "ACCESS_CODE_REQUIRED"
    _issue(harness, rx)
    dup = harness.client("hospital-2").submit("rx.issue", rx_issue(rx))
    assert dup.status_code == 409 and error_code(dup) == "RX_EXISTS"


def test_roles_per_kind(harness: Harness) -> None:
    rx = new_rx_id()
    r = harness.client("pharmacy-1").submit("rx.issue", rx_issue(rx))
    assert r.status_code == 403 and error_code(r) == "ROLE_FORBIDDEN"
    _issue(harness, rx)
    r = harness.client("hospital-1").submit("rx.dispense", rx_dispense(rx))
    assert r.status_code == 403 and error_code(r) == "ROLE_FORBIDDEN"
    c = harness.client("party-branch").get(f"/api/v1/rx/{rx}/check")
    assert c.status_code == 403 and error_code(c) == "ROLE_FORBIDDEN"


def test_bulk_issue_then_revoke_in_one_request(harness: Harness) -> None:
    """Items of a bulk request are decided in request order: a revoke after its issue in the same request
    sees the issue (before: RX_UNKNOWN), a second revoke sees the first (RX_REVOKED), a second issue of the
    same prescription is RX_EXISTS; the chain gets the issue and the revoke, in that order."""
    hospital = harness.client("hospital-1")
    a, b = new_rx_id(), new_rx_id()
    items = [
        hospital.body("rx.issue", rx_issue(a)),
        hospital.body("rx.revoke", rx_revoke(a)),
        hospital.body("rx.revoke", rx_revoke(a)),
        hospital.body("rx.issue", rx_issue(b)),
        hospital.body("rx.issue", rx_issue(b)),
    ]
    r = harness.http.post("/api/v1/records:bulk", json={"records": items}, headers=hospital.headers)
    assert r.status_code == 200, r.text
    results = r.json()["items"]
    codes = [(it["status"], (it["error"] or {}).get("code")) for it in results]
    assert codes == [
        ("accepted", None),
        ("accepted", None),
        ("rejected", "RX_REVOKED"),
        ("accepted", None),
        ("rejected", "RX_EXISTS"),
    ], codes
    for it in (results[0], results[1], results[3]):
        assert harness.wait_chain(it["id"])["chain_status"] == "confirmed"
    check = hospital.get(f"/api/v1/rx/{a}/check").json()
    assert check["revoked"] and not check["valid"] and check["close_record"] == results[1]["id"]
    assert check["on_chain"]["status"] == "revoked"
