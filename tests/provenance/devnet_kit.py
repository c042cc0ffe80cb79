"""Helpers of the tests that drive a real devnet: the `python -m` runner (conftest holds the fixture)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``python -m ARGS`` from the repository, without the caller's devnet, gateway or node settings."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PROV_DEVNET_", "PROV_GW_", "PROV_NODE_"))
    }
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env
    )
