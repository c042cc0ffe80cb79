"""The sixth outside attack's finding 7 (kit6 misc.py, party.py): records dated before their subject's
earlier records (an ``rx.review`` or ``rx.revoke`` of 2001, a settlement before the prescription was
written behind a date-only hand-over, a member's stage, transfer and dues of 1990/1991), a lower-case member
id taken for a new member, and a prescription for half a box, replayed through the real HTTP API, signed
with real SM2 keys, on the gateway suite's network (review not required)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from adapters._common import canonical_json
from adapters.abc import DEFAULT_TIME_ZONE
from provenance.crypto.sm3 import sm3_hex
from provenance.demo_rx import fresh_code
from tests.kit.data_life import collected, derived, fresh, stored
from tests.kit.gateway import (
    Harness,
    OrgClient,
    error_code,
    party_membership,
    rx_dispense,
    rx_issue,
    rx_review,
    rx_revoke,
    rx_settle,
    share_consent,
    share_request,
    share_revoke_consent,
    with_trace_codes,
)

Y2001 = "2001-01-01T08:00:00+08:00"


def _send(client: OrgClient, kind: str, obj: dict[str, Any], subject: str) -> Any:
    """Sent as is: the client's own adapter would refuse to digest what the gateway must refuse."""
    return client.submit(kind, obj, subject=subject, payload_digest=sm3_hex(canonical_json(obj)))


def _refused(r: Any, status: int, code: str) -> dict[str, Any]:
    assert (r.status_code, error_code(r)) == (status, code), r.text
    details: dict[str, Any] = r.json()["error"]["details"]
    return details


def _ok(r: Any) -> str:
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _issue(h: Harness) -> tuple[str, dict[str, Any]]:
    rx = "RXA6D" + secrets.token_hex(5).upper()
    obj = rx_issue(rx)
    obj["dispenseRequest"]["quantity"] = {"value": 1, "unit": "盒"}
    _ok(h.client("hospital-2").submit("rx.issue", obj))
    return rx, obj


def _utc(instant: str) -> str:
    return datetime.fromisoformat(instant).astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_f6_7_prescription_records_follow_its_earlier_records(harness: Harness) -> None:
    h = harness
    # misc.py: a review dated 2001 of a prescription written five minutes ago.
    rx, issue = _issue(h)
    pharmacist = h.client("pharmacist-1")
    r = _send(pharmacist, "rx.review", {**rx_review(rx), "reviewed_at": Y2001}, f"rx:{rx}")
    details = _refused(r, 400, "DATE_BEFORE_SUBJECT")
    assert details == {"rx_id": rx, "field": "reviewed_at", "not_before": _utc(issue["authoredOn"])}
    review = rx_review(rx)
    _ok(pharmacist.submit("rx.review", review))
    # A revoke dated 2001, then one dated before the review (after the authoring): both refused.
    hospital = h.client("hospital-2")
    r = _send(hospital, "rx.revoke", {**rx_revoke(rx), "revoked_at": Y2001}, f"rx:{rx}")
    assert _refused(r, 400, "DATE_BEFORE_SUBJECT") == {
        "rx_id": rx,
        "field": "revoked_at",
        "not_before": _utc(review["reviewed_at"]),
    }
    between = (datetime.fromisoformat(review["reviewed_at"]) - timedelta(seconds=30)).isoformat()
    r = _send(hospital, "rx.revoke", {**rx_revoke(rx), "revoked_at": between}, f"rx:{rx}")
    assert _refused(r, 400, "DATE_BEFORE_SUBJECT")["field"] == "revoked_at"
    assert not h.client("auditor").get(f"/api/v1/rx/{rx}/check").json()["revoked"]
    _ok(hospital.submit("rx.revoke", rx_revoke(rx)))

    # misc.py: handed over "today" (a date: its day may hold the authoring, accepted), then settled an hour
    # before the prescription was written: the settlement follows the prescription's every earlier record.
    rx, issue = _issue(h)
    dispense = with_trace_codes(rx_dispense(rx, []), [fresh_code()])
    dispense["quantity"] = {"value": 1, "unit": "盒"}
    dispense["whenHandedOver"] = datetime.now(ZoneInfo(DEFAULT_TIME_ZONE)).date().isoformat()
    dispense_id = _ok(_send(h.client("pharmacy-2"), "rx.dispense", dispense, f"rx:{rx}"))
    insurer = h.client("insurer")
    early = (datetime.fromisoformat(issue["authoredOn"]) - timedelta(hours=1)).isoformat()
    settle = {**rx_settle(rx, dispense_id), "settled_at": early}
    assert _refused(_send(insurer, "rx.settle", settle, f"rx:{rx}"), 400, "RX_SETTLED_BEFORE_DISPENSE") == {
        "rx_id": rx,
        "field": "settled_at",
    }
    _ok(insurer.submit("rx.settle", rx_settle(rx, dispense_id)))


