"""Tests for provenance.log.receipt: acceptance receipts, signed notes by the log key (RFC 6962's SCT)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from provenance.crypto import SM2PrivateKey
from provenance.errors import CheckpointInvalid, ReceiptInvalid
from provenance.log.checkpoint import Checkpoint, parse_note, sign_checkpoint
from provenance.log.receipt import (
    PROOF_HEADER,
    AcceptanceReceipt,
    parse_receipt,
    sign_receipt,
    sign_receipts,
    verify_receipt,
)
from provenance.verification.trust import LogKey, TrustStore

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


# --- receipts accepted together: one signed batch note, a leaf and inclusion proof each -----------------


def batch_of(n: int) -> list[AcceptanceReceipt]:
    return [
        AcceptanceReceipt(
            origin=ORIGIN,
            record_id=f"{i:064x}",
            accepted_at=f"2026-11-30T08:00:{i % 60:02d}.123Z",
            max_merge_delay=60,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("n", [1, 2, 3, 8, 13])
def test_a_batch_shares_one_signature_and_each_receipt_verifies_alone(n: int, key: SM2PrivateKey) -> None:
    receipts = batch_of(n)
    notes = sign_receipts(receipts, ORIGIN, key)
    assert len(notes) == n
    if n == 1:  # alone: the plain receipt note
        assert notes[0].startswith(f"{ORIGIN} accepted\n")
    else:
        batch_notes = {note.split("\n\n", 1)[1] for note in notes}
        assert len(batch_notes) == 1  # one signed batch note for all
        (batch_note,) = batch_notes
        assert batch_note.split("\n")[:2] == [f"{ORIGIN} accepted batch", f"size {n}"]
        assert notes[2 % n].split("\n")[:4] == [
            PROOF_HEADER,
            f"record {receipts[2 % n].record_id}",
            f"accepted {receipts[2 % n].accepted_at}",
            f"index {2 % n}",
        ]
    for receipt, note in zip(receipts, notes, strict=True):
        assert verify_receipt(note, trust_of(key), record_id=receipt.record_id) == receipt
        assert verify_receipt(note.encode(), trust_of(key)) == receipt
        assert parse_receipt(note) == receipt


def _swap_line(note: str, old: str, new: str) -> str:
    assert old in note
    return note.replace(old, new, 1)


def test_a_batch_receipt_altered_anywhere_fails_naming_the_check(key: SM2PrivateKey) -> None:
    receipts = batch_of(5)
    notes = sign_receipts(receipts, ORIGIN, key)
    other = sign_receipts(batch_of(6), ORIGIN, key)
    note = notes[3]
    header, batch_note = note.split("\n\n", 1)
    proof = header.split("\n")[4:]
    cases = {
        # The unsigned part is bound by the proof: another record, time or position leaves the root.
        "inclusion: another record": _swap_line(note, receipts[3].record_id, receipts[4].record_id),
        "inclusion: another time": _swap_line(note, "08:00:03.123Z", "08:00:03.124Z"),
        "inclusion: another index": _swap_line(note, "index 3", "index 2"),
        "inclusion: a proof hash replaced": _swap_line(note, proof[0], proof[-1]),
        "inclusion: a hash missing": _swap_line(note, proof[0] + "\n", ""),
        "inclusion: index beyond the batch": _swap_line(note, "index 3", "index 5"),
        "inclusion: the leaf under another batch": header + "\n\n" + other[3].split("\n\n", 1)[1],
        # The signed part: another root or size is not what the log signed.
        "signature: another size with the proof fitting": _swap_line(note, "size 5", "size 6"),
        "format: proof hash not canonical": _swap_line(note, proof[0], proof[0][:-2] + "=="),
        "format: no header": note.replace(PROOF_HEADER + "\n", "", 1),
        "format: a header line missing": _swap_line(note, f"accepted {receipts[3].accepted_at}\n", ""),
        "format: label changed": _swap_line(note, "\nroot ", "\nhash "),
    }
    root_line = next(line for line in batch_note.split("\n") if line.startswith("root "))
    flipped = root_line[:-6] + ("A" if root_line[-6] != "A" else "B") + root_line[-5:]
    cases["inclusion: another root"] = _swap_line(note, root_line, flipped)
    for name, text in cases.items():
        with pytest.raises(ReceiptInvalid) as exc:
            verify_receipt(text, trust_of(key))
        assert check_of(exc) == name.split(":")[0], (name, exc.value.message)
    with pytest.raises(ReceiptInvalid) as exc:
        verify_receipt(note, trust_of(key), record_id=receipts[4].record_id)
    assert check_of(exc) == "record"


def test_batch_notes_and_checkpoints_cannot_pass_for_each_other(key: SM2PrivateKey) -> None:
    batch_note = sign_receipts(batch_of(2), ORIGIN, key)[0].split("\n\n", 1)[1]
    with pytest.raises(CheckpointInvalid):
        parse_note(batch_note)
    cp_note = sign_checkpoint(Checkpoint(origin=ORIGIN, size=2, root=bytes(32)), ORIGIN, key)
    forged = f"{PROOF_HEADER}\nrecord {RECORD}\naccepted 2026-11-30T08:00:00.123Z\nindex 0\n\n{cp_note}"
    with pytest.raises(ReceiptInvalid) as exc:
        verify_receipt(forged, trust_of(key))
    assert check_of(exc) == "format"


def test_receipts_of_different_logs_or_delays_are_not_signed_together(key: SM2PrivateKey) -> None:
    a, b = batch_of(2)
    with pytest.raises(ValueError, match="share"):
        sign_receipts([a, AcceptanceReceipt(**{**b.__dict__, "max_merge_delay": 61})], ORIGIN, key)
    assert sign_receipts([], ORIGIN, key) == []


def test_the_batch_example_in_formats_md_verifies(key: SM2PrivateKey) -> None:
    formats = (Path(__file__).resolve().parents[2] / "docs" / "formats.md").read_text("utf-8")
    section = formats[formats.index("### Receipts accepted together") :]
    example = section.split("```\n")[3]  # the second fenced block of the section
    receipt = verify_receipt(example, trust_of(key))
    assert receipt.record_id.startswith("9f0e3c7a") and receipt.max_merge_delay == 60
