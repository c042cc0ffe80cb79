"""Attacks the gateway suite does not already cover, through the real HTTP API and the node's JSON-RPC.

Each test names the attack and asserts the error code that stops it. The ones covered elsewhere are
listed in docs/security.md with their test ids (forged signature, another org's key, revoked key,
unknown org, wrong role, nonce replay, tampered payload, double dispense and races, revoke/expiry,
access without or after a revoked consent, oversize/deep bodies, token of another org).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from eth_account import Account
from web3 import Web3
from web3.types import Nonce, TxParams, Wei

from gateway.core.db import Database
from gateway.core.kek import read_kek
from gateway.models import DataKey, Record, RecordPayload
from provenance.chain.contracts import ContractReverted, at, transact
from provenance.crypto import SM2PrivateKey, generate_sm4_key, sm3_hex, sm4_gcm_decrypt, sm4_gcm_encrypt
from provenance.errors import PayloadDigestMismatch, VerificationError
from provenance.log.bundle import EvidenceBundle
from provenance.log.receipt import parse_receipt
from provenance.records import canonical_bytes
from tests.kit.gateway import (
    Harness,
    chain_lead,
    error_code,
    hj212_packets,
    new_rx_id,
    rx_issue,
    share_access,
    share_consent,
    share_request,
    verify_bundle,
)


def _history(harness: Harness, subject: str) -> list[str]:
    items = harness.client("auditor").get(f"/api/v1/subjects/{subject}/records").json()["items"]
    return [i["id"] for i in items]


# --- replay -------------------------------------------------------------------------------------------


def test_replay_with_a_new_id_is_refused(harness: Harness) -> None:
    """An eavesdropper replays an accepted record under a new id (new nonce or time): the signature no longer
    covers it. A second signature over the same envelope is the same record: one id, one leaf."""
    h = harness.client("hospital-1")
    body = h.body("rx.issue", rx_issue(new_rx_id()))
    first = h.post(body)
    assert first.status_code == 202, first.text
    for field, value in (("nonce", secrets.token_hex(16)), ("timestamp", "2026-01-01T00:00:00.000Z")):
        replay = {**body, "record": {**body["record"], field: value}}
        r = h.post(replay)
        assert r.status_code == 400 and error_code(r) == "SIGNATURE_INVALID", (field, r.text)
    # SM2 signatures are randomised: the org's second signature over the same envelope is another byte string.
    resigned = h.body(
        "rx.issue",
        body["payload"],
        nonce=body["record"]["nonce"],
        timestamp=body["record"]["timestamp"],
    )
    assert resigned["record"] == body["record"] and resigned["signature"] != body["signature"]
    again = h.post(resigned)
    assert again.status_code == 200, again.text
    # the same answer, and the same promise (original acceptance time) in a receipt signed anew
    assert {**again.json(), "receipt": None} == {**first.json(), "existing": True, "receipt": None}
    assert parse_receipt(again.json()["receipt"]) == parse_receipt(first.json()["receipt"])
    harness.wait_status(first.json()["id"], "sequenced")
    assert _history(harness, body["record"]["subject"]) == [first.json()["id"]]


# --- signatures and keys ------------------------------------------------------------------------------


def test_self_asserted_signer_key_is_ignored(harness: Harness) -> None:
    """A client cannot choose the key it is checked against: ``signer`` is informative, keys come from
    OrgRegistry. An attacker's key with its own PEM beside it is SIGNATURE_INVALID."""
    h = harness.client("hospital-1")
    attacker = SM2PrivateKey.generate()
    body = h.body("rx.issue", rx_issue(new_rx_id()), key=attacker)
    body["signer"] = {"org": "hospital-1", "public_key": attacker.public_key_pem().decode()}
    r = h.post(body)
    assert r.status_code == 400 and error_code(r) == "SIGNATURE_INVALID"
    # Garbage in the informative field changes nothing for an honest record.
    honest = h.body("rx.issue", rx_issue(new_rx_id()))
    honest["signer"] = {"org": "hospital-1", "public_key": "-----BEGIN PUBLIC KEY-----\nnot a key\n"}
    assert h.post(honest).status_code == 202


def _der(r: int, s: int) -> bytes:
    def integer(v: int) -> bytes:
        raw = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
        return b"\x02" + bytes([len(raw)]) + raw

    body = integer(r) + integer(s)
    return b"\x30" + bytes([len(body)]) + body


MALFORMED_DER = {
    "empty": b"",
    "not a sequence": b"\x04\x02\x01\x01",
    "truncated": bytes.fromhex("3045022100"),
    "length overflow": bytes.fromhex("30ff020101020101"),
    "zero r": _der(0, 1),
    "negative s": bytes.fromhex("3006020101020180"),
    "r = n": _der(0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123, 1),
    "huge": b"\x30\x82\xff\xff" + b"\x02" * 64,
}


