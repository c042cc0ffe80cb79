"""Instances: SQLite is single-instance and a second gateway on its file says so; on PostgreSQL several
instances serve and one owns the workers (the kill -9 failover is tests/security/test_failover.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from devnet.embedded import free_port
from gateway.core.db import WORKER_LEASE_KEY
from tests.kit.gateway import Harness, Server, hj212_packets

REPO = Path(__file__).resolve().parents[2]


def _env(harness: Harness) -> dict[str, str]:
    st = harness.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROV_GW_")}
    env |= {
        "PROV_GW_DATABASE_URL": st.database_url,
        "PROV_GW_KEK_FILE": str(st.kek_path),
        "PROV_GW_MANIFEST_PATH": str(st.manifest_path),
        "PROV_GW_RPC_URL": str(st.rpc_url),
    }
    return env


def test_a_second_gateway_on_a_sqlite_file_refuses_to_start(harness: Harness, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite only: on PostgreSQL a second instance is a standby")
    cmd = [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(free_port())]
    done = subprocess.run(cmd, env=_env(harness), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("gateway: GATEWAY_ALREADY_RUNNING: another gateway (pid "), line
    assert "SQLite is single-instance" in line
    # The first one was not disturbed: it still serves and owns its workers.
    health = harness.http.get("/healthz").json()
    assert health["workers"] == "owner"


def test_the_single_postgresql_instance_owns_the_workers(harness: Harness, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL only")
    assert harness.wait(lambda: harness.http.get("/healthz").json()["workers"] == "owner", what="owner")
    metrics = harness.http.get("/metrics", headers={"Authorization": f"Bearer {harness.tokens['auditor']}"})
    assert "prov_gw_worker_owner 1" in metrics.text


def test_an_owner_that_loses_its_lease_connection_stops_and_one_instance_owns(
    harness: Harness, backend: str
) -> None:
    """The owner's lease session ended under it (a network cut, an administrator's pg_terminate_backend):
    it stops its workers at once, one instance (never two) owns the lease again, and records go on being
    logged and anchored."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL only")
    second = Server(harness.settings)  # a standby on the same database
    urls = [harness.server.url, second.url]
    try:

        def owners() -> list[str]:
            return [u for u in urls if httpx.get(f"{u}/healthz", timeout=10).json()["workers"] == "owner"]

        assert harness.wait(lambda: len(owners()) == 1, what="one owner")
        admin = create_engine(harness.settings.database_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as c:
                ended = c.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND granted AND classid = :hi AND objid = :lo AND objsubid = 1 AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())"
                    ),
                    {"hi": WORKER_LEASE_KEY >> 32, "lo": WORKER_LEASE_KEY & 0xFFFFFFFF},
                ).all()
        finally:
            admin.dispose()
        assert len(ended) == 1  # the lease had one holder
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # never two owners while it moves
            now = owners()
            assert len(now) <= 1, now
            time.sleep(0.05)
        assert harness.wait(lambda: len(owners()) == 1, what="an owner again")
        rid = harness.client("station-1").submit("env.reading", hj212_packets(1)[0]).json()["id"]
        harness.wait_status(rid, "anchored", timeout=30)
    finally:
        second.stop()
    assert harness.wait(lambda: harness.http.get("/healthz").json()["workers"] == "owner", what="owner")


def test_an_api_only_instance_serves_beside_the_sqlite_owner(
    harness: Harness, backend: str, tmp_path: Path
) -> None:
    """SQLite: a second process with ``api_only`` on the owner's file takes no instance lock, accepts while
    the owner accepts too (their write transactions queue on the file's lock: none fails), and its gauges
    follow what the owner logs and anchors (its backlog falls back to 0 instead of only growing)."""
    if backend != "sqlite":
        pytest.skip("SQLite only: on PostgreSQL every instance serves and one owns the workers")
    port = free_port()
    cmd = [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(port)]
    env = _env(harness) | {"PROV_GW_API_ONLY": "true", "PROV_GW_LEASE_POLL": "0.2"}
    log = tmp_path / "api-only.log"
    with log.open("wb") as out:  # the child holds its own copy
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    station = harness.client("station-1")
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=station.headers, timeout=60)
        harness.wait(lambda: _up(api), timeout=60, what="the API-only instance")
        packets = hj212_packets(40)
        bodies = [station.body("env.reading", p) for p in packets]
        answers: dict[int, httpx.Response] = {}

        def send(http: httpx.Client, part: range) -> None:
            for i in part:
                answers[i] = http.post("/api/v1/records", json=bodies[i])

        owner = httpx.Client(base_url=harness.server.url, headers=station.headers, timeout=60)
        threads = [
            threading.Thread(target=send, args=(owner, range(0, 40, 2))),
            threading.Thread(target=send, args=(api, range(1, 40, 2))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert sorted(answers) == list(range(40))
        assert {i: r.status_code for i, r in answers.items() if r.status_code != 202} == {}
        ids = [answers[i].json()["id"] for i in range(40)]
        assert all(
            harness.wait(lambda rid=rid: harness.record(rid)["status"] == "anchored", what="anchored")
            for rid in ids
        )
        health = api.get("/healthz").json()
        assert health["workers"] == "standby"  # it never ran the log's workers
        assert harness.wait(lambda: api.get("/healthz").json()["backlog"] == 0, what="the gauges polled")
        assert api.get("/healthz").json()["anchored_size"] >= len(ids)
        assert harness.http.get("/healthz").json()["workers"] == "owner"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    err = log.read_text()
    assert "database is locked" not in err and "Traceback" not in err, err[-2000:]


def _up(http: httpx.Client) -> bool:
    try:
        return http.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False
