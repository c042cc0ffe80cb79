"""Every rejection of the write path has its code: auth, identity, signature, keys, replay, payload, body."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from devnet.governance import OrgSpec, register_key, register_org, revoke_key
from gateway.core.db import Database
from gateway.core.security import mint_token
from provenance.chain.contracts import Role, at, org_id
from provenance.crypto import SM2PrivateKey
from provenance.records import Envelope
from provenance.timestamps import format_timestamp, parse_timestamp
from tests.kit.gateway import (
    Harness,
    error_code,
    hj212_packets,
    new_rx_id,
    rx_dispense,
    rx_issue,
    rx_review,
    rx_revoke,
    tamper_signature,
    workerless_gateway,
)


def test_auth_required_and_token_invalid(harness: Harness) -> None:
    body = harness.client("hospital-1").body("rx.issue", rx_issue(new_rx_id()))
    r = harness.http.post("/api/v1/records", json=body)
    assert r.status_code == 401 and error_code(r) == "AUTH_REQUIRED"
    r = harness.http.post("/api/v1/records", json=body, headers={"Authorization": "Bearer spt_00.nope"})
    assert r.status_code == 401 and error_code(r) == "TOKEN_INVALID"


def test_org_mismatch(harness: Harness) -> None:
    body = harness.client("hospital-1").body("rx.issue", rx_issue(new_rx_id()))
    r = harness.client("hospital-2").post(body)
    assert r.status_code == 403 and error_code(r) == "ORG_MISMATCH"


def test_org_unknown(harness: Harness) -> None:
    ghost = harness.client("ghost-org", key=SM2PrivateKey.generate())
    r = ghost.submit("rx.issue", rx_issue(new_rx_id()))
    assert r.status_code == 403 and error_code(r) == "ORG_UNKNOWN"


def test_org_registered_while_running(harness: Harness) -> None:
    """An organisation the committee registers while the gateway runs shows in /api/v1/orgs (id list, entry
    and key all come through the registry cache) once the watcher sees the event."""
    new = f"clinic-{secrets.token_hex(4)}"
    key = SM2PrivateKey.generate()

    def entry() -> dict[str, Any] | None:
        orgs: list[dict[str, Any]] = harness.http.get("/api/v1/orgs").json()["orgs"]
        return next((o for o in orgs if o["id"] == new), None)

    assert entry() is None  # the cached list, from before the registration
    w3 = Web3(Web3.HTTPProvider(harness.network.rpc_url))
    registry = at(w3, "OrgRegistry", harness.network.contracts["OrgRegistry"])
    spec = OrgSpec(id=new, role=Role.HOSPITAL, name="南岸社区诊所")
    account = Account.create().address
    register_org(
        w3,
        registry,
        harness.engine.accounts[1:4],
        spec,
        account=account,
        raw_public_key=key.public_key().raw(),
    )
    found = harness.wait(entry, what=f"{new} in /api/v1/orgs")
    assert found["role"] == "hospital" and found["active"] and found["name"] == "南岸社区诊所"
    assert [k["public_key"] for k in found["keys"]] == [key.public_key().to_pem().decode("ascii")]
    db = Database(harness.settings.database_url)
    try:
        token = mint_token(db, new)
    finally:
        db.dispose()
    harness.tokens[new] = token
    # Registered with its key, so the record verifies; but the gateway's manifest holds no transaction
    # account for it, so its prescription could never reach Prescriptions: refused, not accepted.
    r = harness.client(new, key=key).submit("rx.issue", rx_issue(new_rx_id()))
    assert r.status_code == 403 and error_code(r) == "TX_ACCOUNT_MISSING", r.text


def test_forged_signature_and_another_orgs_key(harness: Harness) -> None:
    h = harness.client("hospital-1")
    r = h.post(tamper_signature(h.body("rx.issue", rx_issue(new_rx_id()))))
    assert r.status_code == 400 and error_code(r) == "SIGNATURE_INVALID"
    stolen = harness.network.sm2_key("pharmacy-1")
    r = h.submit("rx.issue", rx_issue(new_rx_id()), key=stolen)
    assert r.status_code == 400 and error_code(r) == "SIGNATURE_INVALID"
    r = h.post({**h.body("rx.issue", rx_issue(new_rx_id())), "signature": "not base64!"})
    assert r.status_code == 400 and error_code(r) == "FORMAT_INVALID"
    r = h.post(
        {**h.body("rx.issue", rx_issue(new_rx_id())), "signature": "MAUCAQECAQE="}
    )  # DER, wrong curve order
    assert r.status_code == 400 and error_code(r) == "SIGNATURE_INVALID"


def _keys(harness: Harness, org: str) -> list[dict[str, object]]:
    """The organisation's SM2 keys as the gateway serves them (from its OrgRegistry cache)."""
    orgs = harness.http.get("/api/v1/orgs").json()["orgs"]
    found: list[dict[str, object]] = next(o for o in orgs if o["id"] == org)["keys"]
    return found


