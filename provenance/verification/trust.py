"""Trust material for offline verification: organisations' SM2 keys with validity windows
(:mod:`provenance.orgs`), log keys, the chain, the witness policy, and which roles record which kind.

Written by ``provenance orgs export`` (from ``OrgRegistry``) and read by ``provenance verify --trust``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from provenance._internal.schema import StrictSchema
from provenance.crypto import SM2PublicKey
from provenance.domains import kind_roles, kinds_document
from provenance.errors import FormatError, ProvenanceError
from provenance.log.cosignature import WitnessPolicy
from provenance.orgs import OrgEntry, OrgKey
from provenance.records import load_json
from provenance.timestamps import format_rfc3339, parse_timestamp

TRUST_VERSION = 1
_WINDOW = ("valid_from", "valid_until", "revoked_at")


class TrustInvalid(FormatError, code="TRUST_INVALID"):
    pass


@dataclass(frozen=True, slots=True)
class LogKey:
    """A key the log signs checkpoints with, and the window (``OrgRegistry``'s) in which it may: a rotated
    log key is two of these under one name, both valid during the overlap (``None``: unbounded)."""

    name: str
    public_key: SM2PublicKey
    pem: str
    origin: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    revoked_at: datetime | None = None

    @classmethod
    def of(cls, name: str, origin: str, key: OrgKey) -> LogKey:
        """The log key ``name`` of ``origin`` that is the log operator's ``OrgRegistry`` key ``key``."""
        return cls(
            name=name,
            public_key=key.public_key,
            pem=key.pem,
            origin=origin,
            valid_from=key.valid_from,
            valid_until=key.valid_until,
            revoked_at=key.revoked_at,
        )

    def signs_after(self, at: datetime) -> bool:
        """Whether the key may sign a checkpoint of a record dated ``at``: the checkpoint was signed at or
        after ``at`` (the only bound a bundle carries), so a key whose window ended (``valid_until``,
        ``revoked_at``) by then may not; one that starts later may (a newer checkpoint of an older record)."""
        return all(end is None or at < end for end in (self.valid_until, self.revoked_at))

    def to_dict(self) -> dict[str, Any]:
        window = {
            f: format_rfc3339(v)
            for f, v in (
                ("valid_from", self.valid_from),
                ("valid_until", self.valid_until),
                ("revoked_at", self.revoked_at),
            )
            if v is not None
        }
        return {"name": self.name, "origin": self.origin, "public_key": self.pem} | window


@dataclass(slots=True)
class TrustStore:
    """Pinned keys. Implements the verifier's key resolution."""

    orgs: dict[str, OrgEntry] = field(default_factory=dict)
    logs: list[LogKey] = field(default_factory=list)
    chain: dict[str, Any] = field(default_factory=dict)
    # Witnesses that must cosign a checkpoint (k of n); None: no witness policy, a log signature suffices.
    witnesses: WitnessPolicy | None = None
    # Record kind -> the roles that may record it (``kinds``); None: a trust file from before the field,
    # whose roles are then the installed domains' (``provenance.domains``), read once when first needed.
    kinds: Mapping[str, frozenset[str]] | None = None
    _installed: Mapping[str, frozenset[str]] | None = field(default=None, repr=False, compare=False)

    def may_record(self, role: str, kind: str) -> bool:
        """Whether an organisation of ``role`` (lower case) may record ``kind``."""
        table = self.kinds
        if table is None:
            if self._installed is None:
                self._installed = kind_roles()
            table = self._installed
        roles = table.get(kind)
        return roles is not None and role in roles

    # Parsed from ``chain["validators"]`` once (``seal_keys``); not an argument, so replace() re-reads it.
    _seal_keys: tuple[SM2PublicKey, ...] | None = field(default=None, init=False, repr=False, compare=False)

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
                window = {f: parse_timestamp(lk[f]) for f in _WINDOW if lk.get(f) is not None}
                logs.append(LogKey(name=lk["name"], public_key=pub, pem=pem, origin=lk["origin"], **window))
            seal_keys = _seal_keys(data.get("chain", {}))
        except TrustInvalid:
            raise
        except ProvenanceError as exc:  # a key that is not SM2, an impossible date (RecordInvalid)
            raise TrustInvalid(f"trust file has a bad entry: {exc.message}") from exc
        try:
            witnesses = WitnessPolicy.from_dict(data["witnesses"]) if data.get("witnesses") else None
        except FormatError as exc:
            raise TrustInvalid(f"trust file has a bad witness policy: {exc.message}") from exc
        kinds = data.get("kinds")
        store = cls(
            orgs=orgs,
            logs=logs,
            chain=dict(data.get("chain", {})),
            witnesses=witnesses,
            kinds=None if kinds is None else {k: frozenset(v) for k, v in kinds.items()},
        )
        store._seal_keys = seal_keys
        return store

    @property
    def chain_id(self) -> int | None:
        """The chain whose anchors count (``chain.chain_id``), if pinned."""
        value = self.chain.get("chain_id")
        return value if isinstance(value, int) else None

    @property
    def seal_keys(self) -> tuple[SM2PublicKey, ...]:
        """The chain's sealing keys (``chain.validators``): a block sealed by one of them is the chain's."""
        if self._seal_keys is None:
            self._seal_keys = _seal_keys(self.chain)
        return self._seal_keys

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
                "logs": [k.to_dict() for k in self.logs],
            }
            | ({"chain": self.chain} if self.chain else {})
            | ({"witnesses": self.witnesses.to_dict()} if self.witnesses is not None else {})
            | ({"kinds": kinds_document(self.kinds)} if self.kinds is not None else {})
        )


@cache
def _schema() -> StrictSchema:
    return StrictSchema("trust.schema.json", what="trust file", error=TrustInvalid)


def _seal_keys(chain: Mapping[str, Any]) -> tuple[SM2PublicKey, ...]:
    return tuple(SM2PublicKey.from_pem(v["public_key"]) for v in chain.get("validators", ()))
