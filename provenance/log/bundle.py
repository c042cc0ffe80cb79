"""Evidence bundles: everything needed to verify one record without the gateway (see docs/formats.md)."""

from __future__ import annotations

import base64
import json
import re
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


class BundleReader:
    """Build the bundles of one export fast: the schema's checks by hand, each repeated value checked once.

    The bundles of an export repeat most of their text (the signer's key, the checkpoint, the log key and
    anchor, the upper hashes of the inclusion proofs); the schema checks every value of every bundle. This
    reader checks what :meth:`EvidenceBundle.from_dict` checks, as strictly or more (patterns taken from
    the schema but matched whole, integers exact ``int``), remembers the strings and objects that passed, and
    builds the same bundle. It answers ``None`` whenever it is unsure (a batch item, an unexpected shape,
    anything the schema could refuse): then ``from_dict`` reads the bundle and says why. Bounded: each memory
    starts afresh past ``limit`` entries. Not thread-safe (one per worker process).
    """

    _TOP = frozenset(("media_type", "record", "digest", "signature", "signer", "log", "anchor", "payload"))
    _LOG = frozenset(("leaf_index", "tree_size", "inclusion_proof", "checkpoint", "log_key"))
    _LOG_REQUIRED = frozenset(("leaf_index", "tree_size", "inclusion_proof", "checkpoint"))
    _SIGNER = frozenset(("org", "public_key", "key_id"))
    _SAFE = 9007199254740991  # the schema's integer maximum

    def __init__(self, limit: int = 1 << 16) -> None:
        schema = bundle_schema()
        defs, anchor = schema["$defs"], schema["properties"]["anchor"]["oneOf"][1]
        self._required = frozenset(schema["required"])
        self._digest = re.compile(defs["digest"]["pattern"]).fullmatch
        self._pem = re.compile(defs["pem"]["pattern"]).fullmatch
        self._hex32 = re.compile(defs["hex32"]["pattern"]).fullmatch
        self._contract = re.compile(anchor["properties"]["contract"]["pattern"]).fullmatch
        self._limit = limit
        self._hashes: dict[str, bytes] = {}  # proof hash base64 -> bytes
        self._pems: set[str] = set()
        self._anchors: dict[tuple[tuple[str, Any], ...], Anchor] = {}

    def read(self, data: Any) -> EvidenceBundle | None:
        """The bundle of a parsed line, or ``None`` (then ``EvidenceBundle.from_dict`` decides)."""
        try:
            return self._read(data)
        except Exception:  # anything unexpected: the reference reader names it
            return None

    def _read(self, data: Any) -> EvidenceBundle | None:
        if type(data) is not dict:
            return None
        keys = data.keys()
        if not (keys >= self._required and keys <= self._TOP) or data["media_type"] != MEDIA_TYPE:
            return None
        digest, signer, log = data["digest"], data["signer"], data["log"]
        if type(digest) is not str or not self._digest(digest):
            return None
        if type(signer) is not dict or not ({"org", "public_key"} <= signer.keys() <= self._SIGNER):
            return None
        org, pem, key_id = signer["org"], signer["public_key"], signer.get("key_id")
        if type(org) is not str or not self._known_pem(pem) or not (key_id is None or type(key_id) is str):
            return None
        if "key_id" in signer and key_id is None:
            return None
        if type(log) is not dict or not (self._LOG_REQUIRED <= log.keys() <= self._LOG):
            return None
        index, size, proof, note = (
            log["leaf_index"],
            log["tree_size"],
            log["inclusion_proof"],
            log["checkpoint"],
        )
        if type(index) is not int or not 0 <= index <= self._SAFE or type(size) is not int:
            return None
        if not 1 <= size <= self._SAFE or type(proof) is not list or len(proof) > 64 or type(note) is not str:
            return None
        hashes = self._proof(proof)  # raises _Unsure or FormatError (read() says None)
        log_key = log.get("log_key")
        if log_key is not None:
            if type(log_key) is not dict or log_key.keys() != {"name", "public_key"}:
                return None
            if type(log_key["name"]) is not str or not self._known_pem(log_key["public_key"]):
                return None
        elif "log_key" in log:
            return None
        anchor = self._anchor(data.get("anchor"))
        # The envelope and the signature: exactly as from_dict reads them (the envelope validates itself).
        signed = SignedRecord.from_dict({"record": data["record"], "signature": data["signature"]})
        return EvidenceBundle(
            signed=signed,
            digest=digest,
            signer_org=org,
            signer_public_key=pem,
            signer_key_id=key_id,
            payload=data.get("payload", _NO_PAYLOAD),
            leaf_index=index,
            tree_size=size,
            inclusion_proof=hashes,
            checkpoint=note,
            log_key=(log_key["name"], log_key["public_key"]) if log_key else None,
            anchor=anchor,
        )

    def _known_pem(self, pem: Any) -> bool:
        if type(pem) is not str:
            return False
        if pem in self._pems:
            return True
        if not self._pem(pem):
            return False
        if len(self._pems) >= self._limit:
            self._pems.clear()
        self._pems.add(pem)
        return True

    def _proof(self, proof: list[Any]) -> tuple[bytes, ...]:
        known, out = self._hashes, []
        for text in proof:
            if type(text) is not str:
                raise _Unsure
            raw = known.get(text)
            if raw is None:
                raw = b64decode(text, what="inclusion proof hash")  # canonical base64, or FormatError
                if len(known) >= self._limit:
                    known.clear()
                known[text] = raw
            out.append(raw)
        return tuple(out)

    def _anchor(self, anchor: Any) -> Anchor | None:
        """The anchor (``None`` for none); raises ``_Unsure`` when it is not one the schema takes."""
        if anchor is None:
            return None
        if type(anchor) is not dict:
            raise _Unsure
        # Integers by type first: 1 == 1.0 == True as dictionary keys, not as JSON.
        for name in ("chain_id", "block_number", "tree_size"):
            if type(anchor.get(name)) is not int:
                raise _Unsure
        key = tuple(anchor.items())
        got = self._anchors.get(key)
        if got is not None:
            return got
        if anchor.keys() != _ANCHOR_FIELDS:
            raise _Unsure
        strings = (anchor["contract"], anchor["tx_hash"], anchor["block_hash"], anchor["root"])
        if any(type(s) is not str for s in strings) or not self._contract(strings[0]):
            raise _Unsure
        if not all(self._hex32(s) for s in strings[1:]):
            raise _Unsure
        if not (1 <= anchor["chain_id"] <= self._SAFE and 1 <= anchor["tree_size"] <= self._SAFE):
            raise _Unsure
        if not 0 <= anchor["block_number"] <= self._SAFE:
            raise _Unsure
        got = Anchor(**{**anchor, "root": bytes.fromhex(anchor["root"][2:])})
        if len(self._anchors) >= self._limit:
            self._anchors.clear()
        self._anchors[key] = got
        return got


_ANCHOR_FIELDS = frozenset(f.name for f in fields(Anchor))


class _Unsure(Exception):
    """Raised inside ``BundleReader``: a value it does not take; ``EvidenceBundle.from_dict`` will say why."""
