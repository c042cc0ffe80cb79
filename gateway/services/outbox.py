"""The outbox rows of accepted records (``record``, ``record_payload``, ``data_key``): the id and nonce
checks that need the write transaction, and the rows, inserted together (one statement per table).

What a transaction already holds is kept in one :class:`Batch`: the ids and nonces the database held when
it started (loaded up front for a batch, or looked up one by one) and the rows of the records it accepted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert
from sqlmodel import Session, col, select

from gateway.core.db import execute_many
from gateway.core.kek import KekRing
from gateway.errors import PrevUnknown, Replayed
from gateway.models import DataKey, Record, RecordPayload
from provenance.crypto import generate_sm4_key, sm4_gcm_encrypt
from provenance.records import Envelope

# Built once: a statement built per call is compiled-cache-keyed per call (a tenth of a small write's CPU).
_INSERTS = tuple(insert(m.__table__) for m in (Record, RecordPayload, DataKey))  # type: ignore[union-attr]
_ACCEPTED_AT = select(Record.accepted_at).where(col(Record.id) == bindparam("id"))
_SUBJECT = select(Record.subject).where(col(Record.id) == bindparam("id"))
_ACCEPTED = select(col(Record.accepted_at), col(Record.signature)).where(col(Record.id) == bindparam("id"))
_KNOWN = select(col(Record.id), col(Record.accepted_at), col(Record.signature)).where(
    col(Record.id).in_(bindparam("ids", expanding=True))
)
# A record already accepted: when, and its signature as logged (base64 DER), which a resubmission that
# carries the same bytes need not have verified again (intake's ``_resubmitted``).
Known = tuple[float, str]
_NONCES = select(col(Record.id), col(Record.nonce)).where(
    col(Record.org) == bindparam("org"), col(Record.nonce).in_(bindparam("nonces", expanding=True))
)


@dataclass(frozen=True, slots=True)
class Accepted:
    id: str
    created: bool  # False: the same record was already accepted (idempotent resubmission)
    accepted_at: float  # when it was first accepted (epoch seconds, as stored): its receipt's time


@dataclass(frozen=True, slots=True)
class Row:
    """What the outbox stores of one record."""

    envelope: Envelope
    record_id: str
    signature_b64: str  # canonical base64, as logged
    key_index: int
    public_key_pem: str
    facts: dict[str, Any]
    canonical: bytes  # the payload's canonical bytes (stored SM4-GCM encrypted)
    chain_status: str  # "pending" when the record makes a contract call, else "none"
    idempotency_key: str | None = None


@dataclass(slots=True)
class Batch:
    """One write transaction's view of the outbox."""

    prefetched: bool = False  # ids and nonces were loaded up front: what is not here is not stored
    accepted: dict[str, float] = field(default_factory=dict)  # record id -> acceptance time
    nonces: dict[str, str] = field(default_factory=dict)  # "<org>\0<nonce>" -> record id
    subjects: dict[str, str] = field(default_factory=dict)  # record id -> subject, of those accepted here
    records: list[dict[str, Any]] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)

    def insert(self, s: Session) -> None:
        """One INSERT per table run for every row (``execute_many``): the ORM unit of work cost more than the
        rest of intake, its bulk-insert layer as much again, and this runs under the (SQLite) write lock.
        """
        conn = s.connection()
        for stmt, rows in zip(_INSERTS, (self.records, self.payloads, self.keys), strict=True):
            execute_many(conn, stmt, rows)
            rows.clear()


def accepted_at(s: Session, record_id: str) -> float | None:
    """When the record was accepted, if it was (on the Core connection: cheaper than the ORM's layer)."""
    found = s.connection().execute(_ACCEPTED_AT, {"id": record_id}).scalar()
    return None if found is None else float(found)


def accepted(s: Session, record_id: str) -> Known | None:
    """When the record was accepted and its signature, if it was."""
    found = s.connection().execute(_ACCEPTED, {"id": record_id}).first()
    return None if found is None else (float(found[0]), str(found[1]))


def known_records(s: Session, ids: list[str]) -> dict[str, Known]:
    """Those of the record ids already accepted, with their acceptance time and signature (one query per
    500)."""
    known: dict[str, Known] = {}
    conn = s.connection()  # Core rows, statements built once: the ORM's result layer cost as much again
    for start in range(0, len(ids), 500):
        rows = conn.execute(_KNOWN, {"ids": ids[start : start + 500]})
        known.update((rid, (float(at), str(sig))) for rid, at, sig in rows)
    return known