def test_f6_7_half_a_box_is_never_prescribed(harness: Harness) -> None:
    hospital = harness.client("hospital-2")
    rx = "RXA6Q" + secrets.token_hex(5).upper()
    obj = rx_issue(rx)
    obj["dispenseRequest"]["quantity"] = {"value": 0.5, "unit": "盒"}
    r = _send(hospital, "rx.issue", obj, f"rx:{rx}")
    assert _refused(r, 400, "RX_QUANTITY_NOT_WHOLE") == {"field": "dispenseRequest.quantity.value"}
    assert harness.client("auditor").get(f"/api/v1/rx/{rx}/check").status_code == 404
    # Half a tablet is a dose, and a whole number of boxes is a prescription.
    obj["dispenseRequest"]["quantity"] = {"value": 0.5, "unit": "片"}
    _ok(hospital.submit("rx.issue", obj))
    obj = rx_issue(rx := "RXA6Q" + secrets.token_hex(5).upper())
    obj["dispenseRequest"]["quantity"] = {"value": 2.0, "unit": "盒"}
    _ok(_send(hospital, "rx.issue", obj, f"rx:{rx}"))


def test_f6_7_a_members_records_follow_their_earlier_records(harness: Harness) -> None:
    branch = harness.client("party-branch")
    b1, b2 = "BD" + secrets.token_hex(2).upper(), "BE" + secrets.token_hex(2).upper()
    member = "MD" + secrets.token_hex(3).upper()
    # The member's first record (party_membership: 2026-11-20T16:00+08:00) at b1.
    _ok(branch.submit("party.record", party_membership(b1, "入党申请人", None, member=member)))
    first = "2026-11-20T08:00:00Z"

    def sent(obj: dict[str, Any]) -> Any:
        return _send(branch, "party.record", obj, f"branch:{obj['branch_id']}")

    # party.py: the next stage dated 1990, before the member's first record.
    stage = party_membership(b1, "入党积极分子", "入党申请人", member=member)
    stage["effective_at"] = "1990-03-01T09:00:00+08:00"
    assert _refused(sent(stage), 400, "DATE_BEFORE_SUBJECT") == {"field": "effective_at", "not_before": first}
    # Dues of 1990-02 (the month before the branch held them: F5-8), and dues of a held month paid in 1990.
    dues = {"type": "dues", "branch_id": b1, "member_id": member, "month": "1990-02", "amount_fen": 5000,
            "paid_at": "1990-03-01T09:00:00+08:00"}  # fmt: skip
    assert _refused(sent(dues), 400, "PARTY_MEMBER_NOT_AT_BRANCH")["field"] == "month"
    assert _refused(sent({**dues, "month": "2026-11"}), 400, "DATE_BEFORE_SUBJECT") == {
        "field": "paid_at",
        "not_before": first,
    }
    # A transfer of 1991.
    transfer = {"type": "transfer", "branch_id": b1, "member_id": member, "stage": "入党申请人",
                "to_branch_id": b2, "effective_at": "1991-07-01T09:00:00+08:00",
                "approved_by": "MTG-1991"}  # fmt: skip
    assert _refused(sent(transfer), 400, "DATE_BEFORE_SUBJECT")["field"] == "effective_at"

    # In order they pass, and each moves the member's mark: dues paid now, then a stage dated before that
    # payment is out of order too.
    paid = datetime.now(UTC).replace(microsecond=0)
    _ok(sent({**dues, "month": "2026-11", "paid_at": paid.isoformat()}))
    before_paid = (paid - timedelta(minutes=1)).isoformat()
    r = sent({**stage, "effective_at": before_paid})
    assert _refused(r, 400, "DATE_BEFORE_SUBJECT") == {
        "field": "effective_at",
        "not_before": paid.isoformat().replace("+00:00", "Z"),
    }
    _ok(sent({**stage, "effective_at": paid.isoformat()}))
    _ok(sent({**transfer, "stage": "入党积极分子", "effective_at": paid.isoformat()}))
    # Nothing of a refused record is kept: b1 has the membership, the dues, the stage and the transfer.
    history = branch.get(f"/api/v1/subjects/branch:{b1}/records", params={"limit": 50}).json()
    assert len(history["items"]) == 4, history

    # misc.py: the member's id in lower case is the same member, not a new one (at b2 now).
    lower = member.lower()
    r = sent(party_membership(b1, "入党申请人", None, member=lower))
    assert _refused(r, 400, "PARTY_MEMBER_NOT_AT_BRANCH")["recorded_branch"] == b2
    r = sent(party_membership(b2, "入党申请人", None, member=lower))
    assert _refused(r, 400, "PARTY_STAGE_TRANSITION_INVALID")["field"] == "previous_stage"
    late = {
        **party_membership(b2, "发展对象", "入党积极分子", member=lower),
        "effective_at": paid.isoformat(),
    }
    _ok(sent(late))