@pytest.mark.parametrize("name", sorted(MALFORMED_DER))
def test_malformed_der_signature(harness: Harness, name: str) -> None:
    h = harness.client("hospital-1")
    body = {
        **h.body("rx.issue", rx_issue(new_rx_id())),
        "signature": base64.b64encode(MALFORMED_DER[name]).decode(),
    }
    r = h.post(body)
    assert r.status_code == 400 and error_code(r) in ("SIGNATURE_INVALID", "FORMAT_INVALID"), r.text


def test_valid_signature_with_trailing_bytes_is_refused(harness: Harness) -> None:
    """DER is strict: a valid signature plus trailing garbage must not verify (no malleable encodings)."""
    h = harness.client("hospital-1")
    body = h.body("rx.issue", rx_issue(new_rx_id()))
    sig = base64.b64decode(body["signature"])
    for variant in (sig + b"\x00", sig + b"\x05\x00"):
        r = h.post({**body, "signature": base64.b64encode(variant).decode()})
        assert r.status_code == 400 and error_code(r) in ("SIGNATURE_INVALID", "FORMAT_INVALID"), r.text


@pytest.mark.parametrize(
    "signature",
    ["", "====", "MEUCIQ", "MEUC IQ==", "MEUC\nIQ==", "-_-_", "🔑", "A" * 10_001],
    ids=["empty", "padding only", "unpadded", "space", "newline", "urlsafe", "emoji", "long"],
)
def test_malformed_base64_signature(harness: Harness, signature: str) -> None:
    h = harness.client("hospital-1")
    r = h.post({**h.body("rx.issue", rx_issue(new_rx_id())), "signature": signature})
    assert r.status_code == 400 and error_code(r) in ("FORMAT_INVALID", "SIGNATURE_INVALID"), r.text


# --- malformed bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "codes"),
    [
        (b"", ("JSON_INVALID", "REQUEST_INVALID")),
        (b"\xff\xfe{}", ("JSON_INVALID", "REQUEST_INVALID")),
        (b'{"record": NaN, "signature": "x", "payload": {}}', ("JSON_INVALID", "REQUEST_INVALID")),
        (b"[1, 2, 3]", ("REQUEST_INVALID",)),
        (b'"just a string"', ("REQUEST_INVALID",)),
        (b'{"record": {}, "signature": "x", "payload": 5}', ("REQUEST_INVALID",)),
        (b'{"record": {"kind": "rx.issue"}, "signature": "", "payload": {}}', ("RECORD_INVALID",)),
        (b'{"record": {}}' + b" " * 10 + b"}", ("JSON_INVALID",)),
    ],
    ids=["empty", "utf16-bom", "nan", "array", "string", "payload-number", "envelope-partial", "trailing"],
)
def test_malformed_json_bodies(harness: Harness, raw: bytes, codes: tuple[str, ...]) -> None:
    h = harness.client("hospital-1")
    r = harness.http.post(
        "/api/v1/records", content=raw, headers={**h.headers, "Content-Type": "application/json"}
    )
    assert 400 <= r.status_code < 500 and error_code(r) in codes, r.text


