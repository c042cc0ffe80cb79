"""Database tables and wire models (SQLModel families ``XBase`` / ``XCreate`` / ``XPublic`` / ``X``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Index,
    LargeBinary,
    UniqueConstraint,
    literal,
)
from sqlmodel import Field, SQLModel, col

# --- API tokens ------------------------------------------------------------------------------------


class ApiTokenBase(SQLModel):
    org_id: str = Field(index=True, max_length=32)
    label: str = Field(default="", max_length=200)


class ApiToken(ApiTokenBase, table=True):
    """A per-organisation bearer token: ``<id>.<secret>``; only SHA-256 of the secret is stored."""

    __tablename__ = "api_token"
    id: str = Field(primary_key=True, max_length=32)
    secret_sha256: str = Field(max_length=64)
    created_at: float
    revoked_at: float | None = None


class ApiTokenPublic(ApiTokenBase):
    id: str
    created_at: float
    revoked_at: float | None


# --- records (the outbox) --------------------------------------------------------------------------


class RecordBase(SQLModel):
    id: str = Field(unique=True, index=True, max_length=64)
    kind: str = Field(max_length=64)
    subject: str = Field(index=True, max_length=256)
    org: str = Field(max_length=32)
    timestamp: str = Field(max_length=40)
    nonce: str = Field(max_length=64)
    prev: str | None = Field(default=None, max_length=64)
    payload_digest: str = Field(max_length=64)
    signature: str = Field(max_length=256)


class Record(RecordBase, table=True):
    """An accepted record. ``seq`` is the acceptance order the sequencer follows."""

    __tablename__ = "record"
    __table_args__ = (
        UniqueConstraint("org", "nonce", name="uq_record_org_nonce"),
        # A subject's history in acceptance order (the trace page: WHERE subject = ? AND seq > ? ORDER BY seq
        # LIMIT n). PostgreSQL's subject index alone fetched and sorted every record of the subject (499 heap
        # pages for a page of 100 at 500,000 records); SQLite's holds the rowid, which is seq, already.
        Index("ix_record_subject_seq", "subject", "seq").ddl_if(dialect="postgresql"),
    )
    seq: int | None = Field(default=None, primary_key=True)
    accepted_at: float
    signer_key_index: int
    signer_public_key: str
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    leaf_index: int | None = Field(default=None, unique=True, index=True, sa_type=BigInteger)
    # Workflow kinds also go to their domain contract: none | pending | confirmed | rejected.
    chain_status: str = Field(default="none", index=True, max_length=16)
    chain_tx: str | None = Field(default=None, max_length=80)
    chain_error: str | None = None
    idempotency_key: str | None = Field(default=None, index=True, max_length=200)


class RecordPublic(RecordBase):
    """A record as the API shows it: the envelope, its signature and where it stands."""

    status: str  # accepted | sequenced | anchored
    leaf_index: int | None
    accepted_at: float
    chain_status: str
    chain_tx: str | None
    chain_error: str | None


class RecordPayload(SQLModel, table=True):
    """The payload's canonical bytes, SM4-GCM encrypted under the record's own data key."""

    __tablename__ = "record_payload"
    record_id: str = Field(primary_key=True, max_length=64)
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class DataKey(SQLModel, table=True):
    """A record's SM4 data key, wrapped with the gateway's key-encryption key (``gateway/core/kek.py``).

    Deleting the row purges the payload; digests and proofs stay valid. ``kek_id`` names the KEK that
    wrapped ``key``; NULL marks a row written before the KEK, whose ``key`` is the data key itself until
    ``python -m gateway wrap-data-keys`` wraps it. (The column was added after the table's first release:
    ``Database.create_all`` adds it to an older database.)
    """

    __tablename__ = "data_key"
    record_id: str = Field(primary_key=True, max_length=64)
    key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    kek_id: str | None = Field(default=None, max_length=16)


# --- the log -----------------------------------------------------------------------------------------


class LogLeaf(SQLModel, table=True):
    __tablename__ = "log_leaf"
    index: int = Field(primary_key=True, sa_type=BigInteger)
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class LogNode(SQLModel, table=True):
    __tablename__ = "log_node"
    level: int = Field(primary_key=True)
    index: int = Field(primary_key=True, sa_type=BigInteger)
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class CheckpointBase(SQLModel):
    size: int = Field(primary_key=True, sa_type=BigInteger)
    note: str
    created_at: float
    anchor_tx: str | None = Field(default=None, max_length=80)
    anchor_block_number: int | None = None
    anchor_block_hash: str | None = Field(default=None, max_length=80)
    anchored_at: float | None = None


class CheckpointRow(CheckpointBase, table=True):
    """A signed checkpoint; anchored once its (size, root) is in ProvenanceLog."""

    __tablename__ = "checkpoint"
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class CheckpointCosignature(SQLModel, table=True):
    """A witness's cosignature line of a checkpoint (verified against the witness key before it is stored)."""

    __tablename__ = "checkpoint_cosignature"
    size: int = Field(primary_key=True, sa_type=BigInteger)
    witness: str = Field(primary_key=True, max_length=200)
    line: str
    timestamp: int = Field(sa_type=BigInteger)  # the witness's clock, POSIX seconds (in the signed line)
    received_at: float  # the gateway's clock when the cosignature arrived


class CosignaturePublic(SQLModel):
    witness: str
    timestamp: int
    received_at: float


class CheckpointPublic(SQLModel):
    size: int
    root: str  # 0x-hex
    note: str  # the log's signed note followed by the witnesses' cosignature lines
    created_at: float
    anchor: dict[str, Any] | None
    cosignatures: list[CosignaturePublic] = []


# --- domain state (what the write path checks before accepting) -----------------------------------


class WorkflowState(SQLModel, table=True):
    """One state of a domain's workflow under one key (``adapters.State``): a prescription, a request, a
    member. Written in the transaction that accepts the record that changed it; ``version`` counts the
    changes, and a write names the version it read (compare-and-set)."""

    __tablename__ = "workflow_state"
    domain: str = Field(primary_key=True, max_length=32)
    key: str = Field(primary_key=True, max_length=200)
    status: str = Field(max_length=32)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = Field(default=1, sa_type=BigInteger)


def signed_by(org: str) -> ColumnElement[bool]:
    """``Record.org == org`` as an expression no index serves: SQLite (no statistics) otherwise chose the
    ``(org, nonce)`` unique index for a look-up also bound by another indexed column (the subject, an
    Idempotency-Key) and walked the organisation's records one by one."""
    return col(Record.org).concat("") == org


def seq_after(after: int) -> ColumnElement[bool]:
    """Records after cursor ``after``, bound as BIGINT: ``seq`` is an INTEGER on PostgreSQL, where a cursor
    the routes take (up to int64) bound as one was "integer out of range", a 500."""
    return col(Record.seq) > literal(after, BigInteger)
