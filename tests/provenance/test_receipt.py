"""Tests for provenance.receipt: acceptance receipts, signed notes by the log key (RFC 6962's SCT)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from provenance.checkpoint import Checkpoint, parse_note, sign_checkpoint
from provenance.crypto import SM2PrivateKey
from provenance.errors import CheckpointInvalid, ReceiptInvalid
from provenance.receipt import AcceptanceReceipt, parse_receipt, sign_receipt, verify_receipt
from provenance.trust import LogKey, TrustStore

FIXTURE_KEY = Path(__file__).resolve().parents[1] / "assets" / "crypto" / "test-fixture-sm2-key.pem"
ORIGIN = "shancheng.example/log"
RECORD = "ab" * 32
RECEIPT = AcceptanceReceipt(
    origin=ORIGIN, record_id=RECORD, accepted_at="2026-11-30T08:00:00.123Z", max_merge_delay=60
)


@pytest.fixture(scope="module")
def key() -> SM2PrivateKey:
    return SM2PrivateKey.from_pem(FIXTURE_KEY.read_bytes())


def trust_of(key: SM2PrivateKey, *, name: str = ORIGIN, origin: str | None = ORIGIN) -> TrustStore:
    pem = key.public_key_pem().decode("ascii")
    return TrustStore(logs=[LogKey(name=name, public_key=key.public_key(), pem=pem, origin=origin)])


def check_of(exc: pytest.ExceptionInfo[ReceiptInvalid]) -> str:
    assert exc.value.step == "receipt" and exc.value.code == "RECEIPT_INVALID"
    check: str = exc.value.details["check"]
    return check


def test_receipt_note_text_and_round_trip(key: SM2PrivateKey) -> None:
    note = sign_receipt(RECEIPT, ORIGIN, key)
    body, sigs = note.split("\n\n")
    assert body == f"{ORIGIN} accepted\n{RECORD}\n2026-11-30T08:00:00.123Z\n60"
    assert sigs.startswith(f"\u2014 {ORIGIN} ") and sigs.endswith("\n")
    assert parse_receipt(note) == RECEIPT
    assert verify_receipt(note, trust_of(key), record_id=RECORD) == RECEIPT
    assert RECEIPT.deadline.isoformat() == "2026-11-30T08:01:00.123000+00:00"


def test_tampered_other_record_other_key_fail_naming_the_check(key: SM2PrivateKey) -> None:
    note = sign_receipt(RECEIPT, ORIGIN, key)
    # Another acceptance time in the signed text: the signature no longer verifies.
    forged = note.replace("08:00:00.123Z", "08:00:00.124Z")
    with pytest.raises(ReceiptInvalid) as exc:
        verify_receipt(forged, trust_of(key))
    assert check_of(exc) == "signature"
    # A flipped byte in the signature itself.
    body, line = note.split("\n\n")
    name, sig = line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 0x01
    flipped = f"{body}\n\n{name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(ReceiptInvalid) as exc:
        verify_receipt(flipped, trust_of(key))
    assert check_of(exc) == "signature"
    with pytest.raises(ReceiptInvalid) as exc:
        verify_receipt(note, trust_of(key), record_id="cd" * 32)
    assert check_of(exc) == "record"
    other = SM2PrivateKey.generate()
    with pytest.raises(ReceiptInvalid) as exc:
        verify_receipt(note, trust_of(other))
    assert check_of(exc) == "signature"
    with pytest.raises(ReceiptInvalid) as exc:
        verify_receipt(note, trust_of(key, name="other.example/log"))
    assert check_of(exc) == "log_key"
    with pytest.raises(ReceiptInvalid) as exc:
        verify_receipt(note, trust_of(key, origin="other.example/log"))
    assert check_of(exc) == "origin"


def test_receipts_and_checkpoints_cannot_pass_for_each_other(key: SM2PrivateKey) -> None:
    cp_note = sign_checkpoint(Checkpoint(origin=ORIGIN, size=8, root=bytes(32)), ORIGIN, key)
    with pytest.raises(ReceiptInvalid) as exc:
        verify_receipt(cp_note, trust_of(key))
    assert check_of(exc) == "format"
    with pytest.raises(CheckpointInvalid):
        parse_note(sign_receipt(RECEIPT, ORIGIN, key))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a note\n",
        f"{ORIGIN} accepted\n{RECORD}\n2026-11-30T08:00:00.123Z\n060\n\n\u2014 a AAAAAAA=\n",
        f"{ORIGIN} accepted\n{RECORD.upper()}\n2026-11-30T08:00:00.123Z\n60\n\n\u2014 a AAAAAAA=\n",
        f"{ORIGIN} accepted\n{RECORD}\n2026-11-30 08:00:00\n60\n\n\u2014 a AAAAAAA=\n",
        f"{ORIGIN}\n{RECORD}\n2026-11-30T08:00:00.123Z\n60\n\n\u2014 a AAAAAAA=\n",
        f"{ORIGIN} accepted\n{RECORD}\n2026-11-30T08:00:00.123Z\n60\nextra\n\n\u2014 a AAAAAAA=\n",
    ],
)
def test_malformed_receipts_are_format_errors(text: str, key: SM2PrivateKey) -> None:
    with pytest.raises(ReceiptInvalid) as exc:
        verify_receipt(text, trust_of(key))
    assert check_of(exc) == "format"


def test_the_example_in_formats_md_verifies(key: SM2PrivateKey) -> None:
    formats = (Path(__file__).resolve().parents[2] / "docs" / "formats.md").read_text("utf-8")
    section = formats[formats.index("## Acceptance receipt") :]
    example = section.split("```\n")[3]  # the second fenced block of the section
    receipt = verify_receipt(example, trust_of(key))
    assert (receipt.origin, receipt.accepted_at, receipt.max_merge_delay) == (
        ORIGIN,
        "2026-11-30T08:00:00.123Z",
        60,
    )
