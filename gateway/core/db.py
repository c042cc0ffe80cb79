"""Database engine and sessions: SQLite (embedded default) or PostgreSQL, same code, chosen by URL."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import resource
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlmodel import Session, SQLModel, create_engine

from gateway import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from gateway.errors import StorageFull, StorageWriteFailed

log = logging.getLogger("gateway.db")

# Database answers that mean "this write cannot be stored now", and what to tell the operator. Anything
# else (a unique-constraint race, a deadlock, a bug) keeps its own exception.
_SQLITE_FULL = 13  # SQLITE_FULL: the file could not grow (ENOSPC) or max_page_count was reached
_SQLITE_REFUSED = {  # primary result codes, https://sqlite.org/rescode.html
    3: "access to the database file was denied",  # SQLITE_PERM
    8: "the database file is read-only",  # SQLITE_READONLY
    10: "a disk I/O error",  # SQLITE_IOERR (also EFBIG and EDQUOT: SQLite names only ENOSPC "full")
    14: "the database file cannot be opened",  # SQLITE_CANTOPEN
    23: "access to the database was denied",  # SQLITE_AUTH
}
_SQLITE_IOERR = 10
_PG_FULL = {"53100": "PostgreSQL has no space left on its volume"}  # SQLSTATE disk_full
_PG_REFUSED = {
    "42501": "permission denied to the gateway's database account",  # insufficient_privilege
    "25006": "the database is read-only",  # read_only_sql_transaction (a standby, or set read-only)
    "58030": "a disk I/O error",  # io_error
}
_OS_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}

_MAX_PAGE = 65536  # SQLite's largest page: a write that fails at the file size limit starts within one

# Columns added to a table after its first release. There are no migrations yet: ``create_all`` makes
# missing tables only, so it adds these to an older database (nullable, so its rows read NULL).
ADDED_COLUMNS = (("data_key", "kek_id"),)
# Indexes added since the first release, by table and the dialect they are for (the model's ``ddl_if``):
# created on an older database at start (``create_all`` creates a table's indexes only with the table).
ADDED_INDEXES = (("record", "ix_record_subject_seq", "postgresql"),)

# PostgreSQL advisory lock keys (64-bit, fixed): the worker lease one gateway instance holds
# (services/leadership.py), and the transaction lock every log write takes, so that two instances' sequencers
# can never interleave their appends even while a lost owner has not noticed yet.
WORKER_LEASE_KEY = 0x5348_5052_4F56_0001
LOG_WRITE_LOCK = 0x5348_5052_4F56_0002


_ORJSON_STRICT = (
    orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def json_text(value: Any) -> str:
    """The text of a JSON column: orjson (a batch's state holds its 10,000 readings' canonical JSON, which
    ``json.dumps`` took twice as long to write); ``json.dumps`` for whatever orjson would not write as it does
    (an integer beyond 64 bits, a key not a string, a subclass, a dataclass or datetime: refused by both).
    One difference: a NaN or infinity, which JSON has not, is written null (``json.dumps`` wrote ``NaN``,
    which PostgreSQL refused); the adapters refuse such numbers in payloads before facts are made of them."""
    try:
        return orjson.dumps(value, option=_ORJSON_STRICT).decode("utf-8")
    except TypeError:
        return json.dumps(value)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A statement compiled for one dialect and one set of row keys."""

    stmt: ClauseElement  # held, so its id (the cache key) is never another's
    sql: str
    positional: bool  # the driver's parameters: a tuple in ``binds`` order, else a dict
    binds: tuple[tuple[str, Callable[[Any], Any] | None], ...]  # each parameter's type processing
    constants: dict[str, Any]  # parameters the statement itself binds (``version + 1``'s 1)


_PLANS: dict[tuple[int, str, tuple[str, ...]], _Plan] = {}


