"""Regenerate the golden evidence bundles with the real SDK (from the repo root, SDK importable):
`PYTHONPATH=. .venv/bin/python tests/assets/bundles/generate.py [NAME...]` (only the files named).

The keys under ``keys/`` are TEST FIXTURES, committed on purpose so that anyone can regenerate these files;
they protect nothing. Envelopes (timestamps, nonces) are fixed, so record ids are stable across runs; SM2
signatures are randomised, so signatures, roots and checkpoints change on each run (all files together).

Outputs, beside this script:
- ``valid.json``: an rx.issue bundle with payload and anchor; every step holds.
- ``valid-no-payload.json``: the same record with the payload withheld; the payload step is skipped.
- ``valid-jcs-edge-cases.json``: a valid bundle whose payload holds RFC 8785 corner cases.
- one bundle per attack, named after it (``tampered-payload.json``, ``forged-signature.json`` ...), and
  one per finding of issue 25 (an independent attack on the verifiers): ``log-operator-fork.json``,
  ``forged-unpinned.json``, ``unsubmitted-self-made-log.json``, ``other-origin.json``,
  ``anchor-other-chain.json`` and the parser cases ``unknown-property-*.json``, ``float-*.json``,
  ``payload-*.json``, ``timestamp-year-0099.json``, ``pem-*.json``, ``signature-trailing-bits.json``,
  ``duplicate-keys.json``, ``bom.json``, ``anchor-uppercase-block-hash.json`` (these last three are raw
  text, not JSON a parser would write). ``ATTACKS`` below says what each models.
- ``trust.json``, ``trust-hospital-key-expired.json``, ``trust-other-log.json``: trust files pinning the
  fixture keys (chain and contract too), with the hospital's key expired before the valid record, and with
  the log pinned under another name; ``trust-no-logs.json`` pins organisations only,
  ``trust-log-key-retired.json`` a log key revoked (a rotation's switch) before the valid record,
  ``trust-ancient-hospital-key.json`` a hospital key valid until 1999, ``trust-unknown-version.json`` is a
  trust file no verifier may load.
- ``gateway-fixture.json``: what a gateway would serve for the tests: subject histories and every bundle,
  and one history whose listing the gateway forged (``rx:golden-swap``).

Not made here: ``gateway-sample-*.json`` are bundles served by the real gateway during its tests (tree of
1000+ leaves, anchored on a devnet chain), kept byte for byte as captured.
"""

from __future__ import annotations

import base64
import copy
import json
import sys
from pathlib import Path
from typing import Any

from provenance.crypto import SM2PrivateKey
from provenance.crypto.sm3 import sm3_hex
from provenance.domains import kind_roles
from provenance.log.bundle import Anchor
from provenance.log.checkpoint import KEY_ID_SIZE, parse_note, sign_note
from provenance.log.record_log import RecordLog
from provenance.orgs import OrgEntry, OrgKey
from provenance.records import (
    Envelope,
    SignedRecord,
    canonical_bytes,
    digest_of,
    sign_envelope,
)
from provenance.timestamps import parse_timestamp
from provenance.types import Digest, OrgId, RecordKind, Subject
from provenance.verification.trust import LogKey, TrustStore

HERE = Path(__file__).resolve().parent
KEYS = HERE / "keys"
ORIGIN = "golden.shancheng.test/log"
CHAIN_ID = 20260
CONTRACT = "0x" + "5c" * 20  # a recognisable fixture address, not a deployed contract
REGISTRY = "0x" + "5e" * 20

