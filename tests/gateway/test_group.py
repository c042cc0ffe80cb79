"""Group commit (gateway/services/group.py): concurrent single submissions share one transaction and one
receipt signature, and each still gets its own answer: accepted, idempotent, or rejected with its code."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx

from gateway.services.group import GroupRunner
from provenance import TrustStore, verify_receipt
from provenance.log.receipt import AcceptanceReceipt
from tests.kit.gateway import STATION_2_MN, Harness, error_code, hj212_packets, party_membership


def test_a_burst_of_single_submissions_gets_each_its_own_answer(harness: Harness) -> None:
    """Distinct records, the same record twice, and two records under one nonce, all in flight at once."""
    one, two = harness.client("station-1"), harness.client("station-2")
    packets = hj212_packets(20)
    distinct = [one.body("env.reading", p) for p in packets[:8]] + [
        two.body("env.reading", p)
        for p in hj212_packets(6, mn=STATION_2_MN)  # each station its own MN
    ]
    twins = distinct[:3]  # submitted twice each: one 202 and one 200, same id
    replays = [
        (one.body("env.reading", a, nonce=f"{i:032x}"), one.body("env.reading", b, nonce=f"{i:032x}"))
        for i, (a, b) in enumerate(zip(packets[14:17], packets[17:20], strict=True))
    ]
    jobs: list[tuple[str, dict[str, Any], str]] = [("distinct", b, b["record"]["org"]) for b in distinct]
    jobs += [("twin", b, "station-1") for b in twins]
    jobs += [(f"replay-{i}", b, "station-1") for i, pair in enumerate(replays) for b in pair]
    headers = {"station-1": one.headers, "station-2": two.headers}
    answers: list[tuple[str, dict[str, Any], httpx.Response]] = []
    lock = threading.Lock()
    start = threading.Barrier(len(jobs))

    def submit(tag: str, body: dict[str, Any], org: str) -> None:
        with httpx.Client(base_url=harness.server.url, headers=headers[org], timeout=30) as http:
            start.wait()
            r = http.post("/api/v1/records", json=body)
        with lock:
            answers.append((tag, body, r))

    threads = [threading.Thread(target=submit, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == len(jobs)
    trust = TrustStore.from_dict(harness.http.get("/api/v1/orgs").json())
    org_of: dict[str, str] = {}
    for tag, body, r in answers:
        if tag.startswith("replay") and r.status_code == 409:
            assert error_code(r) == "REPLAYED", r.text
            continue
        assert r.status_code in (200, 202), r.text
        doc = r.json()
        assert doc["existing"] == (r.status_code == 200)
        assert verify_receipt(doc["receipt"], trust, record_id=doc["id"]).record_id == doc["id"]
        org_of[doc["id"]] = body["record"]["org"]
    for i in range(len(replays)):  # one record per nonce: the other is a replay
        assert sorted(r.status_code for tag, _, r in answers if tag == f"replay-{i}") == [202, 409]
    twin_nonces = {b["record"]["nonce"] for b in twins}
    twin_codes = Counter(r.status_code for _, b, r in answers if b["record"]["nonce"] in twin_nonces)
    assert twin_codes == Counter({202: 3, 200: 3}), twin_codes  # one acceptance each, the other idempotent
    assert len(org_of) == len(distinct) + len(replays)
    # Each accepted record is logged once: distinct leaves, as many as records.
    leaves: dict[str, int] = {}
    deadline = time.monotonic() + 30
    while len(leaves) < len(org_of) and time.monotonic() < deadline:
        for rid, org in org_of.items():
            doc = harness.http.get(f"/api/v1/records/{rid}", headers=headers[org]).json()
            if doc.get("leaf_index") is not None:
                leaves[rid] = doc["leaf_index"]
        time.sleep(0.05)
    assert len(leaves) == len(org_of) and len(set(leaves.values())) == len(leaves)


def _promise(i: int) -> AcceptanceReceipt:
    return AcceptanceReceipt(
        origin="o.example/log",
        record_id=f"{i:064x}",
        accepted_at="2026-11-30T08:00:00.000Z",
        max_merge_delay=60,
    )


def test_group_runner_runs_what_queued_while_it_was_running_as_one_batch() -> None:
    release = threading.Event()
    groups: list[list[str]] = []

    def sign_many(receipts: Sequence[AcceptanceReceipt]) -> list[str]:
        groups.append([r.record_id for r in receipts])
        if len(groups) == 1:
            release.wait(10)  # the first signature is slow: others queue meanwhile
        if any(r.record_id == f"{13:064x}" for r in receipts):
            raise RuntimeError("the signer failed")
        return [f"note of {r.record_id}" for r in receipts]

    signer: GroupRunner[AcceptanceReceipt, str] = GroupRunner(sign_many)
    results: dict[int, str] = {}

    def call(i: int) -> None:
        try:
            results[i] = signer.run(_promise(i))
        except RuntimeError as exc:
            results[i] = str(exc)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    while not groups:
        time.sleep(0.001)
    others = [threading.Thread(target=call, args=(i,)) for i in (11, 12, 13)]
    for t in others:
        t.start()
    while len(signer._queue) < 3:  # all three queued behind the first signature
        time.sleep(0.001)
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert groups[0] == [f"{0:064x}"]
    assert sorted(groups[1]) == [f"{i:064x}" for i in (11, 12, 13)] and len(groups) == 2
    assert results[0] == f"note of {0:064x}"
    # One failure fails the whole group it was signed with, and each caller sees it.
    assert results[11] == results[12] == results[13] == "the signer failed"
    assert signer.run(_promise(1)) == f"note of {1:064x}"  # and the signer goes on


def _race(harness: Harness, headers: dict[str, str], bodies: list[dict[str, Any]]) -> Counter[int | str]:
    """Submit ``bodies`` all at once, odd ones single (grouped), even ones each a bulk request of one (which
    PostgreSQL writes side by side): how many were accepted (202) and refused, by code."""
    start = threading.Barrier(len(bodies))
    codes: Counter[int | str] = Counter()
    lock = threading.Lock()

    def submit(i: int, body: dict[str, Any]) -> None:
        with httpx.Client(base_url=harness.server.url, headers=headers, timeout=30) as http:
            start.wait()
            if i % 2:
                r = http.post("/api/v1/records", json=body)
                code: int | str = r.status_code if r.status_code == 202 else error_code(r)
            else:
                r = http.post("/api/v1/records:bulk", json={"records": [body]})
                assert r.status_code == 200, r.text
                item = r.json()["items"][0]
                code = 202 if item["status"] == "accepted" else item["error"]["code"]
        with lock:
            codes[code] += 1

    threads = [threading.Thread(target=submit, args=(i, b)) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def test_concurrent_stage_changes_of_one_member_one_wins(harness: Harness) -> None:
    """Eight submissions of the same next stage of one member, in flight at once (four single, grouped; four
    bulk requests, which PostgreSQL writes side by side), each checked before the transaction against the
    same recorded stage: the stage as it stands in the transaction decides, so exactly one is accepted and
    the others are PARTY_STAGE_TRANSITION_INVALID (before, several went in)."""
    branch = harness.client("party-branch")
    branch_id = "zb-" + secrets.token_hex(3)

    assert branch.submit("party.record", party_membership(branch_id, "入党申请人", None)).status_code == 202
    bodies = [
        branch.body("party.record", party_membership(branch_id, "入党积极分子", "入党申请人"))
        for _ in range(8)
    ]
    codes = _race(harness, branch.headers, bodies)
    assert codes == {202: 1, "PARTY_STAGE_TRANSITION_INVALID": 7}, codes
    history = branch.get(f"/api/v1/subjects/branch:{branch_id}/records", params={"limit": 50}).json()
    assert len(history["items"]) == 2


def test_concurrent_copies_of_one_reading_one_is_recorded(harness: Harness) -> None:
    """Eight records of one reading (the same MN, CN and DataTime, each its own nonce: eight record ids) in
    flight at once, half single (grouped), half bulk: each passes the check before the transaction on the
    same committed states; inside it the step decided then is reused only while the states are those it was
    decided on, so the first write's change sends the others through the rule again: exactly one is
    recorded and the others are READING_DUPLICATE (an env reading has no prior record: the decided step is
    what would be reused)."""
    station = harness.client("station-1")
    packet = hj212_packets(1)[0]
    bodies = [station.body("env.reading", packet, nonce=secrets.token_hex(16)) for _ in range(8)]
    codes = _race(harness, station.headers, bodies)
    assert codes == {202: 1, "READING_DUPLICATE": 7}, codes
