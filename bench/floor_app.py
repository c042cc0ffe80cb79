"""The floor: the least a record submission can do on the gateway's stack, to measure the gateway against.

FastAPI + uvicorn (as the gateway runs them), the request body through a pydantic model, the envelope parsed
and its SM2 signature verified (our OpenSSL binding), one row inserted into SQLite (WAL) and committed; a bulk
request verifies on both cores and inserts its rows with one executemany. No token, no roles, no adapter, no
payload encryption, no log, no receipt, no chain: anything the real gateway does costs more than this.
Run by ``bench/gateway.py --floor`` (from the repository root: ``uvicorn --app-dir bench floor_app:app``,
with ``FLOOR_PUB`` and ``FLOOR_DB`` set).
"""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from provenance.crypto import SM2PublicKey
from provenance.records import Envelope

_KEY = SM2PublicKey.from_pem(Path(os.environ["FLOOR_PUB"]).read_bytes())
_DB = os.environ["FLOOR_DB"]
_local = threading.local()
_lock = threading.Lock()  # one writer at a time, as SQLite allows
_pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)

with sqlite3.connect(_DB) as _c:
    _c.execute("CREATE TABLE IF NOT EXISTS record (id TEXT PRIMARY KEY, org TEXT, sig TEXT, payload BLOB)")


def _conn() -> sqlite3.Connection:
    c: sqlite3.Connection | None = getattr(_local, "conn", None)
    if c is None:
        c = sqlite3.connect(_DB, check_same_thread=False, isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute("PRAGMA busy_timeout=10000")
        _local.conn = c
    return c


class Submission(BaseModel):
    record: dict[str, Any]
    signature: str
    payload: Any = None


class Bulk(BaseModel):
    records: list[Submission]


def _row(sub: Submission) -> tuple[str, str, str, bytes]:
    env = Envelope.from_dict(sub.record)
    _KEY.verify(env.canonical(), base64.b64decode(sub.signature))
    return env.digest, env.org, sub.signature, str(sub.payload).encode()


def _insert(rows: list[tuple[str, str, str, bytes]]) -> None:
    c = _conn()
    with _lock:
        c.execute("BEGIN IMMEDIATE")
        c.executemany("INSERT OR IGNORE INTO record VALUES (?, ?, ?, ?)", rows)
        c.execute("COMMIT")


app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/records", status_code=202)
def submit(sub: Submission) -> dict[str, str]:
    row = _row(sub)
    _insert([row])
    return {"id": row[0]}


@app.post("/api/v1/records:bulk")
def submit_bulk(bulk: Bulk) -> dict[str, Any]:
    rows = list(_pool.map(_row, bulk.records, chunksize=25))
    _insert(rows)
    items = [{"index": i, "id": r[0], "status": "accepted"} for i, r in enumerate(rows)]
    return {"accepted": len(rows), "rejected": 0, "items": items}  # the gateway's answer, receipts aside
