"""Sensor volume and the other domains: HJ 212 readings in bulk to anchored bundles; party history."""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime

from tests.kit.gateway import (
    Harness,
    error_code,
    hj212_packets,
    party_meeting,
    party_membership,
    verify_bundle,
)

N_READINGS = 1000


def test_hj212_readings_bulk_anchored_and_verifiable(harness: Harness) -> None:
    station = harness.client("station-1")
    bodies = [station.body("env.reading", p) for p in hj212_packets(N_READINGS)]
    ids: list[str] = []
    for chunk in range(0, N_READINGS, 500):
        r = harness.http.post(
            "/api/v1/records:bulk", json={"records": bodies[chunk : chunk + 500]}, headers=station.headers
        )
        assert r.status_code == 200, r.text
        result = r.json()
        assert result["accepted"] == 500 and result["rejected"] == 0, result["items"][:3]
        ids += [i["id"] for i in result["items"]]
    assert len(set(ids)) == N_READINGS
    # The same bulk again is idempotent: same ids, no new leaves.
    again = harness.http.post("/api/v1/records:bulk", json={"records": bodies[:10]}, headers=station.headers)
    assert [i["id"] for i in again.json()["items"]] == ids[:10]
    assert all(i["existing"] for i in again.json()["items"])

    harness.wait_status(ids[-1], "anchored", timeout=60)
    for rid in random.Random(7).sample(ids, 3):
        bundle = station.get(f"/api/v1/records/{rid}/bundle")
        assert bundle.status_code == 200, bundle.text
        verify_bundle(bundle.json(), harness)
    # Another domain's organisation does not see the station's records at all; the environment bureau
    # (the domain's supervisor) and the auditor read them, payload included.
    other = harness.client("pharmacy-1").get(f"/api/v1/records/{ids[0]}/bundle")
    assert other.status_code == 404 and error_code(other) == "RECORD_NOT_FOUND"
    for reader in ("env-bureau", "auditor"):
        read = harness.client(reader).get(f"/api/v1/records/{ids[0]}/bundle", params={"payload": "true"})
        assert read.json()["payload"]["mn"] == "44030020261125FQ0007"


def test_bulk_items_fail_on_their_own(harness: Harness) -> None:
    station = harness.client("station-1")
    good, bad = hj212_packets(2)
    b1 = station.body("env.reading", good)
    b2 = {**station.body("env.reading", bad), "signature": b1["signature"]}
    r = harness.http.post("/api/v1/records:bulk", json={"records": [b1, b2]}, headers=station.headers)
    items = r.json()["items"]
    assert items[0]["status"] == "accepted"
    assert items[1]["status"] == "rejected" and items[1]["error"]["code"] == "SIGNATURE_INVALID"
    r = harness.http.post("/api/v1/records:bulk", json={"records": []}, headers=station.headers)
    assert r.status_code == 422 and error_code(r) == "REQUEST_INVALID"


def test_party_records_history_paginated(harness: Harness) -> None:
    branch_id = "zb-" + secrets.token_hex(3)
    branch = harness.client("party-branch")
    ids = []
    for i in range(5):
        r = branch.submit("party.record", party_meeting(branch_id, f"MTG-{i}"))
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    seen: list[str] = []
    after = 0
    while True:
        page = branch.get(f"/api/v1/subjects/branch:{branch_id}/records", params={"limit": 2, "after": after})
        data = page.json()
        seen += [i["id"] for i in data["items"]]
        if data["next_cursor"] is None:
            break
        after = data["next_cursor"]
    assert seen == ids
    # A subject may hold "/" (the envelope allows it): still this route, not a 404 of the router.
    for path in ("/api/v1/subjects/dataset:a/b/records", "/api/v1/subjects/dataset:a%2Fb/records"):
        r = branch.get(path)
        assert r.status_code == 200, r.text
        assert r.json() == {"subject": "dataset:a/b", "items": [], "next_cursor": None}
    # The cursor is a BIGINT in the database: beyond int64 it is refused before any query.
    r = branch.get(f"/api/v1/subjects/branch:{branch_id}/records", params={"after": 2**63})
    assert r.status_code == 422 and error_code(r) == "REQUEST_INVALID"
    last = harness.wait_chain(ids[-1])
    assert last["chain_status"] == "confirmed"
    harness.wait_status(ids[-1], "anchored")
    verify_bundle(branch.get(f"/api/v1/records/{ids[-1]}/bundle").json(), harness)


def test_membership_stages_follow_the_recorded_stage(harness: Harness) -> None:
    branch_id = "zb-" + secrets.token_hex(3)
    branch = harness.client("party-branch")

    def stage(stage: str, previous: str | None) -> dict[str, object]:
        return party_membership(branch_id, stage, previous)

    assert branch.submit("party.record", stage("入党申请人", None)).status_code == 202
    assert branch.submit("party.record", stage("入党积极分子", "入党申请人")).status_code == 202
    # Consistent on its own, but the member's recorded stage is 入党积极分子, not 发展对象.
    r = branch.submit("party.record", stage("预备党员", "发展对象"))
    assert r.status_code == 400 and error_code(r) == "PARTY_STAGE_TRANSITION_INVALID"
    assert branch.submit("party.record", stage("发展对象", "入党积极分子")).status_code == 202