# Each golden file of issue 25's findings, with what it models (the differential test reads this too).
ATTACKS = {
    "log-operator-fork.json": "1: the log operator logs a prescription signed with its own organisation key "
    "in a tree of its own (real records reordered), signs and anchors the checkpoint",
    "forged-unpinned.json": "2: everything forged: the attacker's SM2 key claiming hosp-1, its own log key, "
    "the real anchor with the root replaced",
    "unsubmitted-self-made-log.json": "3: a record signed by the hospital's real key but never submitted, "
    "placed in a log the attacker made",
    "other-origin.json": "4: a checkpoint of another log (origin) signed by the real log key",
    "anchor-other-chain.json": "5: an anchor on chain 1, contract 0x1111…, invented transaction and block",
    "unknown-property-constructor.json": "7: an unknown property named constructor",
    "unknown-property-tostring.json": "7: an unknown property named toString",
    "unknown-property-proto.json": "7: an unknown property named __proto__",
    "float-leaf-index.json": "7: leaf_index written 0.0",
    "float-tree-size.json": "7: tree_size written as a float",
    "float-version.json": "7: record.version written 1.0",
    "payload-beyond-2-53.json": "7: a payload number beyond 2^53 (browsers round it)",
    "payload-nested-250.json": "7: a payload nested 250 levels",
    "timestamp-year-0099.json": "7: a record of year 0099 (Date.UTC reads 1999)",
    "pem-nbsp.json": "7: a no-break space inside the signer key's base64",
    "pem-u2028.json": "7: U+2028 inside the signer key's base64",
    "signature-trailing-bits.json": "7: the signature's base64 with non-zero trailing bits",
    "duplicate-keys.json": "7: a duplicate key: the text shows a digest nobody checked",
    "bom.json": "7: a byte order mark before the bundle",
    "anchor-uppercase-block-hash.json": "7: an uppercase block_hash",
    # The second, unbriefed attack on the verifiers (issue 25, again).
    "witness-solo-fork.json": "second attack 1: the log operator alone forks (two real records reversed in a "
    "tree of its own, its signature only, an invented anchor): only a witness policy refuses it offline",
    "pem-leading-text.json": "second attack 8: text before the signer key's PEM block",
    "pem-trailing-text.json": "second attack 8: text after the signer key's PEM block",
    "pem-crlf.json": "second attack 8: CRLF line ends in the signer key's PEM",
    "payload-number-underflow.json": "second attack 8: the payload shows 1e-400 where 0 was signed",
    "payload-number-beyond-double.json": "second attack 8: the payload shows 0.10000000000000000555 where "
    "0.1 was signed",
}

# The second attack's files that are not single bundles, each with a test of its own.
OTHER_ATTACKS = {
    "forged-export.jsonl": "second attack 2: an export of bundles that hold only against their own keys "
    "(`provenance verify EXPORT` called them verified)",
    "receipt-year-9999.txt": "second attack 7: a log-signed receipt accepted at 9999-12-31T23:59:59.999Z "
    "(its deadline overflowed into a traceback)",
    "receipt-time-without-milliseconds.txt": "second attack 8: a log-signed receipt whose acceptance time "
    "has no milliseconds",
    "receipt-valid.txt": "second attack 6: a genuine receipt of valid.json's record",
    "receipt-kept-by-unanchored-bundle.json": "second attack 6: valid.json without its anchor, offered to "
    "keep the receipt (`receipt verify --bundle` said kept)",
    # gateway-fixture.json "subjects" / "pagination": second attack 4, a gateway's listing that repeats
    # records (rx:golden-dup), whose cursor never advances (rx:golden-stuck), whose empty page says more
    # follow (rx:golden-empty-more), or that never ends (rx:golden-endless).
}


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


def medication_dispense(rx_id: str, tablets: int, handed_over: str) -> dict[str, Any]:
    """The one dispense of prescription ``rx_id``."""
    return {
        "resourceType": "MedicationDispense",
        "id": f"{rx_id}-d1",
        "status": "completed",
        "authorizingPrescription": [{"reference": f"MedicationRequest/{rx_id}"}],
        "quantity": {"value": tablets, "unit": "片"},
        "whenHandedOver": handed_over,
    }


def rx_issue(rx_id: str, at: str, drug: str, end: str) -> tuple[str, str, str, str, Any]:
    """The record (as in ``RECORDS``) of hosp-1 issuing prescription ``rx_id`` at ``at`` (UTC, to seconds)."""
    return "rx.issue", f"rx:{rx_id}", "hosp-1", f"{at}.000Z", medication_request(rx_id, drug, end)


def rx_dispense(rx_id: str, at: str, tablets: int) -> tuple[str, str, str, str, Any]:
    """The record of pharm-1 dispensing prescription ``rx_id``, handed over at ``at`` (UTC, to seconds)."""
    return (
        "rx.dispense",
        f"rx:{rx_id}",
        "pharm-1",
        f"{at}.000Z",
        medication_dispense(rx_id, tablets, f"{at}Z"),
    )


def rx_revoke(rx_id: str, at: str, reason: str) -> tuple[str, str, str, str, Any]:
    """The record of hosp-1 revoking its prescription ``rx_id`` at ``at`` (UTC, to seconds)."""
    payload = {"reason": reason, "prescription": f"MedicationRequest/{rx_id}"}
    return "rx.revoke", f"rx:{rx_id}", "hosp-1", f"{at}.000Z", payload