def test_key_revoked_before_record_time(harness: Harness) -> None:
    w3 = Web3(Web3.HTTPProvider(harness.network.rpc_url))
    registry = at(w3, "OrgRegistry", harness.network.contracts["OrgRegistry"])
    committee = harness.engine.accounts[1:4]
    key = SM2PrivateKey.generate()
    index = register_key(w3, registry, committee, "hospital-2", key.public_key().raw())
    h = harness.client("hospital-2", key=key)

    def keys() -> list[dict[str, object]]:
        return _keys(harness, "hospital-2")

    harness.wait(lambda: len(keys()) > index, what="new key visible")
    before = format_timestamp(datetime.now(UTC) - timedelta(seconds=5))
    signed_before = h.body("rx.issue", rx_issue(new_rx_id()), timestamp=before)
    assert h.submit("rx.issue", rx_issue(new_rx_id())).status_code == 202

    # Revoked as of one second ago (block time may run ahead of the wall clock on some engines).
    revoke_key(w3, registry, committee, "hospital-2", index, int(time.time()) - 1)
    harness.wait(lambda: keys()[index]["revoked_at"] is not None, what="revocation visible")
    r = h.submit("rx.issue", rx_issue(new_rx_id()))
    assert r.status_code == 400 and error_code(r) == "KEY_REVOKED"
    assert r.json()["error"]["details"]["key_index"] == index
    # A record signed while the key was valid still verifies: revocation is not retroactive.
    assert h.post(signed_before).status_code == 202
    assert registry.functions.keyCount(org_id("hospital-2")).call() == index + 1


def test_key_not_valid_before_its_window(harness: Harness) -> None:
    """A key rotated in later is valid from its ``validFrom``: a record it signs dated before that is
    KEY_NOT_VALID (not SIGNATURE_INVALID: the key is the org's, the time is wrong); dated inside, accepted."""
    w3 = Web3(Web3.HTTPProvider(harness.network.rpc_url))
    registry = at(w3, "OrgRegistry", harness.network.contracts["OrgRegistry"])
    committee = harness.engine.accounts[1:4]
    key = SM2PrivateKey.generate()
    starts = int(time.time())
    raw = key.public_key().raw()
    index = register_key(w3, registry, committee, "hospital-2", raw, valid_from=starts)
    harness.wait(lambda: len(_keys(harness, "hospital-2")) > index, what="new key visible")
    assert parse_timestamp(str(_keys(harness, "hospital-2")[index]["valid_from"])).timestamp() == starts
    h = harness.client("hospital-2", key=key)
    early = format_timestamp(datetime.fromtimestamp(starts - 60, UTC))
    r = h.submit("rx.issue", rx_issue(new_rx_id()), timestamp=early)
    assert r.status_code == 400 and error_code(r) == "KEY_NOT_VALID", r.text
    assert r.json()["error"]["details"] == {"org": "hospital-2", "key_index": index, "timestamp": early}
    r = h.submit("rx.issue", rx_issue(new_rx_id()))
    assert r.status_code == 202, r.text


