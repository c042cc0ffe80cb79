"""Signed acceptance receipts through the API: every accepted record (202, the idempotent 200, each accepted
bulk item) carries the log key's signed promise to log it within the maximum merge delay, with the time
of its first acceptance; the SDK and `provenance receipt verify` check it against the pinned log key."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from provenance import Client, ReceiptInvalid, SignedRecord, TrustStore, verify_receipt
from provenance.crypto import SM2PrivateKey
from provenance.log.receipt import check_kept, parse_receipt
from provenance.timestamps import format_timestamp, parse_timestamp
from provenance.verification.trust import LogKey
from tests.kit.gateway import Harness, hj212_packets, tamper_signature, trust_path


def _trust_file(harness: Harness) -> Path:
    assert harness.network.path is not None
    return trust_path(harness.network)  # the devnet trust file: orgs' and log's keys


def _api_trust(harness: Harness) -> TrustStore:
    return TrustStore.from_dict(harness.http.get("/api/v1/orgs").json())


def _flip(note: str) -> str:
    """The receipt with one bit of its signature flipped."""
    body, line = note.split("\n\n")
    prefix, sig = line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 0x01
    return f"{body}\n\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provenance", *args], capture_output=True, text=True, timeout=120
    )


def test_a_202_carries_a_receipt_that_verifies_and_a_resubmission_keeps_its_time(
    harness: Harness, tmp_path: Path
) -> None:
    station = harness.client("station-1")
    body = station.body("env.reading", hj212_packets(1)[0])
    before = datetime.now(UTC)
    r = station.post(body)
    after = datetime.now(UTC)
    assert r.status_code == 202, r.text
    doc = r.json()
    rid, note = doc["id"], doc["receipt"]
    for trust in (_api_trust(harness), TrustStore.load(_trust_file(harness))):
        receipt = verify_receipt(note, trust, record_id=rid)
    assert receipt.origin == harness.network.log["origin"]
    assert receipt.max_merge_delay == harness.settings.max_merge_delay == 60
    assert (
        before.replace(microsecond=before.microsecond // 1000 * 1000)
        <= parse_timestamp(receipt.accepted_at)
        <= after
    )
    rec = harness.record(rid)
    assert format_timestamp(datetime.fromtimestamp(rec["accepted_at"], UTC)) == receipt.accepted_at

    time.sleep(0.01)  # a later acceptance would show in the milliseconds
    again = station.post(body)
    assert again.status_code == 200 and again.json()["existing"] is True, again.text
    resent = verify_receipt(again.json()["receipt"], _api_trust(harness), record_id=rid)
    assert resent.accepted_at == receipt.accepted_at

    # The promise kept: the record is anchored before the deadline, and its bundle is for it in this log.
    harness.wait_status(rid, "anchored")
    assert datetime.now(UTC) <= receipt.deadline
    bundle = harness.client("station-1").get(f"/api/v1/records/{rid}/bundle").json()
    from provenance.log.bundle import EvidenceBundle

    check_kept(receipt, EvidenceBundle.from_dict(bundle))

    # `provenance receipt verify`: the gateway's answer (or the bare note), the trust file, the bundle.
    answer, note_file, bundle_file = tmp_path / "answer.json", tmp_path / "receipt.note", tmp_path / "b.json"
    answer.write_text(json.dumps(doc))
    note_file.write_text(note)
    bundle_file.write_text(json.dumps(bundle))
    trust = str(_trust_file(harness))
    ok = _cli("receipt", "verify", str(answer), "--trust", trust, "--bundle", str(bundle_file), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) | {"kept": True} == json.loads(ok.stdout)
    assert json.loads(ok.stdout)["accepted_at"] == receipt.accepted_at
    assert _cli("receipt", "verify", str(note_file), "--trust", trust, "--record", rid).returncode == 0
    note_file.write_text(_flip(note))
    bad = _cli("receipt", "verify", str(note_file), "--trust", trust)
    assert bad.returncode == 1 and "RECEIPT_INVALID" in bad.stderr and "step 'receipt'" in bad.stderr
    assert "Traceback" not in bad.stderr, bad.stderr
    note_file.write_text(note)
    other = _cli("receipt", "verify", str(note_file), "--trust", trust, "--record", "00" * 32)
    assert other.returncode == 1 and "RECEIPT_INVALID" in other.stderr, other.stderr
    missing = _cli("receipt", "verify", str(note_file), "--trust", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "TRUST_INVALID" in missing.stderr, missing.stderr
    assert "Traceback" not in missing.stderr


def test_bulk_items_carry_receipts_through_the_sdk(harness: Harness) -> None:
    station = harness.client("station-1")
    bodies = [station.body("env.reading", p) for p in hj212_packets(3)]
    bodies.append(tamper_signature(station.body("env.reading", hj212_packets(1)[0])))
    items = [(SignedRecord.from_dict(b), b["payload"]) for b in bodies]
    trust = _api_trust(harness)
    with Client(base_url=harness.server.url, token=station.token, org="station-1") as client:
        first = client.submit_many(items)
        assert [r.status for r in first] == ["accepted", "accepted", "accepted", "rejected"]
        assert first[3].acceptance is None and first[3].raw["receipt"] is None
        times = [r.verify(trust).accepted_at for r in first[:3]]
        time.sleep(0.01)
        again = client.submit_many(items[:3])
        assert [r.status for r in again] == ["existing"] * 3
        assert [r.verify(trust).accepted_at for r in again] == times
        single = client.submit(items[0][0], items[0][1])
        assert single.status == "existing" and single.verify(trust).accepted_at == times[0]
        with pytest.raises(ReceiptInvalid) as exc:
            first[3].verify(trust)
        assert exc.value.step == "receipt"


def test_receipts_fail_flipped_for_another_record_or_under_another_key(harness: Harness) -> None:
    station = harness.client("station-1")
    a, b = (station.submit("env.reading", p).json() for p in hj212_packets(2))
    trust = _api_trust(harness)
    cases = {
        "signature": lambda: verify_receipt(_flip(a["receipt"]), trust, record_id=a["id"]),
        "record": lambda: verify_receipt(a["receipt"], trust, record_id=b["id"]),
    }
    pinned = trust.logs[0]
    other = SM2PrivateKey.generate()
    impostor = TrustStore(
        logs=[
            LogKey(
                name=pinned.name,
                public_key=other.public_key(),
                pem=other.public_key_pem().decode(),
                origin=pinned.origin,
            )
        ]
    )
    cases["signature (another key)"] = lambda: verify_receipt(a["receipt"], impostor, record_id=a["id"])
    for name, case in cases.items():
        with pytest.raises(ReceiptInvalid) as exc:
            case()
        assert (exc.value.step, exc.value.code) == ("receipt", "RECEIPT_INVALID"), name
        assert exc.value.details["check"] == name.split(" ")[0], (name, exc.value.details)
    assert parse_receipt(a["receipt"]).record_id == a["id"]


def test_openapi_documents_the_receipt(harness: Harness) -> None:
    schemas = harness.http.get("/openapi.json").json()["components"]["schemas"]
    accepted = schemas["RecordAccepted"]
    assert "receipt" in accepted["required"] and accepted["properties"]["receipt"]["type"] == "string"
    assert "signed note" in accepted["properties"]["receipt"]["description"]
    assert "receipt" in schemas["BulkItem"]["properties"]


def test_concurrent_and_bulk_acceptances_share_signatures_and_each_receipt_stands_alone(
    harness: Harness, tmp_path: Path
) -> None:
    station = harness.client("station-1")
    trust = _api_trust(harness)
    bodies = [station.body("env.reading", p) for p in hj212_packets(40)]
    # Bulk: every accepted item's receipt is one signed batch note plus the item's leaf and proof.
    doc = station.harness.http.post(
        "/api/v1/records:bulk", json={"records": bodies[:8]}, headers=station.headers
    ).json()
    notes = [item["receipt"] for item in doc["items"]]
    assert len({n.split("\n\n", 1)[1] for n in notes}) == 1
    for item in doc["items"]:
        assert verify_receipt(item["receipt"], trust, record_id=item["id"]).record_id == item["id"]
    receipt_file = tmp_path / "item.json"
    receipt_file.write_text(json.dumps(doc["items"][5]))
    cli = _cli("receipt", "verify", str(receipt_file), "--trust", str(_trust_file(harness)))
    assert cli.returncode == 0 and doc["items"][5]["id"] in cli.stdout, cli.stdout + cli.stderr
    # Concurrent single submissions (grouped or not, as they come): each receipt is for its own record.
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def submit(chunk: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=harness.server.url, headers=station.headers, timeout=30) as http:
            for body in chunk:
                r = http.post("/api/v1/records", json=body)
                assert r.status_code == 202, r.text
                with lock:
                    answers.append(r.json())

    threads = [threading.Thread(target=submit, args=(bodies[8 + i :: 8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 32
    for a in answers:
        assert verify_receipt(a["receipt"], trust, record_id=a["id"]).record_id == a["id"]
