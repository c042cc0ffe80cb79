"""The chain as the domains' rules read it (``adapters.ChainView``), over the gateway's :class:`Ledger`.

Two layers: :class:`ChainReads` reads the chain (``lookup`` results cached until the contracts the domains
watch emit an event, in one :class:`ReadCache` with the organisations), and :class:`Recorded` remembers what
one record's rules read before the write, so that the same rules run again inside the write transaction
without a round trip to the node under the database's write lock (a read they did not make before goes to
the chain).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlmodel import select

from gateway.core.db import Database
from gateway.models import Record
from gateway.services.ledger import Ledger
from provenance.errors import LedgerError

_V = TypeVar("_V")


class ReadCache:
    """Read-through cache of chain reads, each kept ``ttl`` s or until :meth:`invalidate` (an event of
    OrgRegistry or of a watched contract arrived). While the chain is unreachable the last known value is
    the best there is (a change made during the outage cannot be seen either way); with none, the read
    fails."""

    def __init__(self, *, ttl: float = 300.0) -> None:
        self._ttl = ttl
        self._entries: dict[Hashable, tuple[Any, float]] = {}
        self._lock = threading.Lock()
        self.generation = 0

    def get(self, key: Hashable, read: Callable[[], _V]) -> _V:
        """The cached value of ``key``, or ``read()`` (cached unless an invalidation raced it)."""
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            generation = self.generation
        if hit is not None and hit[1] > now:
            value: _V = hit[0]
            return value
        try:
            value = read()
        except LedgerError:
            if hit is not None:
                stale: _V = hit[0]
                return stale
            raise
        with self._lock:
            # An invalidation that raced this read wins: do not cache what may already be stale.
            if generation == self.generation:
                self._entries[key] = (value, now + self._ttl)
        return value

    def invalidate(self) -> None:
        """Expire every entry; each stays only as the fallback while the chain is unreachable."""
        with self._lock:
            self._entries = {k: (v, 0.0) for k, (v, _) in self._entries.items()}
            self.generation += 1


class ChainReads:
    """``adapters.ChainView`` on the gateway's ledger (and, for what the chain did with a record's call,
    the ``record`` table the chain caller keeps)."""

    def __init__(self, ledger: Ledger, cache: ReadCache, db: Database) -> None:
        self._ledger = ledger
        self._cache = cache
        self._db = db

    def clock(self) -> datetime:
        return self._ledger.contract_clock()

    def call(self, contract: str, function: str, *args: Any) -> Any:
        return self._ledger.call(contract, function, *args)

    def lookup(self, contract: str, function: str, *args: Any) -> Any:
        key = ("lookup", contract, function, *args)
        return self._cache.get(key, lambda: self._ledger.call(contract, function, *args))

    def events(self, contract: str, event: str, **filters: Any) -> list[Mapping[str, Any]]:
        return self._ledger.events(contract, event, **filters)

    def refused(self, record_id: str) -> bool:
        with self._db.session() as s:
            status = s.exec(select(Record.chain_status).where(Record.id == record_id)).first()
        return status == "rejected"


class Recorded:
    """A chain view that remembers every answer of the one it wraps (one record's, before and inside its
    write transaction). A read that failed is not remembered: asked again, it is read again."""

    def __init__(self, view: ChainReads) -> None:
        self._view = view
        self._seen: dict[Hashable, Any] = {}

    def _once(self, key: Hashable, read: Callable[[], _V]) -> _V:
        if key in self._seen:
            found: _V = self._seen[key]
            return found
        value = self._seen[key] = read()
        return value

    def clock(self) -> datetime:
        return self._once(("clock",), self._view.clock)

    def call(self, contract: str, function: str, *args: Any) -> Any:
        return self._once(
            ("call", contract, function, *args), lambda: self._view.call(contract, function, *args)
        )

    def lookup(self, contract: str, function: str, *args: Any) -> Any:
        key = ("lookup", contract, function, *args)
        return self._once(key, lambda: self._view.lookup(contract, function, *args))

    def events(self, contract: str, event: str, **filters: Any) -> list[Mapping[str, Any]]:
        key = ("events", contract, event, *sorted(filters.items()))
        return self._once(key, lambda: self._view.events(contract, event, **filters))

    def refused(self, record_id: str) -> bool:
        return self._once(("refused", record_id), lambda: self._view.refused(record_id))
