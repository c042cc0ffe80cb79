"""Trust material for offline verification: organisations' SM2 keys with validity windows, and log keys.

Written by ``provenance orgs export`` (from ``OrgRegistry``) and read by ``provenance verify --trust``.
A key verifies a record only if the record's timestamp lies in ``[valid_from, valid_until)`` and before
any ``revoked_at``: a key revoked today does not void records it signed last year.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from provenance._internal.schema import StrictSchema
from provenance.cosignature import WitnessPolicy
from provenance.crypto import SM2PublicKey
from provenance.errors import FormatError, ProvenanceError
from provenance.records import load_json, parse_timestamp

TRUST_VERSION = 1


class TrustInvalid(FormatError):
    code = "TRUST_INVALID"


@dataclass(frozen=True, slots=True)
class OrgKey:
    public_key: SM2PublicKey
    pem: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    revoked_at: datetime | None = None

    def valid_at(self, at: datetime) -> bool:
        if self.valid_from is not None and at < self.valid_from:
            return False
        if self.valid_until is not None and at >= self.valid_until:
            return False
        return not (self.revoked_at is not None and at >= self.revoked_at)


@dataclass(frozen=True, slots=True)
class OrgEntry:
    org_id: str
    role: str
    name: str = ""
    keys: tuple[OrgKey, ...] = ()


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
    # Parsed from ``chain["validators"]`` once (``seal_keys``); not an argument, so replace() re-reads it.
    _seal_keys: tuple[SM2PublicKey, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def org_keys_at(self, org: str, at: datetime) -> list[SM2PublicKey]:
        """Keys of ``org`` valid at instant ``at`` (empty if the org is unknown)."""
        entry = self.orgs.get(org)
        if entry is None:
            return []
        return [k.public_key for k in entry.keys if k.valid_at(at)]

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
                orgs[o["id"]] = _org(o)
            logs: list[LogKey] = []
            for lk in data["logs"]:
                pem, pub = lk["public_key"], SM2PublicKey.from_pem(lk["public_key"])
                if any(k.name == lk["name"] and k.public_key == pub for k in logs):
                    raise TrustInvalid(f"trust file lists log key '{lk['name']}' twice")
                logs.append(LogKey(name=lk["name"], public_key=pub, pem=pem, origin=lk["origin"]))
            seal_keys = _seal_keys(data.get("chain", {}))
        except TrustInvalid:
            raise
        except ProvenanceError as exc:  # a key that is not SM2, an impossible date (RecordInvalid)
            raise TrustInvalid(f"trust file has a bad entry: {exc.message}") from exc
        try:
            witnesses = WitnessPolicy.from_dict(data["witnesses"]) if data.get("witnesses") else None
        except FormatError as exc:
            raise TrustInvalid(f"trust file has a bad witness policy: {exc.message}") from exc
        store = cls(orgs=orgs, logs=logs, chain=dict(data.get("chain", {})), witnesses=witnesses)
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
        def ts(v: datetime | None) -> str | None:
            # Not strftime: glibc writes year 99 as "99", and the microseconds would be lost.
            return v.astimezone(UTC).isoformat().replace("+00:00", "Z") if v else None

        return (
            {
                "version": TRUST_VERSION,
                "orgs": [
                    {
                        "id": o.org_id,
                        "name": o.name,
                        "role": o.role,
                        "keys": [
                            {
                                "public_key": k.pem,
                                "valid_from": ts(k.valid_from),
                                "valid_until": ts(k.valid_until),
                                "revoked_at": ts(k.revoked_at),
                            }
                            for k in o.keys
                        ],
                    }
                    for o in self.orgs.values()
                ],
                "logs": [{"name": k.name, "origin": k.origin, "public_key": k.pem} for k in self.logs],
            }
            | ({"chain": self.chain} if self.chain else {})
            | ({"witnesses": self.witnesses.to_dict()} if self.witnesses is not None else {})
        )


@cache
def _schema() -> StrictSchema:
    return StrictSchema("trust.schema.json", what="trust file", error=TrustInvalid)


def _seal_keys(chain: Mapping[str, Any]) -> tuple[SM2PublicKey, ...]:
    return tuple(SM2PublicKey.from_pem(v["public_key"]) for v in chain.get("validators", ()))


def _opt_ts(v: Any) -> datetime | None:
    return None if v is None else parse_timestamp(v)


def _org(o: Mapping[str, Any]) -> OrgEntry:
    keys: Sequence[Mapping[str, Any]] = o["keys"]
    return OrgEntry(
        org_id=o["id"],
        role=o["role"],
        name=o.get("name", ""),
        keys=tuple(
            OrgKey(
                public_key=SM2PublicKey.from_pem(k["public_key"]),
                pem=k["public_key"],
                valid_from=_opt_ts(k.get("valid_from")),
                valid_until=_opt_ts(k.get("valid_until")),
                revoked_at=_opt_ts(k.get("revoked_at")),
            )
            for k in keys
        ),
    )
