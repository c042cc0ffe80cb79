"""Evidence bundles: everything needed to verify one record without the gateway (see docs/formats.md)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, fields
from functools import cache
from typing import Any

from provenance._internal.schema import StrictSchema, inline_refs, load_schema
from provenance.errors import SchemaInvalid
from provenance.records import SignedRecord, b64decode, load_json

MEDIA_TYPE = "application/vnd.shancheng.evidence+json;version=1"
SCHEMA = "evidence-bundle.schema.json"
_NO_PAYLOAD = object()


def bundle_schema() -> dict[str, Any]:
    """The evidence bundle JSON Schema (also published as docs/evidence-bundle.schema.json)."""
    return load_schema(SCHEMA)


def envelope_schema() -> dict[str, Any]:
    """The JSON Schema of a record envelope (the bundle schema's ``record``, self-contained), for API docs."""
    schema = bundle_schema()
    envelope: dict[str, Any] = inline_refs(schema["properties"]["record"], schema.get("$defs", {}))
    return envelope


@cache
def _validator() -> StrictSchema:
    return StrictSchema(SCHEMA, what="evidence bundle", error=SchemaInvalid)


class _OnChain:
    """A place on chain as a bundle writes it: the dataclass's fields, ``root`` as ``0x`` hex."""

    __slots__ = ()
    root: bytes

    @classmethod
    def from_dict(cls, data: Any) -> Any:  # schema-valid: exactly the fields
        return cls(**{**data, "root": bytes.fromhex(data["root"][2:])})

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]
        out["root"] = "0x" + self.root.hex()
        return out


@dataclass(frozen=True, slots=True)
class Anchor(_OnChain):
    """Where ``ProvenanceLog`` anchored the checkpoint's (size, root)."""

    chain_id: int
    contract: str
    tx_hash: str
    block_number: int
    block_hash: str
    tree_size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class BatchAnchor(_OnChain):
    """Where a domain contract anchored a batch record's Merkle root (``EnvMonitoring.anchorBatch``)."""

    chain_id: int
    contract: str
    tx_hash: str
    block_number: int
    block_hash: str
    root: bytes


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One item of a batch record (a reading of an ``env.batch``): the item, its place among the batch's
    ``count`` items and its RFC 9162 inclusion proof in the Merkle root the record's payload names."""

    index: int
    count: int
    document: Any  # a JSON object; its leaf entry is its RFC 8785 bytes
    inclusion_proof: tuple[bytes, ...]

    @classmethod
    def from_dict(cls, data: Any) -> BatchItem:
        return cls(
            index=data["index"],
            count=data["count"],
            document=data["document"],
            inclusion_proof=tuple(b64decode(p, what="item proof hash") for p in data["inclusion_proof"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "count": self.count,
            "document": self.document,
            "inclusion_proof": [base64.b64encode(h).decode("ascii") for h in self.inclusion_proof],
        }


@dataclass(frozen=True, slots=True)
class EvidenceBundle:
    """A parsed, schema-valid evidence bundle."""

    signed: SignedRecord
    digest: str
    signer_org: str
    signer_public_key: str
    leaf_index: int
    tree_size: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint: str
    log_key: tuple[str, str] | None = None  # (name, public key PEM), informative unless pinned
    anchor: Anchor | None = None
    payload: Any = _NO_PAYLOAD
    signer_key_id: str | None = None
    item: BatchItem | None = None  # the bundle is for one item of a batch record (docs/formats.md)
    batch_anchor: BatchAnchor | None = None  # where a domain contract anchored the batch's root

    @property
    def has_payload(self) -> bool:
        return self.payload is not _NO_PAYLOAD and self.payload is not None

    @classmethod
    def from_json(cls, text: str | bytes) -> EvidenceBundle:
        """Parse bundle JSON text."""
        return cls.from_dict(load_json(text, what="evidence bundle"))

    @classmethod
    def from_dict(cls, data: Any) -> EvidenceBundle:
        """Validate against the JSON Schema, then build the typed bundle."""
        _validator()(data)
        signed = SignedRecord.from_dict({"record": data["record"], "signature": data["signature"]})
        log = data["log"]
        anchor = data.get("anchor")
        log_key = log.get("log_key")
        return cls(
            signed=signed,
            digest=data["digest"],
            signer_org=data["signer"]["org"],
            signer_public_key=data["signer"]["public_key"],
            signer_key_id=data["signer"].get("key_id"),
            payload=data.get("payload", _NO_PAYLOAD),
            leaf_index=log["leaf_index"],
            tree_size=log["tree_size"],
            inclusion_proof=tuple(b64decode(p, what="inclusion proof hash") for p in log["inclusion_proof"]),
            checkpoint=log["checkpoint"],
            log_key=(log_key["name"], log_key["public_key"]) if log_key else None,
            anchor=Anchor.from_dict(anchor) if anchor else None,
            item=BatchItem.from_dict(data["item"]) if "item" in data else None,
            batch_anchor=BatchAnchor.from_dict(data["batch_anchor"]) if "batch_anchor" in data else None,
        )

    def to_dict(self) -> dict[str, Any]:
        signer: dict[str, Any] = {"org": self.signer_org, "public_key": self.signer_public_key}
        if self.signer_key_id is not None:
            signer["key_id"] = self.signer_key_id
        log: dict[str, Any] = {
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "inclusion_proof": [base64.b64encode(h).decode("ascii") for h in self.inclusion_proof],
            "checkpoint": self.checkpoint,
        }
        if self.log_key is not None:
            log["log_key"] = {"name": self.log_key[0], "public_key": self.log_key[1]}
        out: dict[str, Any] = {
            "media_type": MEDIA_TYPE,
            "record": self.signed.envelope.to_dict(),
            "digest": self.digest,
            "signature": self.signed.signature_b64(),
            "signer": signer,
            "log": log,
            "anchor": self.anchor.to_dict() if self.anchor else None,
        }
        if self.payload is not _NO_PAYLOAD:
            out["payload"] = self.payload
        if self.item is not None:
            out["item"] = self.item.to_dict()
        if self.batch_anchor is not None:
            out["batch_anchor"] = self.batch_anchor.to_dict()
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)