# (kind, subject, signing org, timestamp, payload); the order is the log order.
RECORDS: list[tuple[str, str, str, str, Any]] = [
    rx_issue("golden-0001", "2026-11-20T08:00:00", "阿莫西林胶囊 0.25g", "2026-12-31T23:59:59Z"),
    rx_issue("golden-0002", "2026-11-20T08:05:00", "布洛芬缓释胶囊 0.3g", "2026-12-31T23:59:59Z"),
    rx_dispense("golden-0001", "2026-11-21T10:30:00", 30),
    rx_revoke("golden-0002", "2026-11-21T11:00:00", "开错剂量 (wrong dose)"),
    rx_issue("golden-0003", "2026-01-10T09:00:00", "维生素C片 100mg", "2026-02-10T23:59:59Z"),
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
    # A prescription whose listing a gateway repeats (gateway-fixture.json, second attack, finding 4).
    rx_issue("golden-dup", "2026-11-22T01:30:00", "氨氯地平片 5mg", "2026-12-31T23:59:59Z"),
    rx_dispense("golden-dup", "2026-11-22T01:40:00", 28),
    # RFC 8785 corner cases (number forms, escapes, UTF-16 key order): the page must hash them as Python does.
    (
        "party.record",
        "branch:golden-jcs",
        "branch-1",
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
        env = _envelope(org, kind, subject, digest_of(payload), ts, f"golden nonce {n}", prev.get(subject))
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

    # Trust files (`provenance orgs export` form): the right keys, then ways a pin must refuse.
    def trust(
        *,
        hospital_from: str | None = "2026-01-01T00:00:00Z",
        hospital_until: str | None = None,
        log_name: str = ORIGIN,
        logs: bool = True,
        log_revoked: str | None = None,
    ) -> dict[str, Any]:
        orgs = {}
        for org, key in keys.items():
            hosp = org == "hosp-1"
            valid_from = hospital_from if hosp else "2026-01-01T00:00:00Z"
            org_key = OrgKey(
                public_key=key.public_key(),
                pem=key.public_key_pem().decode("ascii"),
                valid_from=parse_timestamp(valid_from) if valid_from else None,
                valid_until=parse_timestamp(hospital_until) if hosp and hospital_until else None,
            )
            orgs[org] = OrgEntry(org_id=org, role=_ORG_ROLES[org], name=org, keys=(org_key,))
        log_pub = LogKey(
            name=log_name,
            public_key=log_key.public_key(),
            pem=log.public_key_pem(),
            origin=ORIGIN,
            revoked_at=parse_timestamp(log_revoked) if log_revoked else None,
        )
        chain = {"chain_id": CHAIN_ID, "org_registry": REGISTRY, "provenance_log": CONTRACT}
        pinned = TrustStore(orgs=orgs, logs=[log_pub] if logs else [], chain=chain, kinds=kind_roles())
        return pinned.to_dict()

    out["trust.json"] = trust()
    out["trust-hospital-key-expired.json"] = trust(hospital_until="2026-06-01T00:00:00Z")
    out["trust-other-log.json"] = trust(log_name="other.shancheng.test/log")
    out["trust-no-logs.json"] = trust(logs=False)
    # The log key retired (a rotation's switch) before the golden records were made: it vouches for none.
    out["trust-log-key-retired.json"] = trust(log_revoked="2026-06-01T00:00:00Z")
    out["trust-ancient-hospital-key.json"] = trust(hospital_from=None, hospital_until="1999-06-01T00:00:00Z")
    out["trust-unknown-version.json"] = trust() | {"version": 2}

    out |= _attacks(valid, entries, keys, log_key, attacker)

    # A forged listing (finding 6): the gateway lists what it likes beside bundles of other records.
    swap_id = fixed_hex("golden swap listing")
    other = entries[1][1]  # rx:golden-0002's rx.issue by hosp-1
    bundles[swap_id] = bundles[entries[0][1].record_id]
    histories["rx:golden-swap"] = [
        {
            "id": swap_id,
            "kind": "rx.dispense",
            "subject": "rx:golden-swap",
            "org": "pharm-1",
            "timestamp": "2026-11-21T10:30:00.000Z",
            "status": "anchored",
        },
        {
            "id": other.record_id,
            "kind": "rx.dispense",
            "subject": "rx:golden-swap",
            "org": "pharm-1",
            "timestamp": other.envelope.timestamp,
            "status": "anchored",
        },
    ]

    # A listing that repeats every record (second attack, finding 4): each record is listed twice.
    histories["rx:golden-dup"] = [item for item in histories["rx:golden-dup"] for _ in range(2)]
    out["gateway-fixture.json"] = {
        "_comment": "Test fixture: what the gateway's JSON API would answer. Made by generate.py.",
        "subjects": histories,
        # How the fixture server pages these subjects' listings (tests/webui/conftest.py): "stuck" answers
        # next_cursor 1 whatever was asked, "empty-more" an empty page with a next_cursor, "endless" a fresh
        # record id on every page with the next cursor.
        "pagination": {
            "rx:golden-stuck": "stuck",
            "rx:golden-empty-more": "empty-more",
            "rx:golden-endless": "endless",
        },
        "bundles": bundles,
    }
    out |= _other_attacks(out, entries, keys, log_key)
    return out


def _other_attacks(
    out: dict[str, Any],
    entries: list[tuple[int, SignedRecord, Any]],
    keys: dict[str, SM2PrivateKey],
    log_key: SM2PrivateKey,
) -> dict[str, Any]:
    """The files of ``OTHER_ATTACKS``: an export, receipts, a bundle offered to keep a receipt."""
    made: dict[str, Any] = {}
    line = lambda doc: json.dumps(doc, ensure_ascii=False, separators=(",", ":"))  # noqa: E731
    forged = [out["forged-unpinned.json"], out["unsubmitted-self-made-log.json"]]
    made["forged-export.jsonl"] = "".join(line(d) + "\n" for d in forged).encode("utf-8")

    valid = out["valid.json"]

    def receipt(accepted_at: str) -> bytes:
        # Signed by hand: AcceptanceReceipt (rightly) refuses to build these two.
        body = f"{ORIGIN} accepted\n{valid['digest']}\n{accepted_at}\n60\n"
        return sign_note(body.encode("utf-8"), ORIGIN, log_key).encode("utf-8")

    made["receipt-year-9999.txt"] = receipt("9999-12-31T23:59:59.999Z")
    made["receipt-time-without-milliseconds.txt"] = receipt("2026-11-20T08:00:01Z")
    made["receipt-valid.txt"] = receipt("2026-11-20T08:00:01.250Z")
    unanchored = copy.deepcopy(valid)
    unanchored["anchor"] = None
    made["receipt-kept-by-unanchored-bundle.json"] = unanchored
    assert set(made) == set(OTHER_ATTACKS)
    return made


def _logged(
    records: list[tuple[SignedRecord, Any]],
    index: int,
    *,
    signer: SM2PrivateKey,
    log_key: SM2PrivateKey,
    origin: str = ORIGIN,
    key_name: str = ORIGIN,
    chain_id: int = CHAIN_ID,
    contract: str = CONTRACT,
    label: str,
) -> dict[str, Any]:
    """The bundle of ``records[index]`` in a log of ``records`` alone, anchored (tx and block invented)."""
    log = RecordLog.in_memory(origin=origin, key_name=key_name, key=log_key)
    for signed, _ in records:
        log.append(signed)
    cp, note = log.checkpoint()
    anchor = Anchor(
        chain_id=chain_id,
        contract=contract,
        tx_hash="0x" + fixed_hex(f"{label} tx"),
        block_number=77,
        block_hash="0x" + fixed_hex(f"{label} block"),
        tree_size=cp.size,
        root=cp.root,
    )
    signed, payload = records[index]
    return log.bundle(
        signed=signed,
        leaf_index=index,
        signer_public_key_pem=signer.public_key_pem().decode("ascii"),
        note=note,
        tree_size=cp.size,
        payload=payload,
        anchor=anchor,
    ).to_dict()


def _signed(
    key: SM2PrivateKey, org: str, kind: str, subject: str, payload_digest: str, ts: str, n: int
) -> SignedRecord:
    return sign_envelope(_envelope(org, kind, subject, payload_digest, ts, f"golden attack nonce {n}"), key)


def _envelope(
    org: str, kind: str, subject: str, payload_digest: str, ts: str, nonce: str, prev: str | None = None
) -> Envelope:
    """A valid envelope whose nonce derives from the label ``nonce`` (fixed, so its record id is stable)."""
    env = Envelope(
        kind=RecordKind(kind),
        subject=Subject(subject),
        org=OrgId(org),
        timestamp=ts,
        nonce=fixed_hex(nonce, 32),
        prev=Digest(prev) if prev is not None else None,
        payload_digest=Digest(payload_digest),
    )
    env.validate()
    return env


def _attacks(
    valid: dict[str, Any],
    entries: list[tuple[int, SignedRecord, Any]],
    keys: dict[str, SM2PrivateKey],
    log_key: SM2PrivateKey,
    attacker: SM2PrivateKey,
) -> dict[str, Any]:
    """The golden files of ``ATTACKS`` (issue 25)."""
    out: dict[str, Any] = {}
    real = [(signed, payload) for _, signed, payload in entries]
    rx = medication_request("golden-fork", "盐酸吗啡缓释片 30mg", "2026-12-31T23:59:59Z")
    rx["dispenseRequest"]["quantity"]["value"] = 300

    # 1. The operator's fork: its own prescription first, then the real records in another order.
    own = _signed(
        keys["log-op"], "log-op", "rx.issue", "rx:golden-fork", digest_of(rx), "2026-11-23T09:00:00.000Z", 1
    )
    fork = [(own, rx), *reversed(real)]
    out["log-operator-fork.json"] = _logged(fork, 0, signer=keys["log-op"], log_key=log_key, label="fork")

    # 2. Everything forged by one attacker key: record, log, checkpoint; the real anchor, root replaced.
    forged_rec = _signed(
        attacker, "hosp-1", "rx.issue", "rx:golden-forged", digest_of(rx), "2026-11-23T09:05:00.000Z", 2
    )
    forged = _logged([(forged_rec, rx)], 0, signer=attacker, log_key=attacker, label="forged")
    forged["anchor"] |= {k: valid["anchor"][k] for k in ("tx_hash", "block_number", "block_hash")}
    out["forged-unpinned.json"] = forged

    # 3. The hospital's real key, a record never submitted, in a log of the attacker's (same log name).
    hidden = _signed(
        keys["hosp-1"], "hosp-1", "rx.issue", "rx:golden-hidden", digest_of(rx), "2026-11-23T09:10:00.000Z", 3
    )
    out["unsubmitted-self-made-log.json"] = _logged(
        [(hidden, rx)], 0, signer=keys["hosp-1"], log_key=attacker, label="hidden"
    )

    # 4. The real log key, another log's origin.
    out["other-origin.json"] = _logged(
        real,
        0,
        signer=keys["hosp-1"],
        log_key=log_key,
        origin="golden.shancheng.staging/log",
        label="staging",
    )

    # 5. An anchor on another chain and contract, invented transaction and block.
    out["anchor-other-chain.json"] = _logged(
        real,
        0,
        signer=keys["hosp-1"],
        log_key=log_key,
        chain_id=1,
        contract="0x" + "11" * 20,
        label="chain 1",
    )

    # 7. Parser and schema cases.
    def variant(change: Any) -> dict[str, Any]:
        b = copy.deepcopy(valid)
        change(b)
        return b

    out["unknown-property-constructor.json"] = variant(lambda b: b.update(constructor={"name": "Object"}))
    out["unknown-property-tostring.json"] = variant(lambda b: b["record"].update(toString="x"))
    out["unknown-property-proto.json"] = variant(
        lambda b: b["signer"].update({"__proto__": {"org": "hosp-2"}})
    )
    assert valid["log"]["leaf_index"] == 0
    out["float-leaf-index.json"] = variant(lambda b: b["log"].update(leaf_index=0.0))
    out["float-tree-size.json"] = variant(lambda b: b["log"].update(tree_size=float(b["log"]["tree_size"])))
    out["float-version.json"] = variant(lambda b: b["record"].update(version=1.0))

    def own_payload(payload: Any, n: int, text: str) -> dict[str, Any]:
        # The digest of the payload as written (JCS bytes by hand): what a forger would sign.
        rec = _signed(
            keys["hosp-1"],
            "hosp-1",
            "party.record",
            f"branch:golden-p{n}",
            sm3_hex(text.encode()),
            "2026-11-23T10:00:00.000Z",
            10 + n,
        )
        return _logged([(rec, payload)], 0, signer=keys["hosp-1"], log_key=log_key, label=f"payload {n}")

    big = {"amount_fen": 9007199254740993}
    out["payload-beyond-2-53.json"] = own_payload(big, 1, '{"amount_fen":9007199254740993}')
    nested: Any = [1]
    for _ in range(249):
        nested = [nested]
    out["payload-nested-250.json"] = own_payload(nested, 2, json.dumps(nested, separators=(",", ":")))

    ancient = _signed(
        keys["hosp-1"], "hosp-1", "rx.issue", "rx:golden-0099", digest_of(rx), "0099-11-20T08:00:00.000Z", 4
    )
    out["timestamp-year-0099.json"] = _logged(
        [(ancient, rx)], 0, signer=keys["hosp-1"], log_key=log_key, label="0099"
    )

    pem = valid["signer"]["public_key"]
    lines = pem.split("\n")
    out["pem-nbsp.json"] = variant(
        lambda b: b["signer"].update(
            public_key=pem.replace(lines[1], lines[1][:20] + "\u00a0" + lines[1][20:])
        )
    )
    out["pem-u2028.json"] = variant(
        lambda b: b["signer"].update(
            public_key=pem.replace(lines[1], lines[1][:20] + "\u2028" + lines[1][20:])
        )
    )

    sig = valid["signature"]
    assert sig.endswith("=") and not sig.endswith("==")  # 2 unused bits: set one, same bytes decoded
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    bent = sig[:-2] + alphabet[alphabet.index(sig[-2]) | 1] + "="
    assert base64.b64decode(bent) == base64.b64decode(sig) and bent != sig
    out["signature-trailing-bits.json"] = variant(lambda b: b.update(signature=bent))

    text = json.dumps(valid, ensure_ascii=False, indent=2)
    shown = '"digest": "' + fixed_hex("a digest nobody checked") + '",\n  '
    out["duplicate-keys.json"] = (text.replace('"digest": ', shown + '"digest": ', 1) + "\n").encode("utf-8")
    out["bom.json"] = b"\xef\xbb\xbf" + (text + "\n").encode("utf-8")
    out["anchor-uppercase-block-hash.json"] = variant(
        lambda b: b["anchor"].update(block_hash="0x" + b["anchor"]["block_hash"][2:].upper())
    )
    # Second attack, 1: the log operator alone (no witness) forks two real records into a tree of its own,
    # reversed, signs it, and invents an anchor on the pinned chain and contract.
    two = [(signed, payload) for _, signed, payload in entries if signed.envelope.org == "hosp-1"][:2]
    out["witness-solo-fork.json"] = _logged(
        list(reversed(two)), 0, signer=keys["hosp-1"], log_key=log_key, label="solo fork"
    )

    # Second attack, 8: the documented PEM form only (RFC 7468 strict, LF, nothing around it).
    out["pem-leading-text.json"] = variant(
        lambda b: b["signer"].update(public_key="Signer key of hosp-1:\n" + pem)
    )
    out["pem-trailing-text.json"] = variant(
        lambda b: b["signer"].update(public_key=pem + "-- issued by the attacker\n")
    )
    out["pem-crlf.json"] = variant(lambda b: b["signer"].update(public_key=pem.replace("\n", "\r\n")))

    # Second attack, 8: a number whose text is not the value signed (a reader holds the nearest double).
    def shown_as(value: float, text: str, n: int) -> bytes:
        doc = own_payload({"dose_mg": value}, n, canonical_bytes({"dose_mg": value}).decode())
        raw = json.dumps(doc, ensure_ascii=False, indent=2)
        written = f'"dose_mg": {json.dumps(value)}'
        assert raw.count(written) == 1
        return (raw.replace(written, f'"dose_mg": {text}') + "\n").encode("utf-8")

    out["payload-number-underflow.json"] = shown_as(0.0, "1e-400", 3)
    out["payload-number-beyond-double.json"] = shown_as(0.1, "0.10000000000000000555", 4)
    assert set(out) == set(ATTACKS)
    return out


_ORG_KEYS = {
    "hosp-1": "hospital",
    "pharm-1": "pharmacy",
    "env-1": "station",
    "platform-1": "platform",
    "branch-1": "branch",
    "log-op": "log",  # the log operator organisation: its registered key is the log key
}
_ORG_ROLES = {
    "hosp-1": "hospital",
    "pharm-1": "pharmacy",
    "env-1": "monitoring_station",
    "platform-1": "data_user",
    "branch-1": "party_branch",
    "log-op": "log_operator",
}


def main(argv: list[str] | None = None) -> None:
    """Write every file, or only those named (`generate.py NAME...`): signatures are random, so writing
    only new files leaves the others (and witnessed.py's, made from valid.json) as they are."""
    only = set(sys.argv[1:] if argv is None else argv)
    built = build()
    unknown = only - set(built)
    if unknown:
        raise SystemExit(f"generate.py makes no {', '.join(sorted(unknown))}")
    for name, doc in built.items():
        if only and name not in only:
            continue
        data = (
            doc if isinstance(doc, bytes) else (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode()
        )
        (HERE / name).write_bytes(data)  # bytes: some attacks are text no JSON writer makes
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
