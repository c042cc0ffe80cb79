"""The domains' workflow states (table ``workflow_state``), as the write path reads and changes them.

Before the write transaction, rules read the states as committed (:func:`read_states`). Inside it,
:class:`TxStates` reads them as this transaction sees them, its own earlier writes included (a group commit
or a bulk request carries several records of one key), and writes with compare-and-set on ``version``. On
PostgreSQL, which runs writers side by side, every key the transaction's records touch is locked first
(advisory transaction locks, one per key, in one order: no deadlock); SQLite runs one writer at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, text, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col

from adapters import State
from gateway.core.db import execute_many
from gateway.errors import StateConflict
from gateway.models import WorkflowState
from provenance.crypto import sm3

Key = tuple[str, str]  # (domain, key)


@dataclass(frozen=True, slots=True)
class Stored:
    """A state as read, with the version a write must name (0: none stored yet)."""

    state: State | None
    version: int = 0


_NONE = Stored(None)
_READ = core_select(
    col(WorkflowState.key), col(WorkflowState.status), col(WorkflowState.data), col(WorkflowState.version)
).where(
    col(WorkflowState.domain) == bindparam("domain"),
    col(WorkflowState.key).in_(bindparam("keys", expanding=True)),
)
_INSERT = insert(WorkflowState)
_UPDATE = (
    update(WorkflowState)
    .where(
        col(WorkflowState.domain) == bindparam("d"),
        col(WorkflowState.key) == bindparam("k"),
        col(WorkflowState.version) == bindparam("v"),
    )
    .values(status=bindparam("status"), data=bindparam("data"), version=bindparam("v") + 1)
)
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")


def read_states(s: Session, domain: str, keys: Iterable[str]) -> dict[str, Stored]:
    """The states of ``keys`` in ``domain`` as committed (absent keys: :data:`_NONE`)."""
    wanted = list(dict.fromkeys(keys))
    found = {key: _NONE for key in wanted}
    if wanted:
        for key, status, data, version in s.connection().execute(_READ, {"domain": domain, "keys": wanted}):
            found[key] = Stored(State(status, data), int(version))
    return found


def _by_domain(keys: Iterable[Key]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for domain, key in keys:
        out.setdefault(domain, []).append(key)
    return out


class CommittedStates:
    """States as committed, read for many records at once (a bulk request's: one query per domain, not one
    per record) within one read transaction; :meth:`clear` after a write makes the next reads fresh."""

    def __init__(self) -> None:
        self._known: dict[Key, Stored] = {}

    def prefetch(self, s: Session, keys: Iterable[Key]) -> None:
        """Read the states of ``keys`` not read yet."""
        for domain, wanted in _by_domain(k for k in keys if k not in self._known).items():
            for key, stored in read_states(s, domain, wanted).items():
                self._known[(domain, key)] = stored

    def read(self, s: Session, domain: str, keys: Iterable[str]) -> dict[str, Stored]:
        """The states of ``keys`` as committed (those not prefetched read now)."""
        wanted = list(keys)
        self.prefetch(s, ((domain, k) for k in wanted))
        return {k: self._known[(domain, k)] for k in wanted}

    def clear(self) -> None:
        self._known.clear()


def lock_id(domain: str, key: str) -> int:
    """The PostgreSQL advisory lock id (signed 64 bits) of one state."""
    return int.from_bytes(sm3(f"{domain}\0{key}".encode())[:8], "big", signed=True)


class TxStates:
    """The states as one write transaction sees and changes them."""

    def __init__(self, s: Session, *, postgres: bool) -> None:
        self._s = s
        self._postgres = postgres
        self._seen: dict[Key, Stored] = {}
        self._inserts: list[dict[str, Any]] = []
        self._updates: list[dict[str, Any]] = []

    def lock(self, keys: Iterable[Key]) -> None:
        """Lock ``keys`` until the commit (PostgreSQL), in one order; then reads see the last commit."""
        if not self._postgres:
            return
        # In one executemany, in order (a statement each cost a round trip per key: 1,000 for a bulk
        # request of readings, more than the rest of its transaction).
        ids = sorted({lock_id(d, key) for d, key in keys})
        execute_many(self._s.connection(), _LOCK, [{"k": k} for k in ids])

    def preload(self, keys: Iterable[Key]) -> None:
        """Read the states of ``keys`` (after :meth:`lock`): one query per domain for many records."""
        for domain, wanted in _by_domain(keys).items():
            self.read(domain, wanted)

    def read(self, domain: str, keys: Iterable[str]) -> dict[str, Stored]:
        """The states of ``keys`` as this transaction sees them."""
        wanted = list(keys)
        missing = list(dict.fromkeys(k for k in wanted if (domain, k) not in self._seen))
        for key, stored in read_states(self._s, domain, missing).items():
            self._seen[(domain, key)] = stored
        return {k: self._seen[(domain, k)] for k in wanted}

    def write(self, domain: str, changes: Mapping[str, State]) -> None:
        """The new states (each key read first by :meth:`read`), stored by :meth:`flush`."""
        for key, state in changes.items():
            before = self._seen[(domain, key)]
            data: dict[str, Any] = dict(state.data)
            if before.state is None and before.version == 0:
                self._inserts.append(
                    {"domain": domain, "key": key, "status": state.status, "data": data, "version": 1}
                )
            else:  # a key inserted or updated earlier in the transaction too: in order, after the inserts
                self._updates.append(
                    {"d": domain, "k": key, "v": before.version, "status": state.status, "data": data}
                )
            self._seen[(domain, key)] = Stored(state, before.version + 1)

    def flush(self) -> None:
        """Store the states written, one statement for the transaction's records (inserts, then updates
        with compare-and-set on ``version``); STATE_CONFLICT if one changed since it was read (the caller's
        transaction rolls back: nothing of it is stored)."""
        conn = self._s.connection()
        execute_many(conn, _INSERT, self._inserts)
        if self._updates:
            done = execute_many(conn, _UPDATE, self._updates)
            if done != len(self._updates):
                raise StateConflict(
                    "the record conflicts with a concurrent submission; retry",
                    details={"states": sorted({f"{u['d']}/{u['k']}" for u in self._updates})},
                )
        self._inserts, self._updates = [], []
