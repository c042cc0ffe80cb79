"""A real devnet (`provenance devnet up`: embedded node, contracts, demo organisations, gateway), shared by
the SDK and auditors' tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.embedded import free_port
from tests.provenance.devnet_kit import run


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """(state folder, gateway URL, RPC URL) of a devnet running in the background."""
    state = tmp_path_factory.mktemp("devnet") / "state"
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
