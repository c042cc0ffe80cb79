"""An error no handler expects (here: a table gone from under the running gateway) answers 500 ``INTERNAL``
without details, says ``Connection: close`` (uvicorn closes the connection after it), and the gateway serves
the next connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from tests.kit.gateway import Harness, workerless_gateway


def test_an_unexpected_error_is_a_bare_500_that_closes_the_connection(
    harness: Harness, tmp_path: Path
) -> None:
    with workerless_gateway(harness, tmp_path, "hospital-1") as (settings, http):
        assert http.get("/healthz").status_code == 200
        database = settings.database_url.removeprefix("sqlite:///")
        with sqlite3.connect(database) as conn:
            conn.execute("ALTER TABLE checkpoint RENAME TO checkpoint_gone")

        r = http.get("/api/v1/checkpoints/latest")
        assert r.status_code == 500
        assert r.json() == {"error": {"code": "INTERNAL", "message": "internal error", "details": {}}}
        assert r.headers["connection"] == "close"

        with httpx.Client(base_url=str(http.base_url), timeout=30) as fresh:
            assert fresh.get("/healthz").status_code == 200
