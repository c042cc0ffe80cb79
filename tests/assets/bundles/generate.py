"""Regenerate the golden evidence bundles with the real SDK (from the repo root, SDK importable):
`PYTHONPATH=. .venv/bin/python tests/assets/bundles/generate.py`.

The keys under ``keys/`` are TEST FIXTURES, committed on purpose so that anyone can regenerate these files;
they protect nothing. Envelopes (timestamps, nonces) are fixed, so record ids are stable across runs; SM2
signatures are randomised, so signatures, roots and checkpoints change on each run (all files together).

Outputs, beside this script:
- ``valid.json``: an rx.issue bundle with payload and anchor; every step holds.
- ``valid-no-payload.json``: the same record with the payload withheld; the payload step is skipped.
- ``valid-jcs-edge-cases.json``: a valid bundle whose payload holds RFC 8785 corner cases.
- one bundle per attack, named after it (``tampered-payload.json``, ``forged-signature.json`` ...).
- ``trust.json``, ``trust-hospital-key-expired.json``, ``trust-other-log.json``: trust files pinning the
  fixture keys, with the hospital's key expired before the valid record, and with the log pinned under
  another name.
- ``gateway-fixture.json``: what a gateway would serve for the tests: subject histories and every bundle.

Not made here: ``gateway-sample-*.json`` are bundles served by the real gateway during its tests (tree of
1000+ leaves, anchored on a devnet chain), kept byte for byte as captured.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

from provenance.bundle import Anchor
from provenance.checkpoint import KEY_ID_SIZE, parse_note
from provenance.crypto import SM2PrivateKey
from provenance.crypto.sm3 import sm3_hex
from provenance.log import RecordLog
from provenance.records import Envelope, SignedRecord, digest_of, parse_timestamp, sign_envelope
from provenance.trust import LogKey, OrgEntry, OrgKey, TrustStore
from provenance.types import Digest, OrgId, RecordKind, Subject

HERE = Path(__file__).resolve().parent
KEYS = HERE / "keys"
ORIGIN = "golden.shancheng.test/log"
CHAIN_ID = 20260
CONTRACT = "0x" + "5c" * 20  # a recognisable fixture address, not a deployed contract


def fixture_key(name: str) -> SM2PrivateKey:
    """The committed test-fixture key ``keys/test-fixture-<name>.pem``, created on first use."""
    path = KEYS / f"test-fixture-{name}.pem"
    if path.exists():
        return SM2PrivateKey.from_pem(path.read_bytes())
    key = SM2PrivateKey.generate()
    KEYS.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.to_pem())
    path.with_name(f"test-fixture-{name}.pub.pem").write_bytes(key.public_key_pem())
    return key


def fixed_hex(label: str, n: int = 64) -> str:
    """A deterministic hex string derived from ``label`` (fixture nonces, tx and block hashes)."""
    return sm3_hex(label.encode("utf-8"))[:n]


def medication_request(rx_id: str, drug: str, end: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rx_id,
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/golden-patient-1", "display": "张三"},
        "medicationCodeableConcept": {"text": drug},
        "dosageInstruction": [{"text": "每日三次，每次一片 (three times a day)"}],
        "dispenseRequest": {
            "validityPeriod": {"start": "2026-11-01T00:00:00Z", "end": end},
            "quantity": {"value": 30, "unit": "片"},
        },
        "authoredOn": "2026-11-20T08:00:00Z",
    }


# (kind, subject, signing org, timestamp, payload); the order is the log order.
RECORDS: list[tuple[str, str, str, str, Any]] = [
    (
        "rx.issue",
        "rx:golden-0001",
        "hosp-1",
        "2026-11-20T08:00:00.000Z",
        medication_request("golden-0001", "阿莫西林胶囊 0.25g", "2026-12-31T23:59:59Z"),
    ),
    (
        "rx.issue",
        "rx:golden-0002",
        "hosp-1",
        "2026-11-20T08:05:00.000Z",
        medication_request("golden-0002", "布洛芬缓释胶囊 0.3g", "2026-12-31T23:59:59Z"),
    ),
    (
        "rx.dispense",
        "rx:golden-0001",
        "pharm-1",
        "2026-11-21T10:30:00.000Z",
        {
            "resourceType": "MedicationDispense",
            "id": "golden-0001-d1",
            "status": "completed",
            "authorizingPrescription": [{"reference": "MedicationRequest/golden-0001"}],
            "quantity": {"value": 30, "unit": "片"},
            "whenHandedOver": "2026-11-21T10:30:00Z",
        },
    ),
    (
        "rx.revoke",
        "rx:golden-0002",
        "hosp-1",
        "2026-11-21T11:00:00.000Z",
        {"reason": "开错剂量 (wrong dose)", "prescription": "MedicationRequest/golden-0002"},
    ),
    (
        "rx.issue",
        "rx:golden-0003",
        "hosp-1",
        "2026-01-10T09:00:00.000Z",
        medication_request("golden-0003", "维生素C片 100mg", "2026-02-10T23:59:59Z"),
    ),
    (
        "env.reading",
        "station:golden-01",
        "env-1",
        "2026-11-22T00:00:00.000Z",
        {"station": "golden-01", "pollutants": {"a34004": 35.2, "a21026": 0.5e-2}},
    ),
    (
        "share.access",
        "dataset:golden-census",
        "platform-1",
        "2026-11-22T01:00:00.000Z",
        {"reader": "analyst-7", "fields": ["年龄", "区县"], "purpose": "统计"},
    ),
    # RFC 8785 corner cases (number forms, escapes, UTF-16 key order): the page must hash them as Python does.
    (
        "party.record",
        "branch:golden-jcs",
        "platform-1",
        "2026-11-22T02:00:00.000Z",
        {
            "numbers": [
                0,
                -0.0,
                1e21,
                1e-7,
                123456789012345.67,
                5e-324,
                1.7976931348623157e308,
                9007199254740991,
                -9007199254740991,
                0.1,
                100.0,
                33.3333333333,
                -1.5e-9,
            ],
            "strings": ['\u0000\u0007\b\t\n\f\r"\\/', "\u2028\u2029", "😀", "é", "中文", "\u007f"],
            "keys": {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "\u0080": 6, "ö": 7, "": 8},
            "nested": [[], {}, [None, True, False]],
        },
    ),
]


def build() -> dict[str, Any]:
    keys = {org: fixture_key(name) for org, name in _ORG_KEYS.items()}
    log_key = fixture_key("log")
    log = RecordLog.in_memory(origin=ORIGIN, key_name=ORIGIN, key=log_key)

    prev: dict[str, str] = {}
    entries: list[tuple[int, SignedRecord, Any]] = []
    for n, (kind, subject, org, ts, payload) in enumerate(RECORDS):
        env = Envelope(
            kind=RecordKind(kind),
            subject=Subject(subject),
            org=OrgId(org),
            timestamp=ts,
            nonce=fixed_hex(f"golden nonce {n}", 32),
            prev=Digest(prev[subject]) if subject in prev else None,
            payload_digest=digest_of(payload),
        )
        env.validate()
        signed = sign_envelope(env, keys[org])
        prev[subject] = signed.record_id
        entries.append((log.append(signed), signed, payload))

    cp, note = log.checkpoint()
    anchor = Anchor(
        chain_id=CHAIN_ID,
        contract=CONTRACT,
        tx_hash="0x" + fixed_hex("golden anchor tx"),
        block_number=42,
        block_hash="0x" + fixed_hex("golden anchor block"),
        tree_size=cp.size,
        root=cp.root,
    )

    bundles: dict[str, dict[str, Any]] = {}
    histories: dict[str, list[dict[str, Any]]] = {}
    for index, signed, payload in entries:
        env = signed.envelope
        bundle = log.bundle(
            signed=signed,
            leaf_index=index,
            signer_public_key_pem=keys[env.org].public_key_pem().decode("ascii"),
            note=note,
            tree_size=cp.size,
            payload=payload,
            anchor=anchor,
        ).to_dict()
        bundles[signed.record_id] = bundle
        # The fields of the gateway's RecordPublic that a history view needs.
        histories.setdefault(env.subject, []).append(
            {
                "id": signed.record_id,
                **env.to_dict(),
                "signature": signed.signature_b64(),
                "status": "anchored",
                "leaf_index": index,
            }
        )

    valid = bundles[entries[0][1].record_id]
    attacker = fixture_key("attacker")
    out: dict[str, Any] = {"valid.json": valid}

    withheld = copy.deepcopy(valid)
    del withheld["payload"]
    out["valid-no-payload.json"] = withheld

    # The payload a pharmacy would be shown differs from what the hospital signed.
    tampered = copy.deepcopy(valid)
    tampered["payload"]["dispenseRequest"]["quantity"]["value"] = 300
    out["tampered-payload.json"] = tampered

    # The envelope itself edited after signing (the digest no longer matches).
    edited = copy.deepcopy(valid)
    edited["record"]["org"] = "hosp-2"
    edited["signer"]["org"] = "hosp-2"
    out["tampered-record.json"] = edited

    # A signature by another key over the very same bytes, the hospital's key still claimed.
    forged = copy.deepcopy(valid)
    env_bytes = entries[0][1].envelope.canonical()
    forged["signature"] = base64.b64encode(attacker.sign(env_bytes)).decode("ascii")
    out["forged-signature.json"] = forged

    # The bundle claims another organisation signed it.
    impostor = copy.deepcopy(valid)
    impostor["signer"]["org"] = "pharm-1"
    out["signer-mismatch.json"] = impostor

    # One hash of the inclusion proof flipped.
    bad_proof = copy.deepcopy(valid)
    first = bytearray(base64.b64decode(bad_proof["log"]["inclusion_proof"][0]))
    first[0] ^= 0x01
    bad_proof["log"]["inclusion_proof"][0] = base64.b64encode(bytes(first)).decode("ascii")
    out["wrong-proof.json"] = bad_proof

    # The checkpoint signed by another key that claims the log's name and key ID.
    bad_note = copy.deepcopy(valid)
    _, sigs = parse_note(note)
    body = note[: note.rindex("\n\n") + 1]
    forged_line = base64.b64encode(sigs[0].key_id + attacker.sign(body.encode("utf-8"))).decode("ascii")
    bad_note["log"]["checkpoint"] = f"{body}\n\u2014 {ORIGIN} {forged_line}\n"
    assert len(sigs[0].key_id) == KEY_ID_SIZE
    out["wrong-checkpoint-signature.json"] = bad_note

    # The anchor is for another root than the checkpoint.
    bad_anchor = copy.deepcopy(valid)
    bad_anchor["anchor"]["root"] = "0x" + fixed_hex("some other root")
    out["wrong-anchor.json"] = bad_anchor

    out["valid-jcs-edge-cases.json"] = bundles[entries[-1][1].record_id]

    # Trust files (`provenance orgs export` form): the right keys, then two ways a pin must refuse.
    def trust(*, hospital_until: str | None = None, log_name: str = ORIGIN) -> dict[str, Any]:
        orgs = {}
        for org, key in keys.items():
            until = hospital_until if org == "hosp-1" else None
            pub = key.public_key()
            pem = key.public_key_pem().decode("ascii")
            org_key = OrgKey(
                public_key=pub,
                pem=pem,
                valid_from=parse_timestamp("2026-01-01T00:00:00Z"),
                valid_until=parse_timestamp(until) if until else None,
            )
            orgs[org] = OrgEntry(org_id=org, role=_ORG_ROLES[org], name=org, keys=(org_key,))
        log_pub = LogKey(
            name=log_name, public_key=log_key.public_key(), pem=log.public_key_pem(), origin=ORIGIN
        )
        store = TrustStore(
            orgs=orgs, logs=[log_pub], chain={"chain_id": CHAIN_ID, "provenance_log": CONTRACT}
        )
        return store.to_dict()

    out["trust.json"] = trust()
    out["trust-hospital-key-expired.json"] = trust(hospital_until="2026-06-01T00:00:00Z")
    out["trust-other-log.json"] = trust(log_name="other.shancheng.test/log")

    out["gateway-fixture.json"] = {
        "_comment": "Test fixture: what the gateway's JSON API would answer. Made by generate.py.",
        "subjects": histories,
        "bundles": bundles,
    }
    return out


_ORG_KEYS = {"hosp-1": "hospital", "pharm-1": "pharmacy", "env-1": "station", "platform-1": "platform"}
_ORG_ROLES = {
    "hosp-1": "hospital",
    "pharm-1": "pharmacy",
    "env-1": "env_station",
    "platform-1": "data_platform",
}


def main() -> None:
    for name, doc in build().items():
        text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
