"""``visibility.Reader``'s look-ups of a subject's history go through the subject's index on SQLite (which
has no statistics to choose by): the party look-up walked the reader's records in the ``(org, nonce)``
unique index, all of them for a subject the reader has none of (a third of a trace page at 200,000 rows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from gateway.core.db import Database
from gateway.services.reads import public_rows
from gateway.services.visibility import Reader


def test_subject_look_ups_search_the_subject_index(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    db.create_all()
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        with db.session() as s:
            # A party look-up (every reader not reading everything), a code holder's, the page.
            for org, role in (("station-1", "monitoring_station"), ("pharmacy-2", "pharmacy")):
                reader = Reader(org=org, role=role, access_code="ABCDEFGHJKMNPQRSTVWX")
                for subject in ("station:44030020261125ST0001", "rx:RX0000000000"):
                    public_rows(s, reader.subject_where(s, subject, after=0), limit=101)
        event.remove(db.engine, "before_cursor_execute", seen)
        assert len(statements) >= 6
        with db.engine.connect() as conn:
            for statement, params in statements:
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
                details = " ".join(str(row[-1]) for row in plan)
                assert "USING INDEX ix_record_subject (subject=?" in details, (statement, details)
    finally:
        db.dispose()
