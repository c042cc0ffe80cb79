"""Organisations and their SM2 keys from OrgRegistry, and the monitoring points EnvMonitoring binds to their
operators, cached; events of either contract invalidate the cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from gateway.errors import KeyNotValid, KeyRevoked, OrgUnknown
from gateway.services.ledger import ChainStation, Ledger
from provenance.crypto import SM2PublicKey
from provenance.errors import LedgerError, SignatureInvalid
from provenance.orgs import OrgEntry, OrgKey
from provenance.records import Envelope
from provenance.timestamps import format_rfc3339, parse_timestamp

_V = TypeVar("_V")


class OrgDirectory:
    """Cached ``OrgRegistry`` reads plus the signature check against the keys valid at a record's time."""

    def __init__(self, ledger: Ledger, *, ttl: float = 300.0) -> None:
        self._ledger = ledger
        self._ttl = ttl
        self._orgs: dict[str, tuple[OrgEntry | None, float]] = {}
        self._ids: dict[str, tuple[list[str], float]] = {}  # one entry: every org id
        self._stations: dict[str, tuple[ChainStation | None, float]] = {}
        self._lock = threading.Lock()
        self.generation = 0

    def get(self, org: str) -> OrgEntry | None:
        """The organisation (None if unregistered); read through the cache."""
        return self._read_through(self._orgs, org, lambda: self._ledger.org(org))

    def station(self, mn: str) -> ChainStation | None:
        """The monitoring point ``mn`` and its operator (None if EnvMonitoring has none); read through the
        cache like :meth:`get`."""
        return self._read_through(self._stations, mn, lambda: self._ledger.station(mn))

    def org_ids(self) -> list[str]:
        """Every registered organisation id, read through the cache like :meth:`get`."""
        ids: list[str] = self._read_through(self._ids, "all", self._ledger.org_ids)
        return list(ids)

    def _read_through(self, cache: dict[str, tuple[_V, float]], key: str, read: Callable[[], _V]) -> _V:
        now = time.monotonic()
        with self._lock:
            hit = cache.get(key)
            generation = self.generation
        if hit is not None and hit[1] > now:
            return hit[0]
        try:
            value = read()
        except LedgerError:
            # Chain unreachable: the last known state is the best there is (a revocation made during the
            # outage cannot be seen either way); with nothing known, the request fails.
            if hit is not None:
                return hit[0]
            raise
        with self._lock:
            # An invalidation that raced this read wins: do not cache what may already be stale.
            if generation == self.generation:
                cache[key] = (value, now + self._ttl)
        return value

    def require(self, org: str) -> OrgEntry:
        """The organisation, active; ORG_UNKNOWN otherwise."""
        entry = self.get(org)
        if entry is None:
            raise OrgUnknown(f"organisation {org!r} is not registered in OrgRegistry", details={"org": org})
        if not entry.active:
            raise OrgUnknown(f"organisation {org!r} is suspended", details={"org": org, "active": False})
        return entry

    def invalidate(self) -> None:
        """Expire every cached organisation and station (an event arrived); kept only as a fallback."""
        with self._lock:
            _expire(self._orgs)
            _expire(self._ids)
            _expire(self._stations)
            self.generation += 1

    def verify(self, org: OrgEntry, envelope: Envelope, signature: bytes) -> tuple[OrgKey, SM2PublicKey]:
        """The key that verifies the record and was valid at its time; raises the specific error otherwise."""
        at = parse_timestamp(envelope.timestamp)
        message = envelope.canonical()
        valid = org.keys_at(at)
        for k in valid:
            if _verifies(k.public_key, message, signature):
                return k, k.public_key
        for k in org.keys:
            if k in valid:
                continue
            if _verifies(k.public_key, message, signature):
                details = {"org": org.org_id, "key_index": k.index, "timestamp": envelope.timestamp}
                if k.revoked_at and at >= k.revoked_at:
                    details["revoked_at"] = format_rfc3339(k.revoked_at)
                    raise KeyRevoked(
                        f"the signing key of {org.org_id!r} was revoked before the record's time",
                        details=details,
                    )
                raise KeyNotValid(
                    f"the signing key of {org.org_id!r} was not valid at the record's time", details=details
                )
        raise SignatureInvalid(
            f"the SM2 signature does not verify with any key of {org.org_id!r}", details={"org": org.org_id}
        )


def _expire(cache: dict[str, tuple[_V, float]]) -> None:
    for key, (value, _) in cache.items():
        cache[key] = (value, 0.0)


def _verifies(pub: SM2PublicKey, message: bytes, signature: bytes) -> bool:
    try:
        pub.verify(message, signature)
    except SignatureInvalid:
        return False
    return True
