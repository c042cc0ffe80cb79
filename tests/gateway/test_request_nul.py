"""Requests PostgreSQL could not look up (the trace page's helper, gw22): a NUL in the path or query answers
400 ``NUL_IN_REQUEST`` on both databases (it was a 500 on PostgreSQL, a 404 on SQLite); an export cursor
past 2^31 (``seq`` is an INTEGER there) answers its empty page, not a 500; an Idempotency-Key is looked up
through its own index, not the organisation's records."""

from __future__ import annotations

from pathlib import Path

from gateway.services.intake import idempotency_owner
from tests.kit.gateway import Harness, refused
from tests.kit.plans import query_plans


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
    [(_statement, details)] = query_plans(tmp_path, lambda s: idempotency_owner(s, "hospital-1", "key-1"))
    assert "USING INDEX ix_record_idempotency_key (idempotency_key=?)" in details, details
