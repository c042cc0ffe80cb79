"""Acceptance receipts: the log's signed promise to include a record (RFC 6962 §3.2's SCT, for this log).

A receipt is a C2SP signed note by the log key, like a checkpoint, with its own first line so that neither
can pass for the other::

    <origin> accepted
    <record id>                 64 lowercase hex (the record's SM3 digest)
    <accepted at>               RFC 3339 UTC, milliseconds, Z
    <maximum merge delay>       seconds, ASCII decimal

The gateway promises that the record is in the log, under a signed checkpoint, by ``accepted at`` plus the
maximum merge delay.

Receipts accepted together (a bulk request, concurrent submissions) share one signature: the log signs a
*batch* note over the SM3 Merkle root (RFC 9162 hashing) of their leaves ``<record id> <accepted at>``, and
each record's receipt is that note preceded by the record's leaf and inclusion proof::

    shancheng-provenance/acceptance-proof@v1
    record <record id>
    accepted <accepted at>
    index <leaf index>
    <base64 proof hash>...      one per line
                                blank line
    <origin> accepted batch     the signed batch note
    size <batch size>
    root <base64 root>
    max-merge-delay <seconds>

Both forms promise the same and parse to the same ``AcceptanceReceipt``. The format is in
``docs/formats.md``; what a receipt proves, and what it does not, in ``docs/security.md``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from provenance.abc import Signer
from provenance.errors import CheckpointInvalid, ProofInvalid, ProvenanceError, ReceiptInvalid
from provenance.log.bundle import EvidenceBundle
from provenance.log.checkpoint import (
    NoteSignature,
    NoteVerifier,
    canonical_b64decode,
    open_note,
    parse_note,
    sign_note,
    verify_note_text,
)
from provenance.log.merkle import HASH_SIZE, leaf_hash, root_and_inclusion_proofs, root_from_inclusion_proof
from provenance.timestamps import parse_timestamp

if TYPE_CHECKING:  # the log's formats sit below verification: the trust store is only read here
    from provenance.verification.trust import TrustStore

RECEIPT_SUFFIX = " accepted"
BATCH_SUFFIX = " accepted batch"
PROOF_HEADER = "shancheng-provenance/acceptance-proof@v1"
MAX_BATCH = 1 << 16  # more leaves than any bulk request holds; bounds the proof a verifier reads
MAX_MERGE_DELAY_LIMIT = 366 * 24 * 3600  # a year: anything longer promises nothing

_RECORD_ID = re.compile(r"[0-9a-f]{64}")
# The documented form exactly: RFC 3339 UTC with milliseconds (the gateway's ``format_timestamp``), so that
# one acceptance has one text (a receipt's leaf in a batch tree is built from it).
_ACCEPTED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
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
        if not isinstance(self.accepted_at, str) or not _ACCEPTED_AT.fullmatch(self.accepted_at):
            raise _invalid(
                "format",
                f"receipt acceptance time {str(self.accepted_at)[:40]!r} is not RFC 3339 UTC with "
                "milliseconds (2026-11-30T08:00:00.123Z)",
            )
        try:
            accepted = parse_timestamp(self.accepted_at)
        except ProvenanceError as exc:
            raise _invalid("format", f"receipt acceptance time: {exc.message}") from exc
        mmd = self.max_merge_delay
        if isinstance(mmd, bool) or not isinstance(mmd, int) or not 0 <= mmd <= MAX_MERGE_DELAY_LIMIT:
            raise _invalid("format", f"receipt maximum merge delay {mmd!r} is not 0 to a year in seconds")
        try:
            accepted + timedelta(seconds=mmd)  # the deadline must exist for `deadline` to say it
        except OverflowError as exc:  # 9999-12-31T23:59:59.999Z + 60 s: no date-time can say when
            raise _invalid(
                "format", f"receipt deadline ({self.accepted_at} + {mmd} s) lies beyond the year 9999"
            ) from exc

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

    def leaf(self) -> bytes:
        """The receipt's entry in a batch tree: ``<record id> <accepted at>`` (both fixed-form, no spaces)."""
        return f"{self.record_id} {self.accepted_at}".encode("ascii")