def test_replay_and_idempotency(harness: Harness) -> None:
    h = harness.client("hospital-1")
    body = h.body("rx.issue", rx_issue(new_rx_id()))
    first = h.post(body)
    assert first.status_code == 202
    again = h.post(body)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"] and again.json()["existing"]
    nonce = body["record"]["nonce"]
    replay = h.submit("rx.issue", rx_issue(new_rx_id()), nonce=nonce)
    assert replay.status_code == 409 and error_code(replay) == "REPLAYED"
    rec = harness.wait_status(first.json()["id"], "sequenced")
    history = h.get(f"/api/v1/subjects/{body['record']['subject']}/records").json()["items"]
    assert [i["id"] for i in history] == [first.json()["id"]] and rec["leaf_index"] is not None

    key = {"Idempotency-Key": secrets.token_hex(8)}
    b1 = h.body("rx.issue", rx_issue(new_rx_id()))
    assert h.post(b1, headers=key).status_code == 202
    assert h.post(b1, headers=key).status_code == 200
    other = h.post(h.body("rx.issue", rx_issue(new_rx_id())), headers=key)
    assert other.status_code == 409 and error_code(other) == "IDEMPOTENCY_KEY_REUSED"


def test_prev_names_an_accepted_record_of_the_subject(harness: Harness) -> None:
    """Fifth attack, 11 (t46_prev.py): a dispense whose ``prev`` is 64 zeros, or another prescription's
    record, is refused (PREV_UNKNOWN) and not kept; ``prev`` naming the subject's issue is accepted though a
    review followed it (several organisations write one subject: not necessarily its latest), and in a bulk
    request an item may name an earlier item's record."""
    hospital, pharmacist = harness.client("hospital-1"), harness.client("pharmacist-1")
    pharmacy = harness.client("pharmacy-1")
    rx, other = new_rx_id(), new_rx_id()
    issued = hospital.submit("rx.issue", rx_issue(rx)).json()["id"]
    theirs = hospital.submit("rx.issue", rx_issue(other)).json()["id"]
    assert pharmacist.submit("rx.review", rx_review(rx)).status_code == 202
    for prev in ("00" * 32, theirs):
        body = pharmacy.body("rx.dispense", rx_dispense(rx), prev=prev)
        r = pharmacy.post(body)
        assert (r.status_code, error_code(r)) == (409, "PREV_UNKNOWN"), r.text
        assert r.json()["error"]["details"] == {"field": "prev", "prev": prev, "subject": f"rx:{rx}"}
        assert (
            harness.client("regulator")
            .get(f"/api/v1/records/{Envelope.from_dict(body['record']).digest}")
            .status_code
            == 404
        )
    r = pharmacy.submit("rx.dispense", rx_dispense(rx), prev=issued)
    assert r.status_code == 202, r.text
    # In one bulk request: an issue, then its revocation naming it; a revocation naming nothing accepted.
    third = new_rx_id()
    first = hospital.body("rx.issue", rx_issue(third))
    items = [
        first,
        hospital.body("rx.revoke", rx_revoke(third), prev=Envelope.from_dict(first["record"]).digest),
        hospital.body("rx.revoke", rx_revoke(other), prev="11" * 32),
    ]
    r = harness.http.post("/api/v1/records:bulk", json={"records": items}, headers=hospital.headers)
    assert r.status_code == 200, r.text
    got = [(it["status"], (it["error"] or {}).get("code")) for it in r.json()["items"]]
    assert got == [("accepted", None), ("accepted", None), ("rejected", "PREV_UNKNOWN")], got


