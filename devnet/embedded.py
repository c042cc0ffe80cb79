"""Start the embedded 国密 chain node as a subprocess (``python -m chain_node``), as tests and devnet do.

Talks to the node only through its CLI and JSON-RPC: devnet never imports the node's insides.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3

from devnet.engines import EngineHandle, test_accounts
from provenance.errors import LedgerError

START_TIMEOUT = 60.0


def free_port() -> int:
    """An unused localhost TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_embedded(
    *,
    data_dir: Path,
    port: int | None = None,
    accounts: list[LocalAccount] | None = None,
    block_time: float | None = None,
    dev_rpc: bool = True,
) -> EngineHandle:
    """Start (or restart, keeping its chain) a node over ``data_dir``; return once its RPC answers.

    ``dev_rpc`` enables ``evm_increaseTime``/``evm_mine`` for test suites; a devnet anyone can reach
    turns it off, or any caller could move the chain's clock (and expire prescriptions).

    A fresh ``data_dir`` gets a genesis whose validator key is generated there (0600) and which funds
    and permits ``accounts`` (default: the 10 public test accounts), ``accounts[0]`` being the admin who
    may create contracts. An existing one is reused as is.
    """
    accounts = accounts if accounts is not None else test_accounts(10)
    data_dir.mkdir(parents=True, exist_ok=True)
    genesis = data_dir / "genesis.json"
    if not genesis.exists():
        cmd = [sys.executable, "-m", "chain_node", "init", "--out", str(genesis), "--data-dir", str(data_dir)]
        cmd += ["--admin", accounts[0].address]
        for a in accounts[1:]:
            cmd += ["--alloc", a.address]
        subprocess.run(cmd, check=True, capture_output=True)  # noqa: S603 - our own CLI, fixed argv
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "chain_node",
        "run",
        "--data-dir",
        str(data_dir),
        "--genesis",
        str(genesis),
        "--rpc-port",
        str(port),
    ]
    if dev_rpc:  # test accounts, throw-away chain: let anvil-style suites move time forward
        cmd.append("--dev-rpc")
    if block_time:
        cmd += ["--block-time", str(block_time)]
    log = (data_dir / "node.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    log.close()
    url = f"http://127.0.0.1:{port}"
    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 5}))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (data_dir / "node.log").read_text(errors="replace")[-2000:]
            raise LedgerError(f"embedded node exited with {proc.returncode}: {tail}")
        if w3.is_connected():
            return EngineHandle(
                name="embedded", rpc_url=url, chain_id=w3.eth.chain_id, accounts=accounts, process=proc
            )
        time.sleep(0.1)
    proc.kill()
    raise LedgerError(f"embedded node did not answer on {url} within {START_TIMEOUT:.0f} s")
