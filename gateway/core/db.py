"""Database engine and sessions: SQLite (embedded default) or PostgreSQL, same code, chosen by URL."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

from gateway import models  # noqa: F401  (registers the tables on SQLModel.metadata)


class Database:
    """One engine plus the one rule SQLite needs: a single writer at a time, taken before BEGIN."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if not database or database == ":memory:":
                kwargs["poolclass"] = StaticPool
            else:
                # One connection per request thread (anyio's pool has 40): beyond the default 5 + 10,
                # overflow connections were opened and closed per request, with their PRAGMAs each time.
                kwargs["pool_size"] = 48
                kwargs["max_overflow"] = 16
        else:
            kwargs["pool_size"] = 20
            kwargs["max_overflow"] = 20
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # SQLite takes its write lock lazily and fails upgrades under contention; serialising writers in
        # process is cheaper than retrying. PostgreSQL needs no such lock (row locks decide races there).
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if self.is_sqlite else contextlib.nullcontext()
        )

    def create_all(self) -> None:
        """Create missing tables (idempotent)."""
        SQLModel.metadata.create_all(self.engine)

    def session(self) -> Session:
        """A new session (the caller closes it)."""
        return Session(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A session in one write transaction: committed on success, rolled back on any exception."""
        with self._write_lock, Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers never block the writer; synchronous=NORMAL is durable across process crashes in WAL.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