def test_payload_rejections(harness: Harness) -> None:
    h = harness.client("hospital-1")
    rx = new_rx_id()
    body = h.body("rx.issue", rx_issue(rx))
    tampered = json.loads(json.dumps(body))
    tampered["payload"]["dispenseRequest"]["quantity"]["value"] = 20
    r = h.post(tampered)
    assert r.status_code == 400 and error_code(r) == "PAYLOAD_DIGEST_MISMATCH"

    r = h.submit("rx.issue", rx_issue(rx), subject="rx:SOMEONE-ELSE")
    assert r.status_code == 400 and error_code(r) == "SUBJECT_MISMATCH"

    bad = rx_issue(rx)
    del bad["status"]
    r = h.submit("rx.issue", bad, subject=f"rx:{rx}", payload_digest="0" * 64)
    assert r.status_code == 400 and error_code(r) in ("FHIR_INVALID", "RX_RULE_VIOLATION")

    r = h.submit("rx.issue", "not json", subject=f"rx:{rx}", payload_digest="0" * 64)
    assert r.status_code == 400 and error_code(r) == "PAYLOAD_INVALID"

    r = h.submit("rx.bogus", {"a": 1}, subject=f"rx:{rx}", payload_digest="0" * 64)
    assert r.status_code == 400 and error_code(r) == "KIND_UNKNOWN"

    future = format_timestamp(datetime.now(UTC) + timedelta(hours=1))
    r = h.submit("rx.issue", rx_issue(rx), timestamp=future)
    assert r.status_code == 400 and error_code(r) == "TIMESTAMP_INVALID"

    station = harness.client("station-1")
    from tests.kit.gateway import ASSETS

    crc_bad = (ASSETS / "hj212" / "crc-mismatch-tampered-value.txt").read_bytes().decode("ascii")
    r = station.submit("env.reading", crc_bad, subject="station:x", payload_digest="0" * 64)
    assert r.status_code == 400 and error_code(r) == "HJ212_CRC_MISMATCH"


def test_malformed_requests(harness: Harness) -> None:
    h = harness.client("hospital-1")
    body = h.body("rx.issue", rx_issue(new_rx_id()))
    missing = {**body, "record": {k: v for k, v in body["record"].items() if k != "nonce"}}
    r = h.post(missing)
    assert r.status_code == 400 and error_code(r) == "RECORD_INVALID"

    r = h.post({"record": body["record"], "payload": body["payload"]})
    assert r.status_code == 422 and error_code(r) == "REQUEST_INVALID"

    raw = {**h.headers, "Content-Type": "application/json"}
    r = harness.http.post("/api/v1/records", content=b'{"record": {', headers=raw)
    assert r.status_code == 400 and error_code(r) == "JSON_INVALID"

    deep = b'{"record": ' + b"[" * 200 + b"]" * 200 + b"}"
    r = harness.http.post("/api/v1/records", content=deep, headers=raw)
    assert r.status_code == 400 and error_code(r) == "BODY_TOO_DEEP"

    huge = b'{"record": "' + b"x" * (harness.settings.max_body_bytes + 10) + b'"}'
    r = harness.http.post("/api/v1/records", content=huge, headers=raw)
    assert r.status_code == 413 and error_code(r) == "BODY_TOO_LARGE"

    r = harness.http.get("/api/v1/records/" + "0" * 64, headers=h.headers)
    assert r.status_code == 404 and error_code(r) == "RECORD_NOT_FOUND"


def test_backpressure_503_with_retry_after(harness: Harness, tmp_path: Path) -> None:
    # Workers off: nothing drains, so the backlog only grows.
    station = harness.client("station-1")
    with workerless_gateway(harness, tmp_path, "station-1", backlog_limit=2) as (settings, http):
        codes = [http.post("/api/v1/records", json=station.body("env.reading", p)) for p in hj212_packets(3)]
    assert [c.status_code for c in codes] == [202, 202, 503]
    assert error_code(codes[2]) == "BACKLOG_FULL"
    assert codes[2].headers["Retry-After"] == str(settings.retry_after)


def test_token_rotation_revokes_the_old_token(harness: Harness) -> None:
    from gateway.core.security import rotate_token

    db = Database(harness.settings.database_url)
    try:
        old = mint_token(db, "auditor", label="old")
        assert harness.http.get(
            "/api/v1/rx/none/check", headers={"Authorization": f"Bearer {old}"}
        ).status_code
        new = rotate_token(db, "auditor", label="new")
    finally:
        db.dispose()

    def refused() -> bool:
        r = harness.http.get("/api/v1/records/" + "0" * 64, headers={"Authorization": f"Bearer {old}"})
        return r.status_code == 401 and error_code(r) == "TOKEN_INVALID"

    harness.wait(refused, timeout=5, what="old token refused after the cache TTL")
    r = harness.http.get("/api/v1/records/" + "0" * 64, headers={"Authorization": f"Bearer {new}"})
    assert r.status_code == 404 and error_code(r) == "RECORD_NOT_FOUND"
    harness.tokens["auditor"] = new  # later tests use the current token