def execute_many(conn: Connection, stmt: ClauseElement, rows: Sequence[Mapping[str, Any]]) -> int:
    """Run a statement (an INSERT, an UPDATE, a lock) once per row, every row with the same keys, on the
    driver's ``executemany`` (psycopg sends them in one pipeline, in order); the rows it changed (the
    driver's count). The statement is compiled once per dialect and set of keys
    (``stmt``: built once, at import) and each value goes through its column type's bind processing, as
    ``Connection.execute`` would; what this leaves out is that call's work per row (a parameter dictionary
    built, then processed, for each: under the write lock, more than the database's own insert work). Errors
    are wrapped as ``Connection.execute`` wraps them (an IntegrityError is one)."""
    if not rows:
        return 0
    keys = tuple(rows[0])
    dialect = conn.dialect
    plan = _PLANS.get((id(stmt), dialect.name, keys))
    if plan is None or plan.stmt is not stmt:
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        assert isinstance(compiled, SQLCompiler)  # a SQL statement, not DDL
        by_name = {name: bind for bind, name in compiled.bind_names.items()}  # as the SQL names them
        names = compiled.positiontup if compiled.positional else list(by_name)
        assert names is not None  # positional: the parameters' order
        plan = _PLANS[(id(stmt), dialect.name, keys)] = _Plan(
            stmt=stmt,
            sql=str(compiled),
            positional=compiled.positional,
            binds=tuple((n, by_name[n].type.dialect_impl(dialect).bind_processor(dialect)) for n in names),
            constants={n: by_name[n].value for n in names if n not in keys},
        )
    if plan.constants:
        rows = [{**plan.constants, **row} for row in rows]
    if plan.positional:
        params: list[Any] = [tuple(row[n] if f is None else f(row[n]) for n, f in plan.binds) for row in rows]
    else:
        params = [{n: row[n] if f is None else f(row[n]) for n, f in plan.binds} for row in rows]
    return int(conn.exec_driver_sql(plan.sql, params).rowcount)


def _added(present: Callable[[], bool], add: Callable[[], None]) -> bool:
    """Run the DDL ``add`` unless ``present()``; True when this call added it. A failure is another process
    starting on this database having added it first, unless it is still not there."""
    if present():
        return False
    try:
        add()
    except DBAPIError:
        if not present():
            raise
    return True


class FileWriteLock:
    """An exclusive ``flock`` on ``<database>.writer``, taken before ``BEGIN IMMEDIATE`` by each gateway
    process writing one SQLite file (an owner and its API-only instances).

    SQLite alone makes a second process wait in its busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25 … ms
    between tries while the holder's threads take the lock again and again: with two instances, single
    submissions' p99 was 59–86 ms. The kernel wakes a process waiting here when the holder lets go (p99
    24–30 ms, docs/design/gateway.md). It only orders our processes: SQLite's own lock and busy timeout stay
    underneath (other tools, older gateways). A wait is bounded by ``timeout``: the caller then goes on
    without it, to SQLite's busy handler, so a stopped holder costs what it cost before, never a hang.
    """

    def __init__(self, path: Path, *, timeout: float) -> None:
        self.path = path
        self.timeout = timeout

    @contextlib.contextmanager
    def held(self) -> Iterator[bool]:
        """Hold the lock for the block; yields False when it was not had (in ``timeout``, or at all)."""
        # A descriptor per hold: flock belongs to the open file, so an abandoned wait (below) holds its own.
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            log.warning(
                "the SQLite writer lock %s cannot be opened (%s): going on without it", self.path, exc
            )
            fd = None
        held = fd is not None and self._take(fd)
        try:
            yield held
        finally:
            if held and fd is not None:
                os.close(fd)  # releases the lock

    def _take(self, fd: int) -> bool:
        """Lock ``fd``: at once if free, else by :meth:`_wait`. On False ``fd`` is closed (or will be)."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return self._wait(fd)
        except OSError:
            os.close(fd)
            return False

    def _wait(self, fd: int) -> bool:
        """Block on ``fd``'s lock in a thread of its own, up to ``timeout``; on False it closes ``fd``."""
        done = threading.Event()
        gate = threading.Lock()
        state = {"held": False, "abandoned": False}

        def wait() -> None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)
                state["held"] = True
            with gate:
                if state["held"] and not state["abandoned"]:
                    done.set()
                    return
                state["abandoned"] = True
                done.set()
            os.close(fd)  # not had, or had after the caller went on without it: the next one may have it

        threading.Thread(target=wait, name="sqlite-writer-wait", daemon=True).start()
        done.wait(self.timeout)
        with gate:
            if done.is_set() and not state["abandoned"]:
                return True
            state["abandoned"] = True
        log.warning(
            "the SQLite writer lock %s was not had in %.0f s: going on without it", self.path, self.timeout
        )
        return False