def known_ids(s: Session, ids: list[str]) -> dict[str, float]:
    """Those of the record ids already accepted, with their acceptance time."""
    return {rid: at for rid, (at, _) in known_records(s, ids).items()}


def prefetch(s: Session, envelopes: Sequence[Envelope]) -> Batch:
    """A batch's view seeded with the ids and nonces the database already holds."""
    batch = Batch(prefetched=True)
    for start in range(0, len(envelopes), 500):
        chunk = envelopes[start : start + 500]
        batch.accepted.update(known_ids(s, [e.digest for e in chunk]))
        nonces_by_org: dict[str, list[str]] = {}
        for e in chunk:
            nonces_by_org.setdefault(e.org, []).append(e.nonce)
        for org, nonces in nonces_by_org.items():
            for rid, nonce in s.connection().execute(_NONCES, {"org": org, "nonces": nonces}):
                batch.nonces[f"{org}\0{nonce}"] = rid
    return batch


def check_new(s: Session, rec: Envelope, record_id: str, batch: Batch) -> Accepted | None:
    """The first acceptance of the same record (idempotent), REPLAYED for another record of the same
    nonce, or None: the record is new."""
    first = batch.accepted.get(record_id)
    if first is None and not batch.prefetched:
        first = accepted_at(s, record_id)
    if first is not None:
        return Accepted(record_id, created=False, accepted_at=first)
    other = batch.nonces.get(f"{rec.org}\0{rec.nonce}")
    if other is None and not batch.prefetched:
        other = s.exec(select(Record.id).where(Record.org == rec.org, Record.nonce == rec.nonce)).first()
    if other is not None:
        raise Replayed(
            "this organisation already used the nonce for another record",
            details={"nonce": rec.nonce, "record_id": other},
        )
    return None


def check_prev(s: Session, rec: Envelope, batch: Batch) -> None:
    """A record's ``prev``, when set, is the id (digest) of an accepted record of the same subject: here,
    or earlier in this transaction. Not necessarily the subject's latest: organisations write one subject
    concurrently (a review between an issue and the dispense naming the issue), and the log orders them."""
    if rec.prev is None:
        return
    subject = batch.subjects.get(rec.prev)
    if subject is None:
        subject = s.connection().execute(_SUBJECT, {"id": rec.prev}).scalar()
    if subject != rec.subject:
        raise PrevUnknown(
            f"prev {rec.prev} is no accepted record of {rec.subject}",
            details={"field": "prev", "prev": rec.prev, "subject": rec.subject},
        )


def add(batch: Batch, row: Row, kek: KekRing) -> Accepted:
    """Queue the rows of a new record in the batch (inserted by :meth:`Batch.insert`)."""
    rec = row.envelope
    at = time.time()
    batch.records.append(
        {
            "id": row.record_id,
            "kind": rec.kind,
            "subject": rec.subject,
            "org": rec.org,
            "timestamp": rec.timestamp,
            "nonce": rec.nonce,
            "prev": rec.prev,
            "payload_digest": rec.payload_digest,
            "signature": row.signature_b64,
            "accepted_at": at,
            "signer_key_index": row.key_index,
            "signer_public_key": row.public_key_pem,
            "facts": row.facts,
            "chain_status": row.chain_status,
            "idempotency_key": row.idempotency_key,
            "leaf_index": None,
            "chain_tx": None,
            "chain_error": None,
        }
    )
    key = generate_sm4_key()
    # The record id as AAD binds the ciphertext to its record: swapping payload rows fails to decrypt.
    ciphertext = sm4_gcm_encrypt(key, row.canonical, row.record_id.encode("ascii"))
    batch.payloads.append({"record_id": row.record_id, "ciphertext": ciphertext})
    batch.keys.append(kek.key_row(row.record_id, key))  # stored only wrapped with the KEK
    batch.accepted[row.record_id] = at
    batch.nonces[f"{rec.org}\0{rec.nonce}"] = row.record_id
    batch.subjects[row.record_id] = rec.subject
    return Accepted(row.record_id, created=True, accepted_at=at)
