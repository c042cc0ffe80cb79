"""Helpers of the tests that drive a real devnet: the `python -m` runner and a devnet in the background
(conftest holds the session fixture; a test that must not share its chain starts its own)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devnet.embedded import free_port

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``python -m ARGS`` from the repository, without the caller's devnet, gateway or node settings."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PROV_DEVNET_", "PROV_GW_", "PROV_NODE_"))
    }
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env
    )


@contextmanager
def running_devnet(state: Path) -> Iterator[tuple[Path, str, str]]:
    """`provenance devnet up --detach` in ``state`` on free ports: (state, gateway URL, RPC URL)."""
    rpc_port, gw_port = free_port(), free_port()
    up = run(
        "provenance",
        "devnet",
        "up",
        "--detach",
        "--dir",
        str(state),
        "--rpc-port",
        str(rpc_port),
        "--gateway-port",
        str(gw_port),
        timeout=300,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield state, f"http://127.0.0.1:{gw_port}", f"http://127.0.0.1:{rpc_port}"
    finally:
        run("provenance", "devnet", "down", "--dir", str(state), timeout=60)
