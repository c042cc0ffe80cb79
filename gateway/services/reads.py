"""Read models: records with their status, evidence bundles, checkpoints and consistency proofs."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, func
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from gateway.core.kek import KekRing
from gateway.errors import NotYetLogged, PayloadCorrupt, PayloadForbidden, PayloadPurged
from gateway.models import (
    CheckpointCosignature,
    CheckpointPublic,
    CheckpointRow,
    CosignaturePublic,
    DataKey,
    Record,
    RecordPayload,
    RecordPublic,
    seq_after,
)
from gateway.services.proofs import proof_tree
from gateway.services.sqllog import merkle_log
from gateway.services.witnessing import cosigned_note, preferred_checkpoints
from gateway.services.workers import signed_record
from provenance.crypto import DecryptionFailed, sm3_hex, sm4_gcm_decrypt
from provenance.errors import NotFound
from provenance.log.bundle import Anchor
from provenance.log.record_log import PublicLog
from provenance.timestamps import sortable

AnyRow = Row[*tuple[Any, ...]]  # a Core row of any columns


def status_of(leaf_index: int | None, anchored_size: int) -> str:
    """A record's status by its leaf index: accepted (not in the log yet) | sequenced (in the log) |
    anchored (under an anchored checkpoint)."""
    if leaf_index is None:
        return "accepted"
    return "anchored" if leaf_index < anchored_size else "sequenced"


# ``RecordPublic``'s fields in its order, and the record columns they are read from (all but ``status``).
# A page of records by default and at most: every listing's bounds (a lean twin's must take the same).
PAGE_SIZE, PAGE_MAX = 100, 500
_PUBLIC_FIELDS = tuple(RecordPublic.model_fields)
_COLUMN_FIELDS = tuple(f for f in _PUBLIC_FIELDS if f != "status")
_STATUS_AT, _LEAF_AT = _PUBLIC_FIELDS.index("status"), _COLUMN_FIELDS.index("leaf_index")
_PUBLIC_COLUMNS = tuple(col(getattr(Record, f)) for f in _COLUMN_FIELDS)


def public_fields(row: Record | AnyRow, anchored_size: int) -> dict[str, Any]:
    """The API view of a record row as JSON values: ``RecordPublic(...).model_dump(mode="json")`` of it,
    without the model (a trace page holds a hundred). ``row``: a ``Record``, or a row of :func:`public_rows`
    (read by position: by name, a Core row's values cost a trace page 1 ms of CPU, by position 0.35)."""
    if isinstance(row, Row):
        values = list(row[: len(_COLUMN_FIELDS)])
    else:
        values = [getattr(row, f) for f in _COLUMN_FIELDS]
    values.insert(_STATUS_AT, status_of(values[_LEAF_AT], anchored_size))
    return dict(zip(_PUBLIC_FIELDS, values, strict=True))


def record_public(row: Record, anchored_size: int) -> RecordPublic:
    """The API view of a record row (its fields by name, as ``RecordPublic`` declares them)."""
    # Validated from a plain dict: SQLModel's validation from the row with an update costs ~4x as much.
    return RecordPublic.model_validate(public_fields(row, anchored_size))


def public_rows(s: Session, where: Sequence[ColumnElement[bool]], *, limit: int) -> Sequence[AnyRow]:
    """The first ``limit`` records matching ``where`` in acceptance order: the columns of
    :func:`public_fields` and ``seq``, as Core rows (no ORM objects)."""
    query = core_select(*_PUBLIC_COLUMNS, col(Record.seq)).where(*where).order_by(col(Record.seq))
    return s.connection().execute(query.limit(limit)).all()


def find_record(s: Session, record_id: str) -> Record | None:
    """The record row, if there is one (who may see it: ``visibility.Reader.visible``)."""
    return s.exec(select(Record).where(Record.id == record_id)).first()


def payload_of(s: Session, row: Record, kek: KekRing) -> Any:
    """The decrypted payload (JSON value); PAYLOAD_PURGED once its data key is gone, DATA_KEY_UNAVAILABLE
    when the gateway's KEK cannot unwrap it."""
    key = s.get(DataKey, row.id)
    stored = s.get(RecordPayload, row.id)
    if key is None or stored is None:
        raise PayloadPurged(f"the payload of {row.id} was purged", details={"id": row.id})
    data_key = kek.data_key(key)
    try:
        canonical = sm4_gcm_decrypt(data_key, stored.ciphertext, row.id.encode("ascii"))
    except DecryptionFailed as exc:
        raise PayloadCorrupt(
            "the stored payload fails authentication (altered in storage)", details={"id": row.id}
        ) from exc
    if sm3_hex(canonical) != row.payload_digest:
        raise PayloadCorrupt(
            "the stored payload no longer matches the signed payload digest", details={"id": row.id}
        )
    return json.loads(canonical)


def anchor_of(cp: CheckpointRow, *, chain_id: int, contract: str) -> Anchor | None:
    """The on-chain anchor of a checkpoint row, if it has one."""
    if cp.anchor_tx is None or cp.anchor_block_number is None or cp.anchor_block_hash is None:
        return None
    return Anchor(
        chain_id=chain_id,
        contract=contract,
        tx_hash=cp.anchor_tx,
        block_number=cp.anchor_block_number,
        block_hash=cp.anchor_block_hash,
        tree_size=cp.size,
        root=cp.root,
    )


def checkpoint_public(
    cp: CheckpointRow, *, chain_id: int, contract: str, cosigned: Sequence[CheckpointCosignature] = ()
) -> CheckpointPublic:
    """The API view of a checkpoint: its note carries the witnesses' cosignature lines ``cosigned``."""
    anchor = anchor_of(cp, chain_id=chain_id, contract=contract)
    return CheckpointPublic(
        size=cp.size,
        root="0x" + cp.root.hex(),
        note=cp.note + "".join(c.line for c in cosigned),
        created_at=cp.created_at,
        anchor=anchor.to_dict() if anchor else None,
        cosignatures=[
            CosignaturePublic(witness=c.witness, timestamp=c.timestamp, received_at=c.received_at)
            for c in cosigned
        ],
    )


@dataclass(frozen=True, slots=True)
class LogIdentity:
    """What every bundle of this gateway's log names: the log's public key and origin, the chain and its
    contract. Reads need no more: the signing key stays with the sequencer and the receipts."""

    public_key_pem: str
    origin: str
    key_name: str
    chain_id: int
    contract: str
    witness_quorum: int = 0  # cosignatures a checkpoint needs for bundles to prefer it


def _covering(s: Session, leaf_index: int, quorum: int) -> CheckpointRow | None:
    """The newest checkpoint covering ``leaf_index`` that evidence may cite, anchored if possible
    (``witnessing.preferred_checkpoints``: with a witness quorum, only witnessed ones)."""
    return next((cp for cp in preferred_checkpoints(s, quorum) if cp.size > leaf_index), None)


def _bundle(
    s: Session,
    row: Record,
    cp: CheckpointRow,
    ident: LogIdentity,
    kek: KekRing,
    include_payload: bool,
) -> dict[str, Any]:
    assert row.leaf_index is not None
    payload: Any = None
    if include_payload:
        try:
            payload = payload_of(s, row, kek)
        except PayloadPurged:
            include_payload = False
    tree = proof_tree(s, row.leaf_index, cp.size)  # the proof's nodes in one query
    public = PublicLog(tree, key_name=ident.key_name, log_public_key_pem=ident.public_key_pem)
    bundle = public.bundle(
        signed=signed_record(row),
        leaf_index=row.leaf_index,
        signer_public_key_pem=row.signer_public_key,
        note=cosigned_note(s, cp),
        tree_size=cp.size,
        payload=payload,
        include_payload=include_payload,
        anchor=anchor_of(cp, chain_id=ident.chain_id, contract=ident.contract),
    )
    return bundle.to_dict()


def bundle_of(
    s: Session, row: Record, ident: LogIdentity, kek: KekRing, *, include_payload: bool
) -> dict[str, Any]:
    """The evidence bundle of a record under the newest checkpoint that covers it, anchored if possible."""
    if row.leaf_index is None:
        raise NotYetLogged(
            "the record is accepted but not in the log yet; retry shortly", details={"id": row.id}
        )
    cp = _covering(s, row.leaf_index, ident.witness_quorum)
    if cp is None:
        raise NotYetLogged(
            "no signed (and, with witnesses, witnessed) checkpoint covers the record yet; retry shortly",
            details={"id": row.id},
        )
    return _bundle(s, row, cp, ident, kek, include_payload)


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """Which records an export holds; ``since``/``until`` bound the envelope timestamp as [since, until);
    ``scope`` is what the reader may list (``visibility.Reader.listing``; None: every record)."""

    scope: Any = None
    org: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class ExportPage:
    items: list[dict[str, Any]]
    next_cursor: int | None
    total: int | None


def _ts_key(at: datetime) -> str:
    """An instant in the form ``_ts_column`` compares: seconds, then the fraction without trailing zeros.

    Envelope timestamps carry 0 to 6 fraction digits before ``Z``; with the ``Z`` dropped, plain string
    order is time order (``…05`` < ``…05.1`` < ``…05.25`` < ``…06``), so the database can filter and page.
    """
    return sortable(at)


def export_page(
    s: Session,
    ident: LogIdentity,
    kek: KekRing,
    flt: ExportFilter,
    *,
    after: int,
    limit: int,
    payload_rule: Callable[[Record], bool],
    payload: bool | None,
) -> ExportPage:
    """One page of evidence bundles in acceptance order: records under a signed checkpoint only.

    ``payload``: None includes each payload the reader may see, False none, True all (PAYLOAD_FORBIDDEN
    if the page holds a record whose payload the reader may not see). ``total`` is counted on the first
    page only (``after`` = 0): it costs a scan of the matching rows.
    """
    preferred = preferred_checkpoints(s, ident.witness_quorum)
    if not preferred:
        return ExportPage(items=[], next_cursor=None, total=0 if after == 0 else None)
    newest = max(preferred, key=lambda c: c.size)
    # Only what a signed checkpoint covers has a bundle: a leaf beyond it waits for the next page/export.
    conds: list[Any] = [col(Record.leaf_index).is_not(None), col(Record.leaf_index) < newest.size]
    if flt.scope is not None:
        conds.append(flt.scope)
    if flt.org is not None:
        conds.append(col(Record.org) == flt.org)
    if flt.kind is not None:
        conds.append(col(Record.kind) == flt.kind)
    ts = _ts_column(s)
    if flt.since is not None:
        conds.append(ts >= _ts_key(flt.since))
    if flt.until is not None:
        conds.append(ts < _ts_key(flt.until))
    rows = s.exec(
        select(Record).where(*conds, seq_after(after)).order_by(col(Record.seq)).limit(limit + 1)
    ).all()
    page = rows[:limit]
    total = int(s.exec(select(func.count()).select_from(Record).where(*conds)).one()) if after == 0 else None
    items = []
    for row in page:
        allowed = payload_rule(row)
        if payload and not allowed:
            raise PayloadForbidden(
                f"the payload of {row.id} is not for this reader; leave payload unset for the allowed ones",
                details={"id": row.id, "org": row.org},
            )
        assert row.leaf_index is not None
        cp = next(c for c in preferred if row.leaf_index < c.size)
        items.append(_bundle(s, row, cp, ident, kek, allowed if payload is None else payload))
    nxt = page[-1].seq if len(rows) > limit and page else None
    return ExportPage(items=items, next_cursor=nxt, total=total)


def _ts_column(s: Session) -> Any:
    expr = func.replace(col(Record.timestamp), "Z", "")
    # PostgreSQL compares text by the database's collation, which may order punctuation unlike bytes.
    bind = s.get_bind()
    return expr if bind.dialect.name == "sqlite" else expr.collate("C")


def consistency(s: Session, first: int, second: int) -> dict[str, Any]:
    """RFC 9162 consistency proof between two tree sizes, with both roots."""
    tree = merkle_log(s)
    if not 0 <= first <= second <= tree.size:
        raise NotFound(
            f"no consistency proof from size {first} to {second} in a log of size {tree.size}",
            details={"first": first, "second": second, "size": tree.size},
        )
    proof = tree.consistency_proof(first, second)
    return {
        "first": first,
        "second": second,
        "first_root": "0x" + tree.root(first).hex(),
        "second_root": "0x" + tree.root(second).hex(),
        "proof": [base64.b64encode(h).decode("ascii") for h in proof],
    }
