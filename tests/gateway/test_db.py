"""``Database``: a database that cannot store a write raises the gateway's storage codes; an older
database gets the columns added since (``create_all``).

In process, on a real SQLite file: SQLite's own limits produce the driver errors a full disk and a
read-only database do. The HTTP answers (507 / 503 + Retry-After) on a full disk and a revoked PostgreSQL
grant are in ``tests/security/test_crash_safety.py``.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, LargeBinary, MetaData, String, Table, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import select

from gateway.core.db import Database, FileWriteLock
from gateway.errors import StorageFull, StorageWriteFailed
from gateway.models import CheckpointRow, DataKey, Record, WorkflowState

PG_URL = os.environ.get("PROV_TEST_PG_URL")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database(f"sqlite:///{tmp_path / 'gateway.db'}", storage_retry_after=7)
    d.create_all()
    yield d
    d.dispose()


def _checkpoint(size: int, note: str = "note") -> CheckpointRow:
    return CheckpointRow(size=size, root=bytes(32), note=note, created_at=time.time())


def _sizes(db: Database) -> list[int]:
    with db.session() as s:
        return list(s.exec(select(CheckpointRow.size)).all())


def test_full_database_raises_storage_full_and_keeps_nothing(db: Database) -> None:
    with db.write() as s:
        s.add(_checkpoint(1))
    with pytest.raises(StorageFull) as caught, db.write() as s:
        # SQLITE_FULL, as ENOSPC gives: the file may not grow past the pages it has.
        s.connection().exec_driver_sql("PRAGMA max_page_count = 1")
        s.add(_checkpoint(2))
        s.add(_checkpoint(3, "x" * 1_000_000))
    err = caught.value
    assert (err.code, err.http_status, err.retry_after) == ("STORAGE_FULL", 507, 7)
    assert err.details == {
        "database": "sqlite",
        "error": "SQLITE_FULL",
        "reason": "SQLite could not grow the database file",
    }
    assert "disk is full" in err.message and "nothing was kept" in err.message
    assert _sizes(db) == [1]


def test_read_only_database_raises_storage_write_failed(db: Database) -> None:
    with pytest.raises(StorageWriteFailed) as caught, db.write() as s:
        s.connection().exec_driver_sql("PRAGMA query_only = ON")
        s.add(_checkpoint(1))
    err = caught.value
    assert type(err) is StorageWriteFailed
    assert (err.code, err.http_status, err.retry_after) == ("STORAGE_WRITE_FAILED", 503, 7)
    assert err.details["error"] == "SQLITE_READONLY" and "nothing was kept" in err.message
    assert _sizes(db) == []


def test_other_database_errors_keep_their_exception(db: Database) -> None:
    """A unique-constraint race is the write path's to explain (``_after_conflict``), not a storage fault."""
    with db.write() as s:
        s.add(_checkpoint(1))
    with pytest.raises(IntegrityError), db.write() as s:
        s.add(_checkpoint(1))
    with pytest.raises(KeyError), db.write() as s:
        s.add(_checkpoint(2))
        raise KeyError("not a database error")
    assert _sizes(db) == [1]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a schema of its own in PROV_TEST_PG_URL's database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'older.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL: set PROV_TEST_PG_URL")
    schema = f"older_{secrets.token_hex(4)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_an_older_database_gets_the_added_columns(empty_url: str) -> None:
    """A data_key table from before the KEK (no kek_id) gets the column at start; its rows read NULL (an
    unwrapped key); starting again changes nothing."""
    older = MetaData()
    Table(
        "data_key",
        older,
        Column("record_id", String(64), primary_key=True),
        Column("key", LargeBinary, nullable=False),
    )
    engine = create_engine(empty_url)
    older.create_all(engine)
    with engine.begin() as c:
        c.execute(older.tables["data_key"].insert(), [{"record_id": "r1", "key": bytes(16)}])
    engine.dispose()

    for _ in range(2):
        db = Database(empty_url)
        try:
            db.create_all()
            columns = {c["name"] for c in inspect(db.engine).get_columns("data_key")}
            assert columns == {"record_id", "key", "kek_id"}
            with db.session() as s:
                row = s.get(DataKey, "r1")
            assert row is not None and (row.key, row.kek_id) == (bytes(16), None)
        finally:
            db.dispose()