class Database:
    """One engine plus the one rule SQLite needs: a single writer at a time, taken before BEGIN."""

    def __init__(self, url: str, *, storage_retry_after: int = 30) -> None:
        self.url = url
        self.storage_retry_after = storage_retry_after
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.sqlite_file: Path | None = None
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            database = parsed.database or ""
            if database and database != ":memory:":
                self.sqlite_file = Path(database)
                self.sqlite_file.parent.mkdir(parents=True, exist_ok=True)
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
        self.engine: Engine = create_engine(url, json_serializer=json_text, **kwargs)
        # Reads on PostgreSQL run without a transaction of their own: under its default READ COMMITTED every
        # statement sees what was committed when it began either way, and no BEGIN/ROLLBACK round trips.
        # The ROLLBACK also made psycopg drop the connection's prepared statements (DEALLOCATE ALL), so the
        # hot INSERTs were parsed again and again (measured: 95 of them in 400 submissions).
        self._reads: Engine = (
            self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # SQLite takes its write lock lazily and fails upgrades under contention; serialising writers in
        # process is cheaper than retrying. PostgreSQL needs no such lock (row locks decide races there).
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if self.is_sqlite else contextlib.nullcontext()
        )
        # Across processes on one SQLite file, the kernel's queue instead of SQLite's sleeps (FileWriteLock).
        self._file_lock = (
            None
            if self.sqlite_file is None
            else FileWriteLock(Path(f"{self.sqlite_file}.writer"), timeout=30.0)
        )

    def create_all(self) -> None:
        """Create missing tables, and add the columns an older database lacks (idempotent)."""
        SQLModel.metadata.create_all(self.engine)
        for table, column in ADDED_COLUMNS:
            self._add_column(table, column)
        for table, name, dialect in ADDED_INDEXES:
            if self.engine.dialect.name == dialect:
                self._add_index(table, name)

    def _add_index(self, table: str, name: str) -> None:
        """``CREATE INDEX`` from the model's definition, unless the index is there already."""
        index = next(i for i in SQLModel.metadata.tables[table].indexes if i.name == name)

        def present() -> bool:
            return name in {i["name"] for i in inspect(self.engine).get_indexes(table)}

        if _added(present, lambda: index.create(self.engine)):
            log.info("added the index %s to an older database", name)

    def _add_column(self, table: str, column: str) -> None:
        """``ALTER TABLE … ADD COLUMN`` from the model's definition, unless the column is there already."""

        def present() -> bool:
            return column in {c["name"] for c in inspect(self.engine).get_columns(table)}

        def add() -> None:
            quote = self.engine.dialect.identifier_preparer.quote
            definition = SQLModel.metadata.tables[table].c[column].type.compile(self.engine.dialect)
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(column)} {definition}")

        if _added(present, add):
            log.info("added the column %s.%s to an older database", table, column)

    def session(self) -> Session:
        """A new session for reads (the caller closes it); every write goes through ``write``."""
        return Session(self._reads, expire_on_commit=False)

    @contextlib.contextmanager
    def write(self, *, exclusive: int | None = None) -> Iterator[Session]:
        """A session in one write transaction: committed on success, rolled back on any exception.

        A database that cannot store the transaction raises ``StorageFull`` (no room) or
        ``StorageWriteFailed`` (write refused or failed) instead of the driver's error. Every write goes
        through here, so single submissions, bulk items and the workers all report it the same way.

        ``exclusive``: on PostgreSQL, an advisory lock key the transaction takes first (held until it ends),
        serialising it with every other transaction that names the same key, in any process.
        """
        with (
            self._write_lock,
            self._file_lock.held() if self._file_lock is not None else contextlib.nullcontext(),
            Session(self.engine, expire_on_commit=False) as session,
        ):
            try:
                if self.is_sqlite:
                    # SQLite's write lock first (waiting up to busy_timeout): a transaction that reads and
                    # then writes fails at once (SQLITE_BUSY, no wait) when another process committed after
                    # its read began; API-only instances write to the owner's file (docs/design/gateway.md).
                    session.connection().exec_driver_sql("BEGIN IMMEDIATE")
                elif exclusive is not None:
                    session.connection().execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": exclusive})
                yield session
                session.commit()
            except BaseException as exc:
                session.rollback()
                storage = self._storage_error(exc)
                if storage is not None:
                    log.error("database write failed, rolled back: %s", exc)
                    raise storage from exc
                raise

    def _storage_error(self, exc: BaseException) -> StorageWriteFailed | None:
        """The project error for a database that cannot store a write, or None for any other failure."""
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        found = None if orig is None else self._cannot_store(orig)
        if found is None:
            return None
        full, name, reason = found
        details = {"database": "sqlite" if self.is_sqlite else "postgresql", "error": name, "reason": reason}
        if full:
            return StorageFull(
                f"the gateway could not store the record: its database disk is full ({reason}); nothing "
                "was kept, submit it again later (the gateway's operator has to free space)",
                retry_after=self.storage_retry_after,
                details=details,
            )
        return StorageWriteFailed(
            f"the gateway could not store the record: its database could not take the write ({reason}); "
            "nothing was kept, submit it again later (the gateway's operator has to repair the database)",
            retry_after=self.storage_retry_after,
            details=details,
        )

    def _cannot_store(self, orig: BaseException) -> tuple[bool, str, str] | None:
        """(disk full?, the driver's error name or SQLSTATE, why) when ``orig`` means the write cannot be
        stored now; None otherwise."""
        sqlite_code = getattr(orig, "sqlite_errorcode", None)
        sqlstate = getattr(orig, "sqlstate", None)
        if isinstance(sqlite_code, int):
            name = str(getattr(orig, "sqlite_errorname", None) or sqlite_code)
            primary = sqlite_code & 0xFF
            if primary == _SQLITE_FULL:
                return True, name, "SQLite could not grow the database file"
            if primary == _SQLITE_IOERR and (limit := self._at_file_size_limit()) is not None:
                return True, name, f"file size limit of {limit} bytes reached, ulimit -f"
            reason = _SQLITE_REFUSED.get(primary)
            return None if reason is None else (False, name, reason)
        if isinstance(sqlstate, str):
            if sqlstate in _PG_FULL:
                return True, sqlstate, _PG_FULL[sqlstate]
            reason = _PG_REFUSED.get(sqlstate)
            return None if reason is None else (False, sqlstate, reason)
        if isinstance(orig, OSError) and orig.errno in _OS_FULL:
            return True, errno.errorcode[orig.errno], orig.strerror or "no space left"
        return None

    def _at_file_size_limit(self) -> int | None:
        """The process's file size limit if a database file has reached it (within one page), else None.

        A write past RLIMIT_FSIZE fails with EFBIG, which SQLite reports as a plain I/O error.
        """
        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft == resource.RLIM_INFINITY or self.sqlite_file is None:
            return None
        sizes = []
        for suffix in ("", "-wal", "-journal", "-shm"):
            with contextlib.suppress(OSError):
                sizes.append(Path(f"{self.sqlite_file}{suffix}").stat().st_size)
        return soft if sizes and max(sizes) + _MAX_PAGE >= soft else None

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