def test_f6_7_a_requests_and_a_datasets_records_follow_their_earlier_records(harness: Harness) -> None:
    user, owner = harness.client("data-user"), harness.client("data-owner")
    request_id = "REQ-A6D-" + secrets.token_hex(4).upper()
    request = share_request(request_id, "data-user")
    _ok(user.submit("share.request", request))
    subject = f"dataset:{request['dataset']}"
    r = _send(owner, "share.consent", {**share_consent(request_id), "granted_at": Y2001}, subject)
    assert _refused(r, 400, "DATE_BEFORE_SUBJECT") == {
        "field": "granted_at",
        "not_before": _utc(request["requested_at"]),
    }
    consent = share_consent(request_id)
    _ok(owner.submit("share.consent", consent))
    r = _send(
        owner, "share.revoke_consent", {**share_revoke_consent(request_id), "revoked_at": Y2001}, subject
    )
    assert _refused(r, 400, "DATE_BEFORE_SUBJECT") == {
        "field": "revoked_at",
        "not_before": _utc(consent["granted_at"]),
    }
    _ok(owner.submit("share.revoke_consent", share_revoke_consent(request_id)))

    # A dataset's life: stored in 2001 after it was collected, derived from it before it was stored.
    dataset = fresh("a6d")
    collection = collected(dataset)
    _ok(owner.submit("data.collected", collection))
    r = _send(owner, "data.stored", {**stored(dataset), "stored_at": Y2001}, f"dataset:{dataset}")
    assert _refused(r, 400, "DATE_BEFORE_SUBJECT") == {
        "field": "stored_at",
        "not_before": collection["collected_at"],
    }
    storing = stored(dataset)
    _ok(owner.submit("data.stored", storing))
    output = fresh("a6d-out")
    early = {
        **derived(output, [{"dataset": dataset}], analyst="data-owner"),
        "derived_at": collection["collected_at"],
    }
    r = _send(owner, "data.derived", early, f"dataset:{output}")
    assert _refused(r, 400, "DATE_BEFORE_SUBJECT") == {
        "field": "derived_at",
        "not_before": storing["stored_at"],
    }
    _ok(owner.submit("data.derived", derived(output, [{"dataset": dataset}], analyst="data-owner")))