def test_oversize_streamed_body_and_bulk_limits(harness: Harness) -> None:
    """A body without Content-Length (chunked) is cut at the limit too; bulk counts and depth are bounded."""
    h = harness.client("station-1")
    limit = harness.settings.max_body_bytes

    def chunks() -> Iterator[bytes]:
        yield b'{"record": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = harness.http.post(
        "/api/v1/records", content=chunks(), headers={**h.headers, "Content-Type": "application/json"}
    )
    assert r.status_code == 413 and error_code(r) == "BODY_TOO_LARGE"

    bodies = [h.body("env.reading", p) for p in hj212_packets(2)]
    too_many = {"records": bodies * (harness.settings.max_bulk // 2 + 1)}
    r = harness.http.post("/api/v1/records:bulk", json=too_many, headers=h.headers)
    assert r.status_code in (400, 422) and error_code(r) == "REQUEST_INVALID"
    r = harness.http.post("/api/v1/records:bulk", json={"records": []}, headers=h.headers)
    assert r.status_code in (400, 422) and error_code(r) == "REQUEST_INVALID"
    deep: Any = "x"
    for _ in range(harness.settings.max_json_depth + 5):
        deep = {"a": deep}
    nested = {"records": [{**bodies[0], "payload": deep}]}
    r = harness.http.post("/api/v1/records:bulk", json=nested, headers=h.headers)
    assert r.status_code == 400 and error_code(r) == "BODY_TOO_DEEP"
    # Brackets inside strings are data, not nesting: an honest record with them is fine.
    ok = harness.http.post(
        "/api/v1/records:bulk",
        json={"records": [{**bodies[1], "signer": {"note": "[" * 500 + "{" * 500}}]},
        headers=h.headers,
    )
    assert ok.status_code == 200 and ok.json()["accepted"] == 1, ok.text


# --- the database behind the gateway ------------------------------------------------------------------


def test_payload_rewritten_in_database_is_detected(harness: Harness) -> None:
    """Someone with write access to the gateway's database rewrites a payload consistently: with the KEK
    file too (the data key unwrapped, the payload re-encrypted under it), or without it (under a data key of
    its own, stored as a row from before the KEK). The gateway refuses to serve either (PAYLOAD_CORRUPT); a
    gateway that served it anyway is caught offline (PAYLOAD_DIGEST_MISMATCH); rewriting the signed digest
    too breaks the signature."""
    h = harness.client("hospital-1")
    r = h.submit("rx.issue", rx_issue(new_rx_id()))
    assert r.status_code == 202, r.text
    rid = r.json()["id"]
    harness.wait_status(rid, "anchored")
    genuine = h.get(f"/api/v1/records/{rid}/bundle").json()
    verify_bundle(genuine, harness)

    forged_payload = json.loads(json.dumps(genuine["payload"]))
    forged_payload["dispenseRequest"]["quantity"]["value"] = 60  # 20 capsules become 60
    forged = canonical_bytes(forged_payload)
    kek = read_kek(harness.settings.kek_path)
    assert kek is not None
    db = Database(harness.settings.database_url)
    try:
        with db.write() as s:  # with the KEK file
            key = s.get(DataKey, rid)
            row = s.get(RecordPayload, rid)
            assert key is not None and row is not None
            data_key = kek.data_key(key)
            assert sm4_gcm_decrypt(data_key, row.ciphertext, rid.encode()) == canonical_bytes(
                genuine["payload"]
            )
            row.ciphertext = sm4_gcm_encrypt(data_key, forged, rid.encode())
            s.add(row)
    finally:
        db.dispose()
    r = h.get(f"/api/v1/records/{rid}/bundle")
    assert r.status_code == 500 and error_code(r) == "PAYLOAD_CORRUPT"

    db = Database(harness.settings.database_url)
    try:
        with db.write() as s:  # without it: a data key of its own, unwrapped
            key = s.get(DataKey, rid)
            row = s.get(RecordPayload, rid)
            assert key is not None and row is not None
            own = generate_sm4_key()
            key.key, key.kek_id = own, None
            row.ciphertext = sm4_gcm_encrypt(own, forged, rid.encode())
            s.add_all([key, row])
    finally:
        db.dispose()
    r = h.get(f"/api/v1/records/{rid}/bundle")
    assert r.status_code == 500 and error_code(r) == "PAYLOAD_CORRUPT"

    # A dishonest gateway serving the rewritten payload: the verifier recomputes its digest.
    served = {**genuine, "payload": forged_payload}
    with pytest.raises(PayloadDigestMismatch):
        verify_bundle(served, harness)

    # The same with the record's payload digest rewritten to match: now the signed envelope changed.
    db = Database(harness.settings.database_url)
    try:
        with db.write() as s:
            from sqlmodel import select

            rec = s.exec(select(Record).where(Record.id == rid)).one()
            rec.payload_digest = sm3_hex(forged)
            s.add(rec)
    finally:
        db.dispose()
    r = h.get(f"/api/v1/records/{rid}/bundle")
    assert r.status_code == 200, r.text
    assert r.json()["payload"] == forged_payload
    with pytest.raises(VerificationError) as caught:
        verify_bundle(r.json(), harness)
    assert caught.value.step in ("digest", "signature", "inclusion"), caught.value.to_dict()


# --- workflow -----------------------------------------------------------------------------------------


def test_access_after_consent_expired(harness: Harness) -> None:
    user, owner = harness.client("data-user"), harness.client("data-owner")
    request_id = "REQ-" + secrets.token_hex(4)
    assert user.submit("share.request", share_request(request_id, "data-user")).status_code == 202
    # Expiring a few seconds after the chain's clock, which DataSharing checks (it runs ahead of ours).
    lead = chain_lead(harness)
    r = owner.submit("share.consent", share_consent(request_id, valid_for=timedelta(seconds=lead + 4)))
    assert r.status_code == 202, r.text
    digest = harness.record(r.json()["id"])["payload_digest"]

    def refused() -> httpx.Response | None:
        r = user.submit("share.access", share_access(request_id, digest, "data-user"))
        return r if r.status_code != 202 else None

    r = harness.wait(refused, timeout=lead + 30, what="the consent expired")
    assert r.status_code == 409 and error_code(r) == "CONSENT_EXPIRED", r.text


def test_access_under_another_users_consent(harness: Harness) -> None:
    """A consent is for the requesting organisation only; the data owner cannot log access under it."""
    user = harness.client("data-user")
    request_id = "REQ-" + secrets.token_hex(4)
    assert user.submit("share.request", share_request(request_id, "data-user")).status_code == 202
    r = harness.client("data-owner").submit("share.consent", share_consent(request_id))
    assert r.status_code == 202, r.text
    digest = harness.record(r.json()["id"])["payload_digest"]
    r = harness.client("data-owner").submit("share.access", share_access(request_id, digest, "data-owner"))
    assert r.status_code == 403 and error_code(r) == "ROLE_FORBIDDEN"


# --- straight to the node -----------------------------------------------------------------------------


def _rpc(url: str, method: str, params: list[Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    out: dict[str, Any] = httpx.post(url, json=body, timeout=30).json()
    return out


@pytest.mark.embedded_only
def test_transaction_from_non_permitted_account_refused_by_node(harness: Harness) -> None:
    """An account neither in genesis nor bound to an organisation in OrgRegistry cannot transact, even
    when it calls ProvenanceLog.anchor directly with a well-formed, funded-looking transaction."""
    w3 = Web3(Web3.HTTPProvider(harness.network.rpc_url))
    log = at(w3, "ProvenanceLog", harness.network.contracts["ProvenanceLog"])
    stranger = Account.create()
    params: TxParams = {
        "from": stranger.address,
        "nonce": Nonce(0),
        "gas": 200_000,
        "maxFeePerGas": Wei(10**10),
        "maxPriorityFeePerGas": Wei(1),
        "chainId": harness.network.chain_id,
    }
    tx = log.functions.anchor(10**9, b"\x11" * 32, []).build_transaction(params)
    raw = stranger.sign_transaction(tx).raw_transaction
    out = _rpc(harness.network.rpc_url, "eth_sendRawTransaction", ["0x" + raw.hex()])
    assert "error" in out and out["error"]["code"] == -32003, out
    # Malformed raw transactions are refused with a JSON-RPC error, not a crash.
    for junk in ("0x", "0x00", "0x" + "ff" * 64, "nothex"):
        out = _rpc(harness.network.rpc_url, "eth_sendRawTransaction", [junk])
        assert "error" in out and isinstance(out["error"]["code"], int), out


def test_smaller_or_conflicting_checkpoint_anchor_refused(harness: Harness) -> None:
    """The log operator's own account (a malicious log operator) cannot anchor a smaller size or another
    root for an anchored size; other organisations cannot anchor at all. The anchored root is unchanged."""
    station = harness.client("station-1")
    # One bulk request: its records enter the log in one step, so the sizes in between are never anchored.
    bulk = {"records": [station.body("env.reading", p) for p in hj212_packets(3)]}
    r = harness.http.post("/api/v1/records:bulk", json=bulk, headers=station.headers)
    assert r.status_code == 200 and r.json()["accepted"] == 3, r.text
    ids = [item["id"] for item in r.json()["items"]]
    harness.wait_status(ids[-1], "anchored")
    w3 = Web3(Web3.HTTPProvider(harness.network.rpc_url))
    log = at(w3, "ProvenanceLog", harness.network.contracts["ProvenanceLog"])
    count = log.functions.anchorCount().call()
    size, root = (lambda a: (int(a[0]), bytes(a[1])))(log.functions.anchorAt(count - 1).call())
    operator = harness.network.account(harness.network.log["operator_org"])
    other_root = bytes(31) + b"\x01" if root != bytes(31) + b"\x01" else bytes(31) + b"\x02"

    # A smaller size never anchored (the gateway anchors only its newest checkpoint, so gaps exist).
    never = next(s for s in range(size - 1, 0, -1) if log.functions.rootAt(s).call() == bytes(32))
    attempts = {
        "SizeNotIncreasing": log.functions.anchor(never, other_root, []),
        "RootConflict": log.functions.anchor(size, other_root, []),
    }
    for expected, fn in attempts.items():
        with pytest.raises(ContractReverted) as caught:
            transact(w3, fn, operator)
        assert caught.value.error == expected
    with pytest.raises(ContractReverted) as caught:
        transact(
            w3, log.functions.anchor(size + 10**6, other_root, []), harness.network.account("hospital-1")
        )
    assert caught.value.error == "Unauthorized"
    assert bytes(log.functions.rootAt(size).call()) == root
    bundle = harness.client("auditor").get(f"/api/v1/records/{ids[-1]}/bundle").json()
    verify_bundle(bundle, harness)
    EvidenceBundle.from_dict(bundle)
