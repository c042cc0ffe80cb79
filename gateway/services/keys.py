"""Organisations and their SM2 keys from OrgRegistry, and the monitoring points EnvMonitoring binds to their
operators, cached; events of either contract invalidate the cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from gateway.errors import KeyNotValid, KeyRevoked, OrgUnknown
from gateway.services.ledger import ChainKey, ChainOrg, ChainStation, Ledger, chain_time
from provenance.crypto import SM2PublicKey
from provenance.errors import KeyInvalid, LedgerError, SignatureInvalid
from provenance.records import Envelope, parse_timestamp

_V = TypeVar("_V")


class OrgDirectory:
    """Cached ``OrgRegistry`` reads plus the signature check against the keys valid at a record's time."""

    def __init__(self, ledger: Ledger, *, ttl: float = 300.0) -> None:
        self._ledger = ledger
        self._ttl = ttl
        self._orgs: dict[str, tuple[ChainOrg | None, float]] = {}
        self._pubkeys: dict[bytes, SM2PublicKey] = {}
        self._ids: dict[str, tuple[list[str], float]] = {}  # one entry: every org id
        self._stations: dict[str, tuple[ChainStation | None, float]] = {}
        self._lock = threading.Lock()
        self.generation = 0

    def get(self, org: str) -> ChainOrg | None:
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

    def require(self, org: str) -> ChainOrg:
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

    def public_key(self, raw: bytes) -> SM2PublicKey | None:
        """The key of a registry entry's 64 raw bytes (None if not a valid SM2 point); parsed once."""
        key = self._pubkeys.get(raw)
        if key is None:
            try:
                key = SM2PublicKey.from_raw(raw)
            except KeyInvalid:
                return None
            self._pubkeys[raw] = key
        return key

    def verify(self, org: ChainOrg, envelope: Envelope, signature: bytes) -> tuple[ChainKey, SM2PublicKey]:
        """The key that verifies the record and was valid at its time; raises the specific error otherwise."""
        at = parse_timestamp(envelope.timestamp).timestamp()
        message = envelope.canonical()
        valid = [k for k in org.keys if _valid_at(k, at)]
        for k in valid:
            pub = self.public_key(k.raw)
            if pub is not None and _verifies(pub, message, signature):
                return k, pub
        for k in org.keys:
            if k in valid:
                continue
            pub = self.public_key(k.raw)
            if pub is not None and _verifies(pub, message, signature):
                details = {"org": org.org, "key_index": k.index, "timestamp": envelope.timestamp}
                if k.revoked_at and at >= k.revoked_at:
                    details["revoked_at"] = chain_time(k.revoked_at)
                    raise KeyRevoked(
                        f"the signing key of {org.org!r} was revoked before the record's time",
                        details=details,
                    )
                raise KeyNotValid(
                    f"the signing key of {org.org!r} was not valid at the record's time", details=details
                )
        raise SignatureInvalid(
            f"the SM2 signature does not verify with any key of {org.org!r}", details={"org": org.org}
        )


def _expire(cache: dict[str, tuple[_V, float]]) -> None:
    for key, (value, _) in cache.items():
        cache[key] = (value, 0.0)


def _valid_at(k: ChainKey, at: float) -> bool:
    return (
        at >= k.valid_from
        and (k.valid_until == 0 or at < k.valid_until)
        and (k.revoked_at == 0 or at < k.revoked_at)
    )


def _verifies(pub: SM2PublicKey, message: bytes, signature: bytes) -> bool:
    try:
        pub.verify(message, signature)
    except SignatureInvalid:
        return False
    return True
