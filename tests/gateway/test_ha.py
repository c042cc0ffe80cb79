"""Instances: SQLite is single-instance and a second gateway on its file says so; on PostgreSQL several
instances serve and one owns the workers (the kill -9 failover is tests/security/test_failover.py)."""

from __future__ import annotations

import os
import subprocess
import sys
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
