"""Acceptance receipts: the log's signed promise to include a record (RFC 6962 §3.2's SCT, for this log).

A receipt is a C2SP signed note by the log key, like a checkpoint, with its own first line so that neither
can pass for the other::

    <origin> accepted
    <record id>                 64 lowercase hex (the record's SM3 digest)
    <accepted at>               RFC 3339 UTC, milliseconds, Z
    <maximum merge delay>       seconds, ASCII decimal

The gateway promises that the record is in the log, under a signed checkpoint, by ``accepted at`` plus the
maximum merge delay. The format is in ``docs/formats.md``; what a receipt proves, and what it does not, in
``docs/security.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from provenance.abc import Signer
from provenance.bundle import EvidenceBundle
from provenance.checkpoint import (
    NoteSignature,
    NoteVerifier,
    open_note,
    parse_note,
    sign_note,
    verify_note_text,
)
from provenance.errors import CheckpointInvalid, ProvenanceError, ReceiptInvalid
from provenance.records import parse_timestamp
from provenance.trust import TrustStore

RECEIPT_SUFFIX = " accepted"
MAX_MERGE_DELAY_LIMIT = 366 * 24 * 3600  # a year: anything longer promises nothing

_RECORD_ID = re.compile(r"[0-9a-f]{64}")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,8}")


def _invalid(check: str, message: str, **details: object) -> ReceiptInvalid:
    return ReceiptInvalid(message, details={"check": check, **details})


@dataclass(frozen=True, kw_only=True)
class AcceptanceReceipt:
    """What the log signed: it accepted ``record_id`` at ``accepted_at`` and will log it within the delay."""

    origin: str
    record_id: str
    accepted_at: str
    max_merge_delay: int

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise _invalid("format", "receipt origin must be one non-empty line")
        if not isinstance(self.record_id, str) or not _RECORD_ID.fullmatch(self.record_id):
            raise _invalid("format", "receipt record id is not 64 lowercase hex digits")
        try:
            parse_timestamp(self.accepted_at)
        except ProvenanceError as exc:
            raise _invalid("format", f"receipt acceptance time: {exc.message}") from exc
        mmd = self.max_merge_delay
        if isinstance(mmd, bool) or not isinstance(mmd, int) or not 0 <= mmd <= MAX_MERGE_DELAY_LIMIT:
            raise _invalid("format", f"receipt maximum merge delay {mmd!r} is not 0 to a year in seconds")

    @property
    def deadline(self) -> datetime:
        """The instant by which the log promised the record is in it (accepted at + maximum merge delay)."""
        return parse_timestamp(self.accepted_at) + timedelta(seconds=self.max_merge_delay)

    def body(self) -> bytes:
        """The note text that is signed."""
        lines = [self.origin + RECEIPT_SUFFIX, self.record_id, self.accepted_at, str(self.max_merge_delay)]
        return "".join(f"{line}\n" for line in lines).encode("utf-8")

    @classmethod
    def from_body(cls, body: str) -> AcceptanceReceipt:
        """Parse a receipt's note text; raises ReceiptInvalid (check ``format``)."""
        lines = body[:-1].split("\n") if body.endswith("\n") else []
        if len(lines) != 4:
            raise _invalid("format", "receipt text is not four lines: '<origin> accepted', id, time, delay")
        head, record_id, accepted_at, mmd = lines
        if not head.endswith(RECEIPT_SUFFIX) or len(head) == len(RECEIPT_SUFFIX):
            raise _invalid("format", "receipt's first line is not '<origin> accepted' (a checkpoint?)")
        if not _DECIMAL.fullmatch(mmd):
            raise _invalid("format", f"receipt maximum merge delay {mmd[:20]!r} is not a decimal number")
        return cls(
            origin=head[: -len(RECEIPT_SUFFIX)],
            record_id=record_id,
            accepted_at=accepted_at,
            max_merge_delay=int(mmd),
        )


def sign_receipt(receipt: AcceptanceReceipt, key_name: str, signer: Signer) -> str:
    """The receipt as a signed note by the log key (the same signing as a checkpoint's)."""
    return sign_note(receipt.body(), key_name, signer)


def _open_receipt(note: str | bytes) -> tuple[AcceptanceReceipt, str, tuple[NoteSignature, ...]]:
    """The receipt, its note text and its signature lines (unverified); raises ReceiptInvalid."""
    try:
        body, signatures = open_note(note)
    except CheckpointInvalid as exc:
        raise _invalid("format", f"receipt is not a signed note: {exc.message}") from exc
    return AcceptanceReceipt.from_body(body), body, signatures


def parse_receipt(note: str | bytes) -> AcceptanceReceipt:
    """Parse a receipt note strictly, without verifying its signature; raises ReceiptInvalid."""
    return _open_receipt(note)[0]


def verify_receipt(
    note: str | bytes, trust: TrustStore, *, record_id: str | None = None
) -> AcceptanceReceipt:
    """The receipt once a log key pinned in ``trust`` signed it (and, with ``record_id``, it is for that
    record); raises ReceiptInvalid whose ``details["check"]`` names what failed."""
    receipt, body, signatures = _open_receipt(note)
    names = {s.key_name for s in signatures}
    keys = [k for k in trust.logs if k.name in names]
    if not keys:
        raise _invalid(
            "log_key",
            "receipt is not signed by a log key pinned in the trust store",
            signers=sorted(names),
            pinned=[k.name for k in trust.logs],
        )
    key = keys[0]
    try:
        verify_note_text(body, signatures, NoteVerifier(name=key.name, public_key=key.public_key))
    except CheckpointInvalid as exc:
        raise _invalid("signature", f"receipt signature: {exc.message}") from exc
    if key.origin is not None and receipt.origin != key.origin:
        raise _invalid(
            "origin",
            f"receipt is for log {receipt.origin!r}, the pinned key's log is {key.origin!r}",
            origin=receipt.origin,
        )
    if record_id is not None and receipt.record_id != record_id:
        raise _invalid(
            "record",
            f"receipt is for record {receipt.record_id}, not {record_id}",
            receipt_record=receipt.record_id,
            record=record_id,
        )
    return receipt


def check_kept(receipt: AcceptanceReceipt, bundle: EvidenceBundle) -> None:
    """Whether ``bundle`` (verified by the caller) keeps the receipt's promise: the same record in the
    same log. Raises ReceiptInvalid (check ``kept``) when it is for another record or another log."""
    if bundle.digest != receipt.record_id:
        raise _invalid(
            "kept",
            f"the bundle is for record {bundle.digest}, the receipt for {receipt.record_id}",
            bundle_record=bundle.digest,
            receipt_record=receipt.record_id,
        )
    origin = parse_note(bundle.checkpoint)[0].origin
    if origin != receipt.origin:
        raise _invalid(
            "kept", f"the bundle's checkpoint is of log {origin!r}, the receipt of {receipt.origin!r}"
        )
