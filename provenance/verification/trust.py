"""Trust material for offline verification: organisations' SM2 keys with validity windows
(:mod:`provenance.orgs`), log keys, the chain and the witness policy.

Written by ``provenance orgs export`` (from ``OrgRegistry``) and read by ``provenance verify --trust``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from provenance._internal.schema import StrictSchema
from provenance.crypto import SM2PublicKey
from provenance.errors import FormatError, ProvenanceError
from provenance.log.cosignature import WitnessPolicy
from provenance.orgs import OrgEntry
from provenance.records import load_json

TRUST_VERSION = 1


class TrustInvalid(FormatError):
    code = "TRUST_INVALID"


@dataclass(frozen=True, slots=True)
class LogKey:
    name: str
    public_key: SM2PublicKey
    pem: str
    origin: str


@dataclass(slots=True)
class TrustStore:
    """Pinned keys. Implements the verifier's key resolution."""

    orgs: dict[str, OrgEntry] = field(default_factory=dict)
    logs: list[LogKey] = field(default_factory=list)
    chain: dict[str, Any] = field(default_factory=dict)
    # Witnesses that must cosign a checkpoint (k of n); None: no witness policy, a log signature suffices.
    witnesses: WitnessPolicy | None = None

    def org_keys_at(self, org: str, at: datetime) -> list[SM2PublicKey]:
        """Keys of ``org`` valid at instant ``at`` (empty if the org is unknown)."""
        entry = self.orgs.get(org)
        if entry is None:
            return []
        return [k.public_key for k in entry.keys_at(at)]

    def log_key(self, name: str) -> LogKey | None:
        return next((k for k in self.logs if k.name == name), None)

    @classmethod
    def load(cls, path: str | Path) -> TrustStore:
        """Read a trust file written by ``provenance orgs export``."""
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise TrustInvalid(f"cannot read trust file {path}: {exc.strerror}") from exc
        try:
            data = load_json(text, what="trust file")
        except FormatError as exc:
            raise TrustInvalid(exc.message) from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> TrustStore:
        """Check a parsed trust file against ``schemas/trust.schema.json`` and read its keys."""
        _schema()(data)
        try:
            orgs: dict[str, OrgEntry] = {}
            for o in data["orgs"]:
                if o["id"] in orgs:
                    raise TrustInvalid(f"trust file lists organisation '{o['id']}' twice")
                orgs[o["id"]] = OrgEntry.from_dict(o)
            logs: list[LogKey] = []
            for lk in data["logs"]:
                pem, pub = lk["public_key"], SM2PublicKey.from_pem(lk["public_key"])
                if any(k.name == lk["name"] and k.public_key == pub for k in logs):
                    raise TrustInvalid(f"trust file lists log key '{lk['name']}' twice")
                logs.append(LogKey(name=lk["name"], public_key=pub, pem=pem, origin=lk["origin"]))
        except TrustInvalid:
            raise
        except ProvenanceError as exc:  # a key that is not SM2, an impossible date (RecordInvalid)
            raise TrustInvalid(f"trust file has a bad entry: {exc.message}") from exc
        try:
            witnesses = WitnessPolicy.from_dict(data["witnesses"]) if data.get("witnesses") else None
        except FormatError as exc:
            raise TrustInvalid(f"trust file has a bad witness policy: {exc.message}") from exc
        return cls(orgs=orgs, logs=logs, chain=dict(data.get("chain", {})), witnesses=witnesses)

    @property
    def chain_id(self) -> int | None:
        """The chain whose anchors count (``chain.chain_id``), if pinned."""
        value = self.chain.get("chain_id")
        return value if isinstance(value, int) else None

    @property
    def provenance_log(self) -> str | None:
        """The ``ProvenanceLog`` address whose anchors count (``chain.provenance_log``), if pinned."""
        value = self.chain.get("provenance_log")
        return value if isinstance(value, str) else None

    def to_dict(self) -> dict[str, Any]:
        return (
            {
                "version": TRUST_VERSION,
                "orgs": [o.to_dict() for o in self.orgs.values()],
                "logs": [{"name": k.name, "origin": k.origin, "public_key": k.pem} for k in self.logs],
            }
            | ({"chain": self.chain} if self.chain else {})
            | ({"witnesses": self.witnesses.to_dict()} if self.witnesses is not None else {})
        )


@cache
def _schema() -> StrictSchema:
    return StrictSchema("trust.schema.json", what="trust file", error=TrustInvalid)
