"""Start anvil (npm ``@foundry-rs/anvil``, installed offline by the repo's package.json) as an engine."""

from __future__ import annotations

import subprocess
import time

import httpx

from devnet.engines import TEST_MNEMONIC, EngineHandle, free_port, test_accounts
from devnet.solc import REPO_ROOT

ANVIL_BIN = REPO_ROOT / "node_modules" / ".bin" / "anvil"
CHAIN_ID = 31337
N_ACCOUNTS = 10
START_TIMEOUT_S = 30.0


def _chain_id(rpc_url: str) -> int | None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        return int(httpx.post(rpc_url, json=body, timeout=1.0).json()["result"], 16)
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def start_anvil(*, port: int | None = None, block_time: float | None = None) -> EngineHandle:
    """Spawn anvil on 127.0.0.1 and return once its JSON-RPC answers; accounts are the test mnemonic's."""
    if not ANVIL_BIN.exists():
        raise FileNotFoundError(f"{ANVIL_BIN} missing: run `make setup` (npm install)")
    port = port or free_port()
    cmd = [
        str(ANVIL_BIN),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--chain-id", str(CHAIN_ID),
        "--accounts", str(N_ACCOUNTS),
        "--mnemonic", TEST_MNEMONIC,
        "--threads", "1",  # the machines this runs on are small and shared with other test suites
        "--quiet",
    ]  # fmt: skip
    if block_time is not None:
        cmd += ["--block-time", str(block_time)]
    process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)  # noqa: S603
    handle = EngineHandle(
        name="anvil",
        rpc_url=f"http://127.0.0.1:{port}",
        chain_id=CHAIN_ID,
        accounts=test_accounts(N_ACCOUNTS),
        process=process,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"anvil exited with code {process.returncode} (port {port} taken?)")
        if _chain_id(handle.rpc_url) == CHAIN_ID:
            return handle
        time.sleep(0.05)  # polling for readiness, not waiting on chain state
    handle.stop()
    raise TimeoutError(f"anvil did not answer on {handle.rpc_url} within {START_TIMEOUT_S} s")
