"""Requests PostgreSQL could not look up (the trace page's helper, gw22): a NUL in the path or query answers
400 ``NUL_IN_REQUEST`` on both databases (it was a 500 on PostgreSQL, a 404 on SQLite); an export cursor
past 2^31 (``seq`` is an INTEGER there) answers its empty page, not a 500; an Idempotency-Key is looked up
through its own index, not the organisation's records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from gateway.core.db import Database
from gateway.services.intake import idempotency_owner
from tests.kit.gateway import Harness, refused


def test_a_nul_in_the_path_or_query_is_refused_alike(harness: Harness) -> None:
    client = harness.client("hospital-1")
    for path in (
        "/api/v1/records/%00abc",
        "/api/v1/records/ab%00c/bundle",
        "/api/v1/subjects/rx:a%00b/records",
        "/api/v1/bundles?org=%00",
        "/api/v1/subjects/rx:ab/records?after=%001",
    ):
        r = client.get(path)
        assert refused(r, 400, "NUL_IN_REQUEST") == {}, path


def test_an_export_cursor_past_int32_is_an_empty_page(harness: Harness) -> None:
    r = harness.client("auditor").get(f"/api/v1/bundles?after={2**40}")
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []


def test_an_idempotency_key_is_looked_up_by_its_index(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    db.create_all()
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        with db.session() as s:
            assert idempotency_owner(s, "hospital-1", "key-1") is None
        event.remove(db.engine, "before_cursor_execute", seen)
        [(statement, params)] = statements
        with db.engine.connect() as conn:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
        details = " ".join(str(row[-1]) for row in plan)
        assert "USING INDEX ix_record_idempotency_key (idempotency_key=?)" in details, details
    finally:
        db.dispose()
