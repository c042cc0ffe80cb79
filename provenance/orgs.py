"""Organisations and their SM2 keys: the one model of the trust file, ``OrgRegistry`` reads (SDK and gateway)
and the devnet manifest, and the one rule for when a key may sign.

A key verifies a record only if the record's timestamp lies in ``[valid_from, valid_until)`` and before any
``revoked_at``: a key revoked today does not void records it signed last year.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from provenance.crypto import SM2PublicKey
from provenance.timestamps import format_rfc3339, parse_timestamp


@dataclass(frozen=True, slots=True)
class OrgKey:
    """One SM2 key of an organisation and the window it may sign in (``None``: unbounded)."""

    public_key: SM2PublicKey
    pem: str = ""  # the SubjectPublicKeyInfo PEM as read (a trust file's text); derived when not given
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    revoked_at: datetime | None = None
    # Its position in OrgRegistry's key list, when read from the chain (where it is, not what it is).
    index: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.pem:
            object.__setattr__(self, "pem", self.public_key.to_pem().decode("ascii"))

    def valid_at(self, at: datetime) -> bool:
        """Whether the key may sign a record dated ``at`` (the one validity rule)."""
        if self.valid_from is not None and at < self.valid_from:
            return False
        if self.valid_until is not None and at >= self.valid_until:
            return False
        return not (self.revoked_at is not None and at >= self.revoked_at)

    def to_dict(self) -> dict[str, Any]:
        """The trust file's form of the key."""
        return {
            "public_key": self.pem,
            "valid_from": _ts(self.valid_from),
            "valid_until": _ts(self.valid_until),
            "revoked_at": _ts(self.revoked_at),
        }

    @classmethod
    def from_dict(cls, k: Mapping[str, Any]) -> OrgKey:
        """A key of a trust file (checked against its schema first)."""
        return cls(
            public_key=SM2PublicKey.from_pem(k["public_key"]),
            pem=k["public_key"],
            valid_from=_opt_ts(k.get("valid_from")),
            valid_until=_opt_ts(k.get("valid_until")),
            revoked_at=_opt_ts(k.get("revoked_at")),
        )


@dataclass(frozen=True, slots=True)
class OrgEntry:
    """An organisation: id, role (lower case, as ``Role`` names it: ``hospital``), name, keys, status."""

    org_id: str
    role: str
    name: str = ""
    keys: tuple[OrgKey, ...] = ()
    active: bool = True

    def keys_at(self, at: datetime) -> list[OrgKey]:
        """The keys that may sign a record dated ``at``."""
        return [k for k in self.keys if k.valid_at(at)]

    def to_dict(self) -> dict[str, Any]:
        """The trust file's form of the organisation."""
        return {
            "id": self.org_id,
            "name": self.name,
            "role": self.role,
            "keys": [k.to_dict() for k in self.keys],
        }

    @classmethod
    def from_dict(cls, o: Mapping[str, Any]) -> OrgEntry:
        """An organisation of a trust file (checked against its schema first)."""
        keys: Sequence[Mapping[str, Any]] = o["keys"]
        return cls(
            org_id=o["id"],
            role=o["role"],
            name=o.get("name", ""),
            keys=tuple(OrgKey.from_dict(k) for k in keys),
            active=o.get("active", True),
        )


def _ts(v: datetime | None) -> str | None:
    return format_rfc3339(v) if v else None


def _opt_ts(v: Any) -> datetime | None:
    return None if v is None else parse_timestamp(v)
