"""SQLite's query plans of what a piece of gateway code runs: the look-ups that must go through an index
(SQLite has no statistics to choose by, and walked the wrong one twice)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlmodel import Session

from gateway.core.db import Database


def query_plans(tmp_path: Path, work: Callable[[Session], object]) -> list[tuple[str, str]]:
    """(statement, its plan's details) of each statement ``work`` runs in a session of a fresh SQLite
    gateway database."""
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    db.create_all()
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        with db.session() as s:
            work(s)
        event.remove(db.engine, "before_cursor_execute", seen)
        with db.engine.connect() as conn:
            return [
                (
                    st,
                    " ".join(
                        str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {st}", p).all()
                    ),
                )
                for st, p in statements
            ]
    finally:
        db.dispose()
