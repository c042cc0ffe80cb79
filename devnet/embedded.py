"""Start the embedded 国密 chain node as a subprocess (``python -m chain_node``), as tests and devnet do.

Talks to the node only through its CLI and JSON-RPC: devnet never imports the node's insides.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import rlp  # type: ignore[import-untyped,unused-ignore]
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3

from devnet.engines import EngineHandle, free_port, test_accounts
from provenance.errors import LedgerError

START_TIMEOUT = 60.0


def create_address(sender: str, nonce: int) -> str:
    """The address of the contract that ``sender`` creates with ``nonce`` (CREATE, not CREATE2)."""
    return Web3.to_checksum_address(Web3.keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:])


def init_genesis(data_dir: Path, accounts: list[LocalAccount], *, registry_permits: bool = False) -> Path:
    """Write ``data_dir/genesis.json`` (and the validator key, 0600) through the node's own ``init``.

    ``accounts`` are funded and permitted, ``accounts[0]`` is the admin who may create contracts. With
    ``registry_permits`` the node also consults OrgRegistry for other senders (organisations' accounts,
    created after genesis): the registry is the admin's first contract (``deploy_network`` deploys it
    first), so its address is known before it exists.
    """
    genesis = data_dir / "genesis.json"
    cmd = [sys.executable, "-m", "chain_node", "init", "--out", str(genesis), "--data-dir", str(data_dir)]
    cmd += ["--admin", accounts[0].address]
    if registry_permits:
        cmd += ["--permission-contract", create_address(accounts[0].address, 0)]
    for a in accounts[1:]:
        cmd += ["--alloc", a.address]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if done.returncode != 0:
        raise LedgerError(f"chain_node init failed: {done.stderr.strip() or done.stdout.strip()}")
    return genesis


def start_embedded(
    *,
    data_dir: Path,
    port: int | None = None,
    accounts: list[LocalAccount] | None = None,
    block_time: float | None = None,
    dev_rpc: bool = True,
    registry_permits: bool = False,
    bounded_clock: bool = False,
) -> EngineHandle:
    """Start (or restart, keeping its chain) a node over ``data_dir``; return once its RPC answers.

    ``dev_rpc`` enables ``evm_increaseTime``/``evm_mine`` for test suites; a devnet anyone can reach
    turns it off, or any caller could move the chain's clock (and expire prescriptions).

    ``bounded_clock`` keeps block timestamps within the node's default lead of its clock (a devnet, as in
    production: a block waits, gathering transactions, rather than be stamped ahead). Without it (test
    chains, benches) every transaction gets its block at once and the chain's clock runs ahead under
    bursts, a second a block, as geth's dev mode's does.

    A fresh ``data_dir`` gets a genesis (:func:`init_genesis`) for ``accounts`` (default: the 10 public
    test accounts); ``registry_permits`` for a network ``deploy_network`` will deploy, whose
    organisations transact. An existing genesis is reused as is.
    """
    accounts = accounts if accounts is not None else test_accounts(10)
    data_dir.mkdir(parents=True, exist_ok=True)
    genesis = data_dir / "genesis.json"
    if not genesis.exists():
        init_genesis(data_dir, accounts, registry_permits=registry_permits)
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
    if not bounded_clock:
        cmd += ["--max-clock-lead", "none"]
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
