"""Instances: SQLite is single-instance and a second gateway on its file says so; on PostgreSQL several
instances serve and one owns the workers (the kill -9 failover is tests/security/test_failover.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devnet.embedded import free_port
from tests.kit.gateway import Harness

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
