"""The witness's memory: the last checkpoint it cosigned per log, in SQLite, changed atomically.

C2SP tlog-witness: checking ``old`` against the stored size and storing the new checkpoint must be one
atomic step, and the new state must be durable before the cosignature leaves. One ``BEGIN IMMEDIATE``
transaction (SQLite's write lock, across processes too) does the check, the proof and the write; WAL with
``synchronous=FULL`` makes the commit durable before it returns.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from provenance.errors import ConsistencyInvalid
from provenance.log.checkpoint import Checkpoint
from provenance.log.merkle import empty_root, verify_consistency
from witness.errors import ProofRefused, SizeConflict

_UPSERT = (
    "INSERT INTO log_state (origin, size, root, note, cosigned_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
    "note = excluded.note, cosigned_at = excluded.cosigned_at"
)
_REFUSED = "INSERT INTO refused (origin, size, root, note, reason, at) VALUES (?, ?, ?, ?, ?, ?)"
_SCHEMA = (
    # Sizes are < 2**64, beyond SQLite's signed 64-bit integers: kept as decimal text.
    "CREATE TABLE IF NOT EXISTS log_state (origin TEXT PRIMARY KEY, size TEXT NOT NULL, root BLOB NOT NULL, "
    "note TEXT NOT NULL, cosigned_at REAL NOT NULL)",
    # Checkpoints validly signed by the log that the witness refused: evidence of a fork or a rollback.
    "CREATE TABLE IF NOT EXISTS refused (id INTEGER PRIMARY KEY, origin TEXT NOT NULL, size TEXT NOT NULL, "
    "root BLOB NOT NULL, note TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL)",
)


@dataclass(frozen=True, slots=True)
class Cosigned:
    """The last checkpoint cosigned for a log."""

    origin: str
    size: int
    root: bytes
    note: str


class WitnessState:
    """The last cosigned checkpoint per origin, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are begun explicitly, so that BEGIN IMMEDIATE takes the write lock
        # before the stored size is read.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for stmt in _SCHEMA:
            self._db.execute(stmt)
        self._lock = threading.Lock()  # one connection, shared by the server's threads

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def latest(self, origin: str) -> Cosigned | None:
        """The last checkpoint cosigned for ``origin``, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT size, root, note FROM log_state WHERE origin = ?", (origin,)
            ).fetchone()
        return None if row is None else Cosigned(origin=origin, size=int(row[0]), root=row[1], note=row[2])

    def all(self) -> list[Cosigned]:
        """Every log's last cosigned checkpoint."""
        with self._lock:
            rows = self._db.execute(
                "SELECT origin, size, root, note FROM log_state ORDER BY origin"
            ).fetchall()
        return [Cosigned(origin=r[0], size=int(r[1]), root=r[2], note=r[3]) for r in rows]

    def refused(self, origin: str) -> list[tuple[int, bytes, str]]:
        """(size, root, reason) of each validly signed checkpoint refused for ``origin``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT size, root, reason FROM refused WHERE origin = ? ORDER BY id", (origin,)
            ).fetchall()
        return [(int(r[0]), r[1], r[2]) for r in rows]

    def advance(self, old_size: int, checkpoint: Checkpoint, proof: Sequence[bytes], note: str) -> None:
        """Make ``checkpoint`` the last cosigned one if it extends the stored one from ``old_size``.

        Raises SizeConflict (``old_size`` is not the stored size, or the same size has another root) or
        ProofRefused; the new state is committed (durably) before this returns.
        """
        origin = checkpoint.origin
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT size, root FROM log_state WHERE origin = ?", (origin,)
                ).fetchone()
                size, root = (int(row[0]), bytes(row[1])) if row else (0, empty_root())
                refusal = self._check(size, root, old_size, checkpoint, proof)
                # Signed by the log and still refused, for another root at a cosigned size or a proof that
                # does not verify: evidence of a fork, kept (a stale ``old`` alone is not).
                evidence = isinstance(refusal, ProofRefused) or (
                    checkpoint.size == size and checkpoint.root != root
                )
                if refusal is None:
                    self._db.execute(
                        _UPSERT,
                        (origin, str(checkpoint.size), checkpoint.root, note, time.time()),
                    )
                elif evidence:
                    self._db.execute(
                        _REFUSED,
                        (origin, str(checkpoint.size), checkpoint.root, note, refusal.code, time.time()),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if refusal is not None:
            raise refusal

    @staticmethod
    def _check(
        size: int, root: bytes, old_size: int, cp: Checkpoint, proof: Sequence[bytes]
    ) -> SizeConflict | ProofRefused | None:
        if old_size != size:
            return SizeConflict(
                f"the witness last cosigned size {size} of {cp.origin}, not {old_size}", size=size
            )
        if cp.size == size and cp.root != root:
            return SizeConflict(
                f"the witness cosigned size {size} of {cp.origin} with another root: a fork", size=size
            )
        try:
            verify_consistency(size, cp.size, root, cp.root, proof)
        except ConsistencyInvalid as exc:
            return ProofRefused(
                f"the consistency proof from size {size} to {cp.size} does not verify: {exc.message}",
                details={"old_size": size, "size": cp.size},
            )
        return None