def test_an_older_database_gets_the_subject_history_index(empty_url: str) -> None:
    """PostgreSQL's trace page reads a subject's records by (subject, seq): a database made before the index
    gets it at start, and starting again changes nothing; SQLite's subject index holds seq already (its
    rowid), so no second index is made there."""
    db = Database(empty_url)
    try:
        db.create_all()
        postgresql = db.engine.dialect.name == "postgresql"
        with db.engine.begin() as c:
            if postgresql:
                c.execute(text("DROP INDEX ix_record_subject_seq"))  # as a database made before it
        for _ in range(2):
            db.create_all()
            indexes = {i["name"]: i["column_names"] for i in inspect(db.engine).get_indexes("record")}
            assert indexes["ix_record_subject"] == ["subject"]
            if postgresql:
                assert indexes["ix_record_subject_seq"] == ["subject", "seq"]
            else:
                assert "ix_record_subject_seq" not in indexes
    finally:
        db.dispose()


def test_json_columns_read_back_what_json_would(db: Database) -> None:
    """JSON columns are written by orjson (a batch's state: 10,000 readings), by ``json.dumps`` where orjson
    would differ: what is read back is what ``json`` makes of the value; what neither writes is refused."""
    data = {
        "readings": ['{"mn":"A1","pollutants":{"a21026":{"Rtd":"1.5"}}}', '中\u0000"\\'],
        "count": 10_000,
        "wei": 2**70,  # beyond 64 bits: json.dumps writes it
        "by_index": {1: "one"},  # a key not a string: json.dumps writes "1"
        "share": 0.1,
    }
    with db.write() as s:
        s.add(WorkflowState(domain="env", key="batch:A1:x", status="accepted", data=data))
    with db.session() as s:
        row = s.exec(select(WorkflowState).where(WorkflowState.key == "batch:A1:x")).one()
        assert row.data == json.loads(json.dumps(data))
    with pytest.raises(StatementError), db.write() as s:
        s.add(WorkflowState(domain="env", key="bad", status="x", data={"at": datetime.now(UTC)}))


def test_execute_many_writes_what_execute_writes(empty_url: str) -> None:
    """The write path's statements run through ``execute_many`` (the driver's executemany, the types' bind
    processing its own) store what ``Connection.execute`` stores, row for row; its count is the rows
    changed (a compare-and-set UPDATE that matches none: 0), and a duplicate key is SQLAlchemy's
    IntegrityError, as the write path's race handling expects."""
    from gateway.core.db import execute_many
    from gateway.services import outbox, states

    db = Database(empty_url)
    try:
        db.create_all()

        def record(i: int, facts: dict[str, object]) -> dict[str, object]:
            return {
                "id": f"{i:064x}",
                "kind": "env.reading",
                "subject": "station:中1",
                "org": "station-1",
                "timestamp": "2026-12-06T00:00:00Z",
                "nonce": f"n{i}",
                "prev": None,
                "payload_digest": "a" * 64,
                "signature": "MEUCIQ==",
                "accepted_at": 1765000000.25 + i,
                "signer_key_index": i % 3 - 1,
                "signer_public_key": "-----BEGIN PUBLIC KEY-----",
                "facts": facts,
                "chain_status": "none",
                "idempotency_key": None if i % 2 else f"idem-{i}",
                "leaf_index": None,
                "chain_tx": None,
                "chain_error": None,
            }

        facts = {
            "mn": "A1",
            "pollutants": {"a21026": 1.5},
            "flags": {"a21026": "N"},
            "abnormal": [],
            "big": 2**70,
        }
        insert_record, insert_payload, insert_key = outbox._INSERTS
        with db.write() as s:
            conn = s.connection()
            conn.execute(insert_record, [record(i, facts) for i in range(0, 4)])
            assert execute_many(conn, insert_record, [record(i, facts) for i in range(4, 8)]) == 4
            conn.execute(
                insert_payload, [{"record_id": f"{i:064x}", "ciphertext": bytes([i]) * 40} for i in range(2)]
            )
            execute_many(
                conn,
                insert_payload,
                [{"record_id": f"{i:064x}", "ciphertext": bytes([i]) * 40} for i in range(2, 4)],
            )
            execute_many(
                conn,
                insert_key,
                [{"record_id": f"{i:064x}", "key": bytes(16), "kek_id": None} for i in range(2)],
            )
            conn.execute(
                states._INSERT, [{"domain": "env", "key": "a", "status": "x", "data": facts, "version": 1}]
            )
            execute_many(
                conn,
                states._INSERT,
                [{"domain": "env", "key": "b", "status": "x", "data": facts, "version": 1}],
            )
        with db.session() as s:
            table = Record.__table__  # type: ignore[attr-defined]
            rows = s.connection().execute(table.select().order_by(table.c.seq)).mappings().all()
            payloads = s.connection().execute(text("SELECT * FROM record_payload ORDER BY record_id")).all()
            read = states.read_states(s, "env", ["a", "b"])
        # the same stored either way: each row as given (JSON as ``json`` reads it back), seq in order
        for i, row in enumerate(rows):
            given = {**record(i, facts), "facts": json.loads(json.dumps(facts)), "seq": i + 1}
            assert dict(row) == given
        assert [bytes(p.ciphertext) for p in payloads] == [bytes([i]) * 40 for i in range(4)]
        assert read["a"] == read["b"] == states.Stored(states.State("x", json.loads(json.dumps(facts))), 1)

        change = {"d": "env", "k": "a", "v": 1, "status": "y", "data": {"n": 1}}
        with db.write() as s:
            assert execute_many(s.connection(), states._UPDATE, [change, {**change, "k": "b"}]) == 2
            assert execute_many(s.connection(), states._UPDATE, [change]) == 0  # version 2 now: no match
        with db.session() as s:
            assert states.read_states(s, "env", ["a"])["a"] == states.Stored(states.State("y", {"n": 1}), 2)
        if not db.is_sqlite:  # a transaction's state locks, taken in one executemany: every one held
            with db.write() as s:
                states.TxStates(s, postgres=True).lock([("env", f"k{i}") for i in range(300)])
                held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                assert s.connection().exec_driver_sql(held).scalar() == 300
        with pytest.raises(IntegrityError), db.write() as s:
            execute_many(s.connection(), insert_record, [record(8, facts), record(3, facts)])
        with db.session() as s:
            assert s.connection().execute(text("SELECT count(*) FROM record")).scalar() == 8  # none of them
    finally:
        db.dispose()


