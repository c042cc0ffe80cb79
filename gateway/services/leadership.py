"""Which gateway instance runs the background workers: exactly one per database.

Every instance serves the API; the workers that write the log and talk to the chain for it (sequencer,
anchorer, chain caller, witness submitter) run in one instance only, the owner.

- PostgreSQL (high availability): the owner holds a session-level advisory lock on a connection of its own.
  A dead owner's connection closes (kill -9: the kernel closes its socket at once; a lost host: the TCP
  keepalives set on both ends of that connection, ``KEEPALIVE_S``), PostgreSQL releases the lock, and the
  next poll of another instance takes it; it starts its workers ``GRACE_POLLS`` polls later: takeover
  within about three polls (kill -9), or the keepalive bound plus that (a lost host). An owner whose
  lease connection fails (a heartbeat unanswered for ``USER_TIMEOUT_MS``, before the server's keepalives
  drop its session) stops its workers at once, so it has stopped before another instance starts.
  The log itself does not rely on this: each sequencer transaction also takes ``LOG_WRITE_LOCK`` (see
  ``Database.write``), so two sequencers never interleave even for the seconds a partition may last.
- SQLite: one process only. ``InstanceLock`` takes an exclusive ``flock`` beside the database file; a
  second gateway on the same file refuses to start (GATEWAY_ALREADY_RUNNING).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from gateway.core.db import WORKER_LEASE_KEY, Database
from gateway.errors import InstanceRunning
from gateway.services.workers import Stats, Worker

log = logging.getLogger("gateway.leadership")

KEEPALIVE_S = (
    2  # TCP keepalive idle (s) on the lease connection, then 3 probes 1 s apart: ~5 s to drop a peer
)
USER_TIMEOUT_MS = 2500  # client side: a heartbeat unanswered this long fails, before the server drops us
GRACE_POLLS = 2  # polls a new owner waits before starting its workers


class InstanceLock:
    """The single-instance lock of a SQLite gateway: ``flock`` on ``<database>.instance``, held while the
    process lives (the kernel releases it when the process dies, even by kill -9)."""

    def __init__(self, database_file: Path) -> None:
        self.path = database_file.with_name(database_file.name + ".instance")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        f = self.path.open("a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise InstanceRunning(
                f"another gateway ({holder}) serves the SQLite database beside {self.path}: SQLite is "
                "single-instance; stop it first, or run several instances on PostgreSQL",
                details={"lock": str(self.path), "holder": holder},
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class Leadership(threading.Thread):
    """Polls for the worker lease of a PostgreSQL database; calls ``on_acquire`` when this instance becomes
    the owner and ``on_lose`` when it stops being one. ``on_poll`` runs every poll on every instance (the
    gauges from the database)."""

    def __init__(
        self,
        db: Database,
        *,
        poll: float,
        on_acquire: Callable[[], None],
        on_lose: Callable[[], None],
        on_poll: Callable[[], None],
    ) -> None:
        super().__init__(name="leadership", daemon=True)
        self._engine = create_engine(
            db.url,
            poolclass=NullPool,
            connect_args={
                "keepalives": 1,
                "keepalives_idle": KEEPALIVE_S,
                "keepalives_interval": 1,
                "keepalives_count": 3,
                "tcp_user_timeout": USER_TIMEOUT_MS,
                "connect_timeout": max(1, int(poll * 4)),
            },
        )
        self._poll = poll
        self._on_acquire = on_acquire
        self._on_lose = on_lose
        self._on_poll = on_poll
        self._conn: Connection | None = None
        self._halt = threading.Event()
        self.owner = False
        self.acquired_at: float | None = None

    def stop(self) -> None:
        """Stop polling; an owner stops its workers first, then releases the lease for another instance."""
        self._halt.set()
        if self.is_alive():
            self.join(timeout=15)
        if self.owner:
            self._on_lose()
        self._drop(release=True)
        self.owner = False
        self._engine.dispose()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self._step()
            except SQLAlchemyError as exc:
                log.warning("worker lease: database unreachable (%s)", type(exc).__name__)
                self._drop(release=False)
                if self.owner:  # the lock may be gone with the session: fence ourselves off at once
                    self._lose("its lease connection failed")
            with contextlib.suppress(Exception):
                self._on_poll()
            self._halt.wait(self._poll)

    def _step(self) -> None:
        if self._conn is None:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            # The server side drops a vanished owner's session (and so its lock) within seconds, not hours.
            conn.execute(text(f"SET tcp_keepalives_idle = {KEEPALIVE_S}"))
            conn.execute(text("SET tcp_keepalives_interval = 1"))
            conn.execute(text("SET tcp_keepalives_count = 3"))
            conn.execute(text(f"SET statement_timeout = {int(self._poll * 4000)}"))
            self._conn = conn
        if self.owner:
            self._conn.execute(text("SELECT 1"))  # the session, and so the lock, is still ours
            return
        got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": WORKER_LEASE_KEY}).scalar()
        if got:
            self.owner = True
            # A previous owner whose session ended under it (not dead: cut off, or its backend terminated)
            # notices at its next poll and stops its workers: give it that long before starting ours.
            if self._halt.wait(self._poll * GRACE_POLLS):
                return
            self._conn.execute(text("SELECT 1"))  # still ours after the wait
            self.acquired_at = time.time()
            log.warning("this instance (pid %d) now owns the background workers", os.getpid())
            self._on_acquire()

    def _lose(self, why: str) -> None:
        self.owner = False
        self.acquired_at = None
        log.error("this instance no longer owns the background workers: %s; stopping them", why)
        self._on_lose()

    def _drop(self, *, release: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(SQLAlchemyError):
            if release and self.owner:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": WORKER_LEASE_KEY})
        with contextlib.suppress(SQLAlchemyError):
            conn.close()


class GaugePoll(Worker):
    """An API-only instance's gauges from the database every ``poll`` s: records the owner logged and
    anchored leave its backlog, which would otherwise only grow (and refuse with 503 at the limit)."""

    def __init__(self, stats: Stats, db: Database, *, poll: float) -> None:
        super().__init__("gauge-poll", idle=poll)
        self._stats, self._db = stats, db

    def step(self) -> bool:
        refresh_gauges(self._stats, self._db)
        return False


def refresh_gauges(stats: Stats, db: Database) -> None:
    """The shared gauges from the database: with several instances, records accepted and sizes reached by
    another instance's requests and workers count too (``/healthz``, ``/metrics``, the backlog limit)."""
    fresh = Stats.load(db)
    with stats.lock:
        stats.accepted_total = max(stats.accepted_total, fresh.accepted_total)
        stats.tree_size = max(stats.tree_size, fresh.tree_size)
        stats.checkpoint_size = max(stats.checkpoint_size, fresh.checkpoint_size)
        stats.anchored_size = max(stats.anchored_size, fresh.anchored_size)
        stats.chain_pending = fresh.chain_pending
