"""Trust material for offline verification: organisations' SM2 keys with validity windows, and log keys.

Written by ``provenance orgs export`` (from ``OrgRegistry``) and read by ``provenance verify --trust``.
A key verifies a record only if the record's timestamp lies in ``[valid_from, valid_until)`` and before
any ``revoked_at``: a key revoked today does not void records it signed last year.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

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
    origin: str | None = None


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
        return cls.from_dict(load_json(text, what="trust file"))

    @classmethod
    def from_dict(cls, data: Any) -> TrustStore:
        if not isinstance(data, Mapping) or data.get("version") != TRUST_VERSION:
            raise TrustInvalid(f"trust file must be an object with version {TRUST_VERSION}")
        try:
            orgs = {o["id"]: _org(o) for o in data.get("orgs", [])}
            logs = [
                LogKey(
                    name=lk["name"],
                    public_key=SM2PublicKey.from_pem(lk["public_key"]),
                    pem=lk["public_key"],
                    origin=lk.get("origin"),
                )
                for lk in data.get("logs", [])
            ]
        except (KeyError, TypeError) as exc:
            raise TrustInvalid(f"trust file entry is missing a field: {exc}") from exc
        except ProvenanceError as exc:
            raise TrustInvalid(f"trust file has a bad entry: {exc.message}") from exc
        chain = data.get("chain") or {}
        if not isinstance(chain, Mapping):
            raise TrustInvalid("trust file 'chain' must be an object")
        try:
            witnesses = WitnessPolicy.from_dict(data["witnesses"]) if data.get("witnesses") else None
        except FormatError as exc:
            raise TrustInvalid(f"trust file has a bad witness policy: {exc.message}") from exc
        return cls(orgs=orgs, logs=logs, chain=dict(chain), witnesses=witnesses)

    def to_dict(self) -> dict[str, Any]:
        def ts(v: datetime | None) -> str | None:
            return v.strftime("%Y-%m-%dT%H:%M:%SZ") if v else None

        return {
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
            "chain": self.chain,
        } | ({"witnesses": self.witnesses.to_dict()} if self.witnesses is not None else {})


def _opt_ts(v: Any) -> datetime | None:
    return None if v is None else parse_timestamp(v)


def _org(o: Mapping[str, Any]) -> OrgEntry:
    keys: Sequence[Mapping[str, Any]] = o.get("keys", [])
    return OrgEntry(
        org_id=o["id"],
        role=o.get("role", ""),
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
