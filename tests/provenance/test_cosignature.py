"""Tests for provenance.log.cosignature: SM2 witness cosignatures of checkpoints and the k-of-n quorum.

The golden notes in tests/assets/witness/ were made once with the test-fixture keys (the log's is
tests/assets/crypto/test-fixture-sm2-key.pem, the witnesses' are beside the notes); SM2 signatures are
randomised, so regenerating changes their bytes, not their meaning:
``PYTHONPATH=. .venv/bin/python tests/provenance/test_cosignature.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.crypto import SM2PrivateKey
from provenance.errors import CheckpointInvalid, FormatError, WitnessQuorumMissing
from provenance.log.checkpoint import (
    SIGNATURE_TYPE,
    Checkpoint,
    NoteVerifier,
    open_note,
    sign_checkpoint,
    verify_checkpoint,
)
from provenance.log.cosignature import (
    COSIGNATURE_TYPE,
    WitnessKey,
    WitnessPolicy,
    cosign,
    cosigned_message,
    verify_cosignatures,
)
from provenance.log.tlog_witness import encode_add_checkpoint, parse_add_checkpoint
from provenance.verification.trust import TrustInvalid, TrustStore
from tests.provenance.openssl_cli import needs_openssl, openssl_verify

ASSETS = Path(__file__).resolve().parents[1] / "assets"
GOLDEN = ASSETS / "witness"
LOG_FIXTURE = ASSETS / "crypto" / "test-fixture-sm2-key.pem"
ORIGIN = "shancheng.example/log"
NAMES = (
    "shancheng.example/witness/regulator",
    "shancheng.example/witness/auditor",
    "shancheng.example/witness/env",
)
ORGS = ("regulator", "auditor", "env-bureau")
TIME = 1_767_225_600  # 2026-01-01T00:00:00Z


def _witness_keys() -> list[SM2PrivateKey]:
    return [
        SM2PrivateKey.from_pem((GOLDEN / f"test-fixture-witness-{i}-sm2-key.pem").read_bytes())
        for i in (1, 2, 3)
    ]


KEYS = _witness_keys()
WITNESSES = tuple(
    WitnessKey(name=n, public_key=k.public_key(), org=o) for n, k, o in zip(NAMES, KEYS, ORGS, strict=True)
)
POLICY = WitnessPolicy(witnesses=WITNESSES, quorum=2)
LOG_KEY = SM2PrivateKey.from_pem(LOG_FIXTURE.read_bytes())
LOG = NoteVerifier(name=ORIGIN, public_key=LOG_KEY.public_key())
CP = Checkpoint(origin=ORIGIN, size=8, root=hashlib.sha256(b"root").digest())
NOTE = sign_checkpoint(CP, ORIGIN, LOG_KEY)


def cosigned(note: str, *signers: int, body: bytes | None = None, timestamp: int = TIME) -> str:
    text = body if body is not None else CP.body()
    return note + "".join(cosign(text, NAMES[i], KEYS[i], timestamp=timestamp) for i in signers)


# --- format -------------------------------------------------------------------------------------------


def test_line_layout_key_id_timestamp_and_signed_message() -> None:
    line = cosign(CP.body(), NAMES[0], KEYS[0], timestamp=TIME)
    assert line.startswith(f"\u2014 {NAMES[0]} ") and line.endswith("\n") and line.count("\n") == 1
    raw = base64.b64decode(line.split(" ")[2])
    der = KEYS[0].public_key().to_der()
    assert raw[:4] == hashlib.sha256(NAMES[0].encode() + b"\n" + COSIGNATURE_TYPE + der).digest()[:4]
    assert raw[:4] == WITNESSES[0].key_id
    assert raw[4:12] == TIME.to_bytes(8, "big")
    message = b"cosignature/v1\ntime 1767225600\n" + CP.body()
    assert cosigned_message(CP.body(), TIME) == message
    KEYS[0].public_key().verify(message, raw[12:])  # DER SM2 over the cosigned message


def test_cosignature_and_checkpoint_key_ids_differ_for_one_key() -> None:
    # The same SM2 key as log key and as witness key never yields interchangeable signature lines.
    as_log = NoteVerifier(name=NAMES[0], public_key=KEYS[0].public_key())
    assert as_log.key_id != WITNESSES[0].key_id
    assert COSIGNATURE_TYPE == b"\xffshancheng-provenance/cosignature-sm2-sm3/v1"
    assert not COSIGNATURE_TYPE.startswith(SIGNATURE_TYPE) and not SIGNATURE_TYPE.startswith(COSIGNATURE_TYPE)


@needs_openssl
def test_cosignature_verifies_with_openssl(tmp_path: Path) -> None:
    raw = base64.b64decode(cosign(CP.body(), NAMES[1], KEYS[1], timestamp=TIME).split(" ")[2])
    message = cosigned_message(CP.body(), TIME)
    result = openssl_verify(tmp_path, KEYS[1].public_key_pem(), message, raw[12:])
    assert result.returncode == 0, result.stderr + result.stdout


def test_vkey_round_trip_and_type_separation() -> None:
    w = WitnessKey.from_vkey(WITNESSES[2].vkey(), org="env-bureau")
    assert w == WITNESSES[2]
    with pytest.raises(FormatError, match="not an SM2 note key of the expected signature type"):
        WitnessKey.from_vkey(LOG.vkey())  # a log key is not a witness key
    with pytest.raises(FormatError, match="not an SM2 note key of the expected signature type"):
        NoteVerifier.from_vkey(WITNESSES[0].vkey())


# --- quorum -------------------------------------------------------------------------------------------


def test_quorum_met_and_log_signature_still_verifies() -> None:
    note = cosigned(NOTE, 0, 2)
    found = POLICY.check(note)
    assert [(c.witness, c.timestamp) for c in found] == [(NAMES[0], TIME), (NAMES[2], TIME)]
    assert verify_checkpoint(note, LOG, origin=ORIGIN) == CP  # cosignature lines are ignored by it


def test_quorum_missing_names_who_cosigned() -> None:
    with pytest.raises(WitnessQuorumMissing) as info:
        POLICY.check(cosigned(NOTE, 1))
    err = info.value
    assert err.code == "WITNESS_QUORUM_MISSING" and err.step == "checkpoint"
    assert err.details == {"cosigned_by": [NAMES[1]], "quorum": 2, "witnesses": list(NAMES)}
    assert f"cosigned by: {NAMES[1]} (auditor)" in err.message
    with pytest.raises(WitnessQuorumMissing, match=r"0 of the 2 .*cosigned by: none"):
        POLICY.check(NOTE)


def test_one_witness_twice_counts_once() -> None:
    with pytest.raises(WitnessQuorumMissing) as info:
        POLICY.check(cosigned(NOTE, 1, 1))
    assert info.value.details["cosigned_by"] == [NAMES[1]]


def test_unknown_and_foreign_lines_are_ignored() -> None:
    stranger = SM2PrivateKey.generate()
    ed25519_like = "\u2014 witness.example/w1 " + base64.b64encode(b"\x01\x02\x03\x04" + bytes(72)).decode()
    note = cosigned(NOTE, 0) + cosign(CP.body(), "stranger.example/w", stranger, timestamp=TIME)
    note += ed25519_like + "\n" + cosign(CP.body(), NAMES[2], KEYS[2], timestamp=TIME)
    assert [c.witness for c in POLICY.check(note)] == [NAMES[0], NAMES[2]]


def test_a_cosignature_over_another_checkpoint_rejects_the_note() -> None:
    other = Checkpoint(origin=ORIGIN, size=9, root=CP.root)
    forged = NOTE + cosign(other.body(), NAMES[0], KEYS[0], timestamp=TIME)
    with pytest.raises(CheckpointInvalid, match=f"cosignature by witness {NAMES[0]} .regulator. does not"):
        POLICY.check(cosigned(forged, 1))


def test_an_altered_timestamp_does_not_verify() -> None:
    line = cosign(CP.body(), NAMES[0], KEYS[0], timestamp=TIME)
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[11] ^= 1
    bad = f"\u2014 {NAMES[0]} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(CheckpointInvalid, match="does not verify"):
        POLICY.check(NOTE + bad)


def test_a_log_style_signature_by_a_witness_key_is_not_a_cosignature() -> None:
    # The witness key signs the note text as if it were a log (no cosigned-message header): it claims
    # the cosignature key ID but cannot verify as a cosignature.
    plain = sign_checkpoint(CP, NAMES[0], KEYS[0]).split("\n\n")[1]
    assert verify_cosignatures(CP.body(), open_note(NOTE + plain)[1], WITNESSES) == []
    raw = base64.b64decode(plain.split(" ")[2])
    relabelled = f"\u2014 {NAMES[0]} {base64.b64encode(WITNESSES[0].key_id + raw[4:]).decode()}\n"
    with pytest.raises(CheckpointInvalid, match="does not verify"):
        POLICY.check(NOTE + relabelled)


K = POLICY.to_dict()["keys"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"quorum": 3, "keys": []}, "names 1 to 64 witnesses"),
        ({"quorum": 0, "keys": K[:1]}, "quorum 0 is not a number from 1 to 1"),
        ({"quorum": 4, "keys": K}, "quorum 4 is not a number from 1 to 3"),
        ({"quorum": True, "keys": K[:1]}, "quorum True"),
        ({"quorum": 1, "keys": [K[0], K[0]]}, "same witness"),
        ({"quorum": 1, "keys": [K[0], {**K[1], "public_key": K[0]["public_key"]}]}, "same witness"),
        ({"quorum": 1, "keys": [{"name": "a b", "public_key": K[0]["public_key"]}]}, "witness 'a b'"),
        ({"quorum": 1, "keys": [{"name": "w", "public_key": "x"}]}, "witness 'w'"),
        ({"quorum": 1, "keys": K[0]}, "must be a list"),
    ],
)
def test_policy_rejections(doc: dict[str, object], message: str) -> None:
    with pytest.raises(FormatError, match=message):
        WitnessPolicy.from_dict(doc)


def test_trust_file_round_trip_and_bad_policy() -> None:
    base = {"version": 1, "orgs": [], "logs": []}
    store = TrustStore.from_dict({**base, "witnesses": POLICY.to_dict()})
    assert store.witnesses == POLICY
    assert TrustStore.from_dict(store.to_dict()).witnesses == POLICY
    assert TrustStore.from_dict(base).witnesses is None
    with pytest.raises(TrustInvalid, match="bad witness policy"):
        TrustStore.from_dict({**base, "witnesses": {"quorum": 5, "keys": POLICY.to_dict()["keys"]}})


# --- the add-checkpoint request --------------------------------------------------------------------


def test_add_checkpoint_request_round_trip() -> None:
    proof = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
    body = encode_add_checkpoint(5, proof, NOTE)
    assert body.startswith(b"old 5\n") and b"\n\n" + NOTE.encode() in body
    parsed = parse_add_checkpoint(body)
    assert (parsed.old_size, list(parsed.proof), parsed.note) == (5, proof, NOTE)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"old 05\n\nx", "not 'old <size>'"),
        (b"old -1\n\nx", "not 'old <size>'"),
        (b"old 1\n", "no blank line"),
        (b"old 1\nAAAA\n\nx", "line 1 is 3 bytes"),
        (b"old 1\n@@@@\n\nx", "not valid base64"),
        (b"old 1\n" + b"A" * 42 + b"B=\n\nx", "not canonical base64"),
        (b"old 1\n" + (base64.b64encode(bytes(32)) + b"\n") * 64 + b"\nx", "64 proof lines, at most 63"),
        (b"\xff\n\n", "not UTF-8"),
        (b"old 99999999999999999999\n\nx", "not 'old <size>'"),
    ],
)
def test_add_checkpoint_request_rejections(body: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_add_checkpoint(body)


# --- golden files ---------------------------------------------------------------------------------


def _golden_policy() -> WitnessPolicy:
    doc = json.loads((GOLDEN / "policy.json").read_text())
    return WitnessPolicy.from_dict(doc)


def test_golden_cosigned_note_meets_the_policy() -> None:
    policy = _golden_policy()
    assert policy == POLICY
    for i, w in enumerate(policy.witnesses, start=1):
        assert WitnessKey.from_vkey((GOLDEN / f"witness-{i}.vkey").read_text(), org=w.org) == w
    note = (GOLDEN / "cosigned-2-of-3.note").read_bytes()
    log = NoteVerifier.from_vkey((ASSETS / "merkle" / "checkpoint" / "log.vkey").read_text())
    cp = verify_checkpoint(note, log, origin=ORIGIN)
    found = policy.check(note)
    assert cp.size == 8 and [c.witness for c in found] == [NAMES[0], NAMES[1]]


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("cosigned-1-of-3.note", WitnessQuorumMissing, "cosigned by: shancheng.example/witness/auditor"),
        ("cosignature-from-another-checkpoint.note", CheckpointInvalid, "does not verify"),
        ("cosignature-time-altered.note", CheckpointInvalid, "does not verify"),
        ("stranger-claims-witness-key-id.note", CheckpointInvalid, "does not verify"),
    ],
)
def test_golden_attacks_are_rejected(name: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        _golden_policy().check((GOLDEN / name).read_bytes())


def _write_golden() -> None:
    valid = (ASSETS / "merkle" / "checkpoint" / "valid.note").read_text()
    body = (valid.split("\n\n")[0] + "\n").encode()
    older = Checkpoint.from_body(body.decode())
    older = Checkpoint(origin=older.origin, size=older.size - 1, root=older.root)

    def line(i: int, text: bytes = body) -> str:
        return cosign(text, NAMES[i], KEYS[i], timestamp=TIME)

    altered = bytearray(base64.b64decode(line(0).split(" ")[2]))
    altered[11] ^= 1
    stranger = SM2PrivateKey.generate()
    forged = base64.b64decode(cosign(body, NAMES[0], stranger, timestamp=TIME).split(" ")[2])
    files = {
        "policy.json": json.dumps(POLICY.to_dict(), indent=2) + "\n",
        **{f"witness-{i}.vkey": w.vkey() + "\n" for i, w in enumerate(WITNESSES, start=1)},
        "cosigned-2-of-3.note": valid + line(0) + line(1),
        "cosigned-1-of-3.note": valid + line(1),
        "cosignature-from-another-checkpoint.note": valid + line(0, older.body()) + line(1),
        "cosignature-time-altered.note": valid
        + f"\u2014 {NAMES[0]} {base64.b64encode(bytes(altered)).decode()}\n"
        + line(1),
        "stranger-claims-witness-key-id.note": valid
        + f"\u2014 {NAMES[0]} {base64.b64encode(WITNESSES[0].key_id + forged[4:]).decode()}\n"
        + line(1),
    }
    for name, text in files.items():
        (GOLDEN / name).write_text(text, encoding="utf-8")
        print(f"wrote {GOLDEN / name}")


if __name__ == "__main__":
    _write_golden()


@given(st.binary(max_size=400))
@settings(max_examples=400, deadline=None)
def test_any_request_body_parses_or_is_refused_cleanly(body: bytes) -> None:
    try:
        parsed = parse_add_checkpoint(body)
    except FormatError:
        return
    assert encode_add_checkpoint(parsed.old_size, parsed.proof, parsed.note) == body


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_note_text_meets_the_policy_or_is_refused_cleanly(tail: str) -> None:
    # Random signature blocks after a real checkpoint: a verdict, never another exception.
    try:
        POLICY.check(NOTE + tail)
    except (WitnessQuorumMissing, CheckpointInvalid):
        return
    raise AssertionError("random lines met the quorum")
