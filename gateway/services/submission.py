"""A submission on the write path: the record as submitted and as prepared (``intake`` decides and writes
it), and the small readings of its parts the write path makes before any check."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters import AdaptContext, adapt
from adapters._common import canonical_json
from adapters.registry import workflow_for
from gateway.services.outbox import Row
from gateway.services.rules import Decision
from provenance.crypto.sm3 import sm3_hex
from provenance.errors import PayloadDigestMismatch, PayloadInvalid, ProvenanceError
from provenance.records import Envelope


@dataclass(frozen=True, slots=True)
class Submission:
    """One record as submitted: envelope (JSON object), base64 DER signature, payload, and the access code
    the submitter presents (a dispense's: the patient's slip), which is never part of what is signed."""

    record: Any
    signature: Any
    payload: Any
    access_code: str | None = None


@dataclass(slots=True)
class Prepared:
    """A record on its way through the write path: what each check found, then the rules' decision."""

    envelope: Envelope
    record_id: str
    idempotency_key: str | None = None
    existing: float | None = None  # the first acceptance time of a record already accepted
    signature_b64: str = ""
    key_index: int = -1
    public_key_pem: str = ""
    payload: bytes | Mapping[str, Any] = b""
    context: AdaptContext | None = None
    canonical: bytes = b""
    facts: dict[str, Any] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)  # for the rules only, never stored
    decision: Decision | None = None

    @property
    def calls(self) -> bool:
        """Whether the record makes a contract call once accepted."""
        return self.decision is not None and self.decision.call is not None

    def row(self) -> Row:
        return Row(
            envelope=self.envelope,
            record_id=self.record_id,
            signature_b64=self.signature_b64,
            key_index=self.key_index,
            public_key_pem=self.public_key_pem,
            facts=self.facts,
            canonical=self.canonical,
            chain_status="pending" if self.calls else "none",
            idempotency_key=self.idempotency_key,
        )


def envelope_or_none(sub: Submission) -> Envelope | None:
    try:
        return Envelope.from_dict(sub.record)
    except ProvenanceError:
        return None


def reads_subject(envelope: Envelope | None) -> bool:
    """Whether preparing the record reads its subject's state (its access code: ``check_code``), which an
    earlier item of the same bulk request may change."""
    if envelope is None:
        return False
    try:
        return envelope.kind in workflow_for(envelope.kind).read_policy.code_writes
    except ProvenanceError:
        return False  # an unknown kind: _prepare refuses it before any read


def payload_input(payload: Any) -> bytes | Mapping[str, Any]:
    if isinstance(payload, str):
        return payload.encode("utf-8")  # an HJ 212 packet (or JSON text)
    if isinstance(payload, Mapping):
        return payload
    raise PayloadInvalid("payload must be a JSON object or a string", details={"field": "payload"})


def check_digest(envelope: Envelope, digest: str) -> None:
    """The payload (its canonical form's SM3, hex) is the one the record signs."""
    if digest != envelope.payload_digest:
        raise PayloadDigestMismatch(
            "the payload does not hash to the record's payload_digest",
            details={"expected": envelope.payload_digest, "actual": digest},
        )


def check_resent_payload(envelope: Envelope, payload: bytes | Mapping[str, Any], ctx: AdaptContext) -> None:
    """A resubmitted record's payload is the accepted one: as sent, its RFC 8785 form hashes to the payload
    digest (what a client signs), else the adapter's normalised form does (an HJ 212 packet's; ``ctx``
    without a clock: the accepted record's dates are not held to the clock again). Else the error a new
    record would get."""
    if isinstance(payload, Mapping):
        with contextlib.suppress(ProvenanceError):  # not canonicalisable: the adapter says why
            if sm3_hex(canonical_json(payload)) == envelope.payload_digest:
                return
    check_digest(envelope, adapt(envelope.kind, payload, ctx).digest)