@dataclass(frozen=True, kw_only=True)
class AcceptanceBatch:
    """What the log signed for receipts accepted together: the root of their leaves' Merkle tree."""

    origin: str
    size: int
    root: bytes
    max_merge_delay: int

    def body(self) -> bytes:
        """The batch note text that is signed (labelled lines: it never has a checkpoint's shape)."""
        root = base64.b64encode(self.root).decode("ascii")
        lines = [
            self.origin + BATCH_SUFFIX,
            f"size {self.size}",
            f"root {root}",
            f"max-merge-delay {self.max_merge_delay}",
        ]
        return "".join(f"{line}\n" for line in lines).encode("utf-8")

    @classmethod
    def from_body(cls, body: str) -> AcceptanceBatch:
        """Parse a batch note's text; raises ReceiptInvalid (check ``format``)."""
        lines = body[:-1].split("\n") if body.endswith("\n") else []
        if len(lines) != 4:
            raise _invalid(
                "format", "batch note is not four lines: '<origin> accepted batch', size, root, delay"
            )
        head, *labelled = lines
        if not head.endswith(BATCH_SUFFIX) or len(head) == len(BATCH_SUFFIX):
            raise _invalid("format", "batch note's first line is not '<origin> accepted batch'")
        size, root, mmd = _labelled(labelled, ("size", "root", "max-merge-delay"), "batch note")
        if not _DECIMAL.fullmatch(size) or not 1 <= int(size) <= MAX_BATCH:
            raise _invalid("format", f"batch size {size[:20]!r} is not a decimal from 1 to {MAX_BATCH}")
        if not _DECIMAL.fullmatch(mmd):
            raise _invalid("format", f"batch maximum merge delay {mmd[:20]!r} is not a decimal number")
        return cls(
            origin=head[: -len(BATCH_SUFFIX)],
            size=int(size),
            root=_hash(root, "batch root"),
            max_merge_delay=int(mmd),
        )


def _labelled(lines: Sequence[str], labels: Sequence[str], what: str) -> list[str]:
    """The values of ``<label> <value>`` lines, in order; raises ReceiptInvalid (check ``format``)."""
    values = []
    for line, label in zip(lines, labels, strict=True):
        if not line.startswith(label + " "):
            raise _invalid("format", f"{what} has no '{label}' line where expected")
        values.append(line[len(label) + 1 :])
    return values


def _hash(text: str, what: str) -> bytes:
    """A canonical base64 SM3 hash (32 bytes); raises ReceiptInvalid (check ``format``)."""
    try:
        raw = canonical_b64decode(text, what)
    except CheckpointInvalid as exc:
        raise _invalid("format", exc.message) from exc
    if len(raw) != HASH_SIZE:
        raise _invalid("format", f"{what} is {len(raw)} bytes, not a {HASH_SIZE}-byte hash")
    return raw


def sign_receipt(receipt: AcceptanceReceipt, key_name: str, signer: Signer, *also: Signer) -> str:
    """The receipt as a signed note by the log key (the same signing as a checkpoint's; ``also``: the next
    log key during a rotation)."""
    return sign_note(receipt.body(), key_name, signer, *also)


def sign_receipts(
    receipts: Sequence[AcceptanceReceipt], key_name: str, signer: Signer, *also: Signer
) -> list[str]:
    """The receipts of records accepted together, in order, under one signature.

    One receipt is a plain signed receipt note; several share a signed batch note over their Merkle root,
    each with its leaf and inclusion proof in front. Every receipt must be of the same log and delay.
    """
    if len(receipts) == 1:
        return [sign_receipt(receipts[0], key_name, signer, *also)]
    if not receipts:
        return []
    first = receipts[0]
    if any((r.origin, r.max_merge_delay) != (first.origin, first.max_merge_delay) for r in receipts):
        raise ValueError("receipts signed together must share the log's origin and maximum merge delay")
    if len(receipts) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} receipts under one signature")
    root, proofs = root_and_inclusion_proofs([leaf_hash(r.leaf()) for r in receipts])
    batch = AcceptanceBatch(
        origin=first.origin, size=len(receipts), root=root, max_merge_delay=first.max_merge_delay
    )
    note = sign_note(batch.body(), key_name, signer, *also)
    out = []
    for i, r in enumerate(receipts):
        proof = "".join(base64.b64encode(h).decode("ascii") + "\n" for h in proofs[i])
        out.append(
            f"{PROOF_HEADER}\nrecord {r.record_id}\naccepted {r.accepted_at}\nindex {i}\n{proof}\n{note}"
        )
    return out


