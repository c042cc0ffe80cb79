"""Read models: records with their status, evidence bundles, checkpoints and consistency proofs."""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlmodel import Session, col, select

from gateway.errors import NotYetLogged, PayloadCorrupt, PayloadPurged, RecordNotFound
from gateway.models import CheckpointPublic, CheckpointRow, DataKey, Record, RecordPayload, RecordPublic
from gateway.services.sqllog import SqlLogStorage, merkle_log
from gateway.services.workers import signed_record
from provenance.bundle import Anchor
from provenance.crypto import DecryptionFailed, SM2PrivateKey, sm3_hex, sm4_gcm_decrypt
from provenance.errors import NotFound
from provenance.log import RecordLog


def status_of(row: Record, anchored_size: int) -> str:
    """accepted (not in the log yet) | sequenced (in the log) | anchored (under an anchored checkpoint)."""
    if row.leaf_index is None:
        return "accepted"
    return "anchored" if row.leaf_index < anchored_size else "sequenced"


def record_public(row: Record, anchored_size: int) -> RecordPublic:
    """The API view of a record row."""
    return RecordPublic(
        id=row.id,
        kind=row.kind,
        subject=row.subject,
        org=row.org,
        timestamp=row.timestamp,
        nonce=row.nonce,
        prev=row.prev,
        payload_digest=row.payload_digest,
        signature=row.signature,
        status=status_of(row, anchored_size),
        leaf_index=row.leaf_index,
        accepted_at=row.accepted_at,
        chain_status=row.chain_status,
        chain_tx=row.chain_tx,
        chain_error=row.chain_error,
    )


def get_record(s: Session, record_id: str) -> Record:
    """The record row, or RECORD_NOT_FOUND."""
    row = s.exec(select(Record).where(Record.id == record_id)).first()
    if row is None:
        raise RecordNotFound(f"no record {record_id!r}", details={"id": record_id})
    return row


def payload_of(s: Session, row: Record) -> Any:
    """The decrypted payload (JSON value); PAYLOAD_PURGED once its data key is gone."""
    key = s.get(DataKey, row.id)
    stored = s.get(RecordPayload, row.id)
    if key is None or stored is None:
        raise PayloadPurged(f"the payload of {row.id} was purged", details={"id": row.id})
    try:
        canonical = sm4_gcm_decrypt(key.key, stored.ciphertext, row.id.encode("ascii"))
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


def checkpoint_public(cp: CheckpointRow, *, chain_id: int, contract: str) -> CheckpointPublic:
    """The API view of a checkpoint."""
    anchor = anchor_of(cp, chain_id=chain_id, contract=contract)
    return CheckpointPublic(
        size=cp.size,
        root="0x" + cp.root.hex(),
        note=cp.note,
        created_at=cp.created_at,
        anchor=anchor.to_dict() if anchor else None,
    )


def bundle_of(
    s: Session,
    row: Record,
    *,
    log_key: SM2PrivateKey,
    origin: str,
    key_name: str,
    chain_id: int,
    contract: str,
    include_payload: bool,
) -> dict[str, Any]:
    """The evidence bundle of a record under the newest checkpoint that covers it, anchored if possible."""
    if row.leaf_index is None:
        raise NotYetLogged(
            "the record is accepted but not in the log yet; retry shortly", details={"id": row.id}
        )
    covering = select(CheckpointRow).where(col(CheckpointRow.size) > row.leaf_index)
    cp = (
        s.exec(
            covering.where(col(CheckpointRow.anchor_tx).is_not(None)).order_by(col(CheckpointRow.size).desc())
        ).first()
        or s.exec(covering.order_by(col(CheckpointRow.size).desc())).first()
    )
    if cp is None:
        raise NotYetLogged(
            "no signed checkpoint covers the record yet; retry shortly", details={"id": row.id}
        )
    payload: Any = None
    if include_payload:
        try:
            payload = payload_of(s, row)
        except PayloadPurged:
            include_payload = False
    log = RecordLog(origin=origin, key_name=key_name, key=log_key, storage=SqlLogStorage(s))
    bundle = log.bundle(
        signed=signed_record(row),
        leaf_index=row.leaf_index,
        signer_public_key_pem=row.signer_public_key,
        note=cp.note,
        tree_size=cp.size,
        payload=payload,
        include_payload=include_payload,
        anchor=anchor_of(cp, chain_id=chain_id, contract=contract),
    )
    return bundle.to_dict()


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