def _waiting_on_writer_lock() -> bool:
    return any(t.name == "sqlite-writer-wait" for t in threading.enumerate())


def test_writers_of_one_sqlite_file_queue_on_its_writer_lock(tmp_path: Path) -> None:
    """Two gateways on one file (an owner and an API-only instance): the second writer waits on the kernel's
    lock, not in SQLite's sleeping busy handler, and begins after the first commits, seeing its rows."""
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    first, second = Database(url), Database(url)
    first.create_all()
    order: list[str] = []
    seen: list[list[int]] = []

    def later() -> None:
        with second.write() as s:
            order.append("second began")
            seen.append(list(s.exec(select(CheckpointRow.size)).all()))
            s.add(_checkpoint(2))

    try:
        with first.write() as s:
            s.add(_checkpoint(1))
            t = threading.Thread(target=later)
            t.start()
            deadline = time.monotonic() + 10
            while not _waiting_on_writer_lock() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _waiting_on_writer_lock(), "the second writer did not wait on the file lock"
            order.append("first commits")
        t.join(10)
        assert order == ["first commits", "second began"]
        assert seen == [[1]]
        assert sorted(_sizes(first)) == [1, 2]
        assert (tmp_path / "gateway.db.writer").exists()
    finally:
        first.dispose()
        second.dispose()


def test_a_wait_for_the_writer_lock_is_bounded_and_leaves_it_free(tmp_path: Path, db: Database) -> None:
    """A holder that never lets go (a stopped process) costs a writer ``timeout``, then SQLite's own lock
    decides as before; the abandoned wait gives the lock back once it gets it."""
    assert db.sqlite_file is not None
    path = Path(f"{db.sqlite_file}.writer")
    holder = FileWriteLock(path, timeout=5)
    db._file_lock = FileWriteLock(path, timeout=0.2)
    with holder.held() as held:
        assert held
        with db._file_lock.held() as got:
            assert got is False
        with db.write() as s:  # not held by SQLite: the write goes on without the file lock
            s.add(_checkpoint(1))
    assert _sizes(db) == [1]
    with FileWriteLock(path, timeout=5).held() as again:
        assert again
    deadline = time.monotonic() + 10
    while _waiting_on_writer_lock() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _waiting_on_writer_lock()