def _open_proof(text: str) -> tuple[AcceptanceReceipt, str, tuple[NoteSignature, ...]]:
    """A batch receipt: the record's receipt once its leaf is proven under the batch note's root
    (unverified signature); raises ReceiptInvalid (``format``, or ``inclusion`` for a proof that fails)."""
    split = text.find("\n\n")
    if split < 0:
        raise _invalid("format", "acceptance proof has no blank line before its batch note")
    lines = text[:split].split("\n")
    if len(lines) < 4 or lines[0] != PROOF_HEADER:
        raise _invalid("format", "acceptance proof does not start with its header, record, accepted, index")
    if len(lines) > 4 + MAX_BATCH.bit_length():
        raise _invalid("format", f"acceptance proof has {len(lines) - 4} hashes, more than a batch needs")
    record_id, accepted_at, index = _labelled(lines[1:4], ("record", "accepted", "index"), "acceptance proof")
    if not _DECIMAL.fullmatch(index):
        raise _invalid("format", f"acceptance proof index {index[:20]!r} is not a decimal number")
    proof = [_hash(line, f"inclusion proof hash {n}") for n, line in enumerate(lines[4:])]
    try:
        body, signatures = open_note(text[split + 2 :])
    except CheckpointInvalid as exc:
        raise _invalid("format", f"batch note is not a signed note: {exc.message}") from exc
    batch = AcceptanceBatch.from_body(body)
    receipt = AcceptanceReceipt(
        origin=batch.origin,
        record_id=record_id,
        accepted_at=accepted_at,
        max_merge_delay=batch.max_merge_delay,
    )
    try:
        root = root_from_inclusion_proof(leaf_hash(receipt.leaf()), int(index), batch.size, proof)
    except ProofInvalid as exc:
        raise _invalid("inclusion", f"receipt's inclusion proof: {exc.message}") from exc
    if root != batch.root:
        raise _invalid("inclusion", "the receipt's leaf and proof do not lead to the signed batch root")
    return receipt, body, signatures


def _open_receipt(note: str | bytes) -> tuple[AcceptanceReceipt, str, tuple[NoteSignature, ...]]:
    """The receipt, its signed text and its signature lines (unverified); raises ReceiptInvalid."""
    if isinstance(note, bytes | bytearray) and note.startswith(PROOF_HEADER.encode() + b"\n"):
        try:
            note = bytes(note).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _invalid("format", "acceptance proof is not valid UTF-8") from exc
    if isinstance(note, str) and note.startswith(PROOF_HEADER + "\n"):
        return _open_proof(note)
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
    # A rotated log key: several keys under one name, each counting until its window ended (the receipt is
    # signed at its acceptance time); any one of their lines suffices.
    at = parse_timestamp(receipt.accepted_at)
    current = [k for k in keys if k.signs_after(at)]
    if not current:
        raise _invalid(
            "log_key",
            f"every pinned log key ended (expired or revoked) by {receipt.accepted_at}, the receipt's time",
            accepted_at=receipt.accepted_at,
        )
    failures = []
    for key in current:
        try:
            verify_note_text(body, signatures, NoteVerifier(name=key.name, public_key=key.public_key))
            break
        except CheckpointInvalid as exc:
            failures.append(exc)
    else:
        raise _invalid("signature", f"receipt signature: {failures[0].message}") from failures[0]
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