def test_bulk_items_are_checked_against_earlier_items_of_the_batch(harness: Harness) -> None:
    """A branch uploading a member's history in one bulk request: each stage is checked against the stage
    the batch recorded before it, as if submitted one by one (a skipped or repeated stage is refused);
    meetings of the same branch in between, another member's first stage, and a repeated item (idempotent)
    go through; every accepted record is logged and verifies."""
    branch_id = "zb-" + secrets.token_hex(3)
    branch = harness.client("party-branch")
    items = [
        branch.body("party.record", party_membership(branch_id, "入党申请人", None)),
        branch.body(
            "party.record", party_membership(branch_id, "入党申请人", None)
        ),  # again: the member has it now
        branch.body("party.record", party_meeting(branch_id, "MTG-B1")),
        branch.body("party.record", party_membership(branch_id, "入党积极分子", "入党申请人")),
        branch.body(
            "party.record", party_membership(branch_id, "入党申请人", None, member=f"{branch_id}.B002")
        ),
        branch.body("party.record", party_membership(branch_id, "预备党员", "发展对象")),  # skips 发展对象
        branch.body("party.record", party_membership(branch_id, "发展对象", "入党积极分子")),
    ]
    items.append(items[3])  # the same signed record twice: one record, the same id
    r = harness.http.post("/api/v1/records:bulk", json={"records": items}, headers=branch.headers)
    assert r.status_code == 200, r.text
    got = [(it["status"], it["existing"], (it["error"] or {}).get("code")) for it in r.json()["items"]]
    invalid = ("rejected", False, "PARTY_STAGE_TRANSITION_INVALID")
    ok = ("accepted", False, None)
    assert got == [ok, invalid, ok, ok, ok, invalid, ok, ("accepted", True, None)], got
    results = r.json()["items"]
    assert results[7]["id"] == results[3]["id"]
    assert results[1]["error"]["details"] == {"field": "previous_stage", "recorded": "入党申请人"}
    assert results[5]["error"]["details"] == {"field": "previous_stage", "recorded": "入党积极分子"}
    last = harness.wait_status(results[6]["id"], "anchored")
    assert last["leaf_index"] is not None
    verify_bundle(branch.get(f"/api/v1/records/{results[6]['id']}/bundle").json(), harness)
    history = branch.get(f"/api/v1/subjects/branch:{branch_id}/records", params={"limit": 50}).json()["items"]
    assert len(history) == 5


def test_dues_follow_the_branch_holding_the_member(harness: Harness) -> None:
    """Fifth attack, 8 (t50_misc.py): dues for a member never recorded, by a branch not holding the member,
    for a month to come, for a month before the branch held them, and twice for one month are refused with
    their codes, and nothing of them is kept; the holding branch's dues for a month it held them pass."""
    branch = harness.client("party-branch")
    b1, b2 = "BX" + secrets.token_hex(2).upper(), "BY" + secrets.token_hex(2).upper()
    member = "MX" + secrets.token_hex(3).upper()
    paid = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    def dues(branch_id: str, month: str, fen: int = 5000) -> dict[str, object]:
        return {"type": "dues", "branch_id": branch_id, "member_id": member, "month": month,
                "amount_fen": fen, "paid_at": paid}  # fmt: skip

    def refused(payload: dict[str, object], code: str, status: int = 400) -> dict[str, object]:
        r = branch.submit("party.record", payload)
        assert (r.status_code, error_code(r)) == (status, code), r.text
        return dict(r.json()["error"]["details"])

    details = refused(dues(b1, "2026-11"), "PARTY_MEMBER_NOT_AT_BRANCH")
    assert details == {"field": "member_id", "recorded_branch": None}
    # The member joins at b1 on 2026-11-20 (party_membership's effective_at).
    assert (
        branch.submit("party.record", party_membership(b1, "入党申请人", None, member=member)).status_code
        == 202
    )
    assert refused(dues(b2, "2026-11"), "PARTY_MEMBER_NOT_AT_BRANCH")["recorded_branch"] == b1
    assert refused(dues(b1, "2099-01", 1), "PARTY_DUES_MONTH_INVALID") == {
        "field": "month",
        "value": "2099-01",
    }
    assert refused(dues(b1, "2026-10"), "PARTY_MEMBER_NOT_AT_BRANCH")["field"] == "month"
    ok = branch.submit("party.record", dues(b1, "2026-11"))
    assert ok.status_code == 202, ok.text
    details = refused(dues(b1, "2026-11", 1), "PARTY_DUES_DUPLICATE", 409)
    assert details["record"] == ok.json()["id"]
    harness.wait_status(ok.json()["id"], "anchored")
    # Nothing of a refused record is kept: b1 has the membership and one dues record, b2 nothing.
    for branch_id, n in ((b1, 2), (b2, 0)):
        history = branch.get(f"/api/v1/subjects/branch:{branch_id}/records", params={"limit": 50}).json()
        assert len(history["items"]) == n, history
