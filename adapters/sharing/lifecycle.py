"""A dataset's life beside its sharing (数据全生命周期): collected, stored, opened, derived, settled.

Payloads only (the rules that read states and the chain: ``lifecycle_rules.py``). Every record's subject is
``dataset:<dataset>``: a settlement's and its countersignature's too (the dataset shared under its request).

``content_root`` is the SM3 Merkle tree head (RFC 9162, ``provenance/log/merkle.py``) over the dataset's
files or rows in order, so a file shown later is provably part of the collected dataset: its inclusion
proof against the root and ``leaf_count`` (:func:`file_in_dataset`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from adapters._common import STRICT, Id, Instant, parse_instant, unique_items
from adapters.sharing.errors import SettlementAmountMismatch, ShareRuleViolation
from provenance.log.merkle import leaf_hash, root_from_leaf_hashes, verify_inclusion

Text = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$")]
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
LeafCount = Annotated[int, Field(ge=1, le=1 << 40)]
Money = Annotated[int, Field(ge=0, le=10**15)]  # 分 (0.01 CNY): whole numbers, no rounding
Classification = Literal["general", "important", "core"]  # 分类分级: 一般数据, 重要数据, 核心数据


class DataCollected(BaseModel):
    """``data.collected``: ``owner`` (the signer) collected ``dataset`` from ``source``."""

    model_config = STRICT

    dataset: Id
    owner: Id
    source: Text
    schema_digest: Digest  # SM3 of the dataset's schema document
    content_root: Digest  # SM3 Merkle root over its files or rows, in order
    leaf_count: LeafCount
    collected_at: Instant


class DataStored(BaseModel):
    """``data.stored``: where the dataset is kept, for how long, and its classification level."""

    model_config = STRICT

    dataset: Id
    location: Text
    retention_days: Annotated[int, Field(ge=1, le=36500)]
    classification: Classification
    stored_at: Instant


class DataOpened(BaseModel):
    """``data.opened``: the dataset published under ``licence``, to everyone (``public``) or to ``to``."""

    model_config = STRICT

    dataset: Id
    licence: Text
    public: bool
    to: Annotated[list[Id], Field(max_length=256), unique_items("organisations")]
    opened_at: Instant


class DerivedInput(BaseModel):
    model_config = STRICT

    dataset: Id
    request_id: Id | None = None  # the sharing request whose consent covers the use (absent: open or own)


class DataDerived(BaseModel):
    """``data.derived``: ``analyst`` (the signer) made ``dataset`` from ``inputs`` for ``purpose``."""

    model_config = STRICT

    dataset: Id  # the output, a new dataset owned by the analyst
    analyst: Id
    inputs: Annotated[list[DerivedInput], Field(min_length=1, max_length=64)]
    purpose: Text  # must be the purpose of each input's consent
    method: Text
    schema_digest: Digest
    content_root: Digest
    leaf_count: LeafCount
    derived_at: Instant


class DataSettled(BaseModel):
    """``data.settled``: the accesses of ``request_id`` in [period_start, period_end), priced; signed by
    one side (provider: the dataset's owner; consumer: the requester), pending until the other
    countersigns (``data.countersigned``)."""

    model_config = STRICT

    settlement_id: Id
    request_id: Id
    dataset: Id
    provider: Id
    consumer: Id
    period_start: Instant
    period_end: Instant
    access_count: Annotated[int, Field(ge=0, le=10**9)]
    unit_price: Money
    amount: Money
    currency: Literal["CNY"]
    settled_at: Instant


class DataCountersigned(BaseModel):
    """``data.countersigned``: the other side accepts the settlement whose payload digest it names."""

    model_config = STRICT

    settlement_id: Id
    dataset: Id
    settlement_digest: Digest
    countersigned_at: Instant


MODELS: dict[str, type[BaseModel]] = {
    "data.collected": DataCollected,
    "data.stored": DataStored,
    "data.opened": DataOpened,
    "data.derived": DataDerived,
    "data.settled": DataSettled,
    "data.countersigned": DataCountersigned,
}
# Dates these records declare as past (bounded by the gateway's clock), and the period's bounds.
PAST = ("collected_at", "stored_at", "opened_at", "derived_at", "settled_at", "countersigned_at")
INSTANTS = (*PAST, "period_start", "period_end")


def check(kind: str, facts: dict[str, Any]) -> None:
    """The rules a lifecycle payload keeps by itself."""
    if kind == "data.opened" and facts["public"] == bool(facts["to"]):
        raise ShareRuleViolation(
            "an opening is either public (to: []) or to named organisations", details={"field": "to"}
        )
    if kind == "data.derived":
        names = [str(i["dataset"]).upper() for i in facts["inputs"]]  # ids compared without case
        if len(set(names)) != len(names):
            raise ShareRuleViolation("an input dataset is named twice", details={"field": "inputs"})
        if facts["dataset"] in (i["dataset"] for i in facts["inputs"]):  # in another case: DATASET_EXISTS
            raise ShareRuleViolation("a dataset cannot derive from itself", details={"field": "dataset"})
    if kind == "data.settled":
        start = parse_instant(facts["period_start"], "period_start")
        if parse_instant(facts["period_end"], "period_end") <= start:
            raise ShareRuleViolation("a period must end after it starts", details={"field": "period_end"})
        if parse_instant(facts["settled_at"], "settled_at") < parse_instant(
            facts["period_end"], "period_end"
        ):
            raise ShareRuleViolation("a period is settled after it ends", details={"field": "settled_at"})
        if facts["amount"] != facts["access_count"] * facts["unit_price"]:
            raise SettlementAmountMismatch(
                "amount must be access_count × unit_price",
                details={"amount": facts["amount"], "expected": facts["access_count"] * facts["unit_price"]},
            )


def content_root(leaves: Sequence[bytes]) -> str:
    """The ``content_root`` of a dataset whose files or rows are ``leaves``, in order: hex."""
    if not leaves:
        raise ValueError("a dataset has at least one file or row")
    return root_from_leaf_hashes([leaf_hash(leaf) for leaf in leaves]).hex()


def file_in_dataset(leaf: bytes, index: int, leaf_count: int, proof: Sequence[bytes], root: str) -> None:
    """Check that ``leaf`` is file or row ``index`` of the dataset collected with ``root`` and
    ``leaf_count``; raises :class:`provenance.errors.ProofInvalid`."""
    verify_inclusion(leaf_hash(leaf), index, leaf_count, proof, bytes.fromhex(root))
