"""A running Ethereum-compatible engine (our embedded node or anvil), as tests, devnet and benches see it."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass, field

from eth_account import Account
from eth_account.signers.local import LocalAccount

# Hardhat/anvil's public development mnemonic: these accounts are TEST FIXTURES, known to everyone,
# and must never hold anything of value. The devnet generates its own keys instead.
TEST_MNEMONIC = "test test test test test test test test test test test junk"

Account.enable_unaudited_hdwallet_features()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the usual bind-to-0 race is acceptable for dev/test)."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def test_accounts(n: int = 10) -> list[LocalAccount]:
    """The first ``n`` accounts of the public test mnemonic (anvil's defaults)."""
    return [Account.from_mnemonic(TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(n)]


@dataclass
class EngineHandle:
    """A started engine. ``accounts[0]`` is the admin/deployer; all are funded and permitted."""

    name: str  # "embedded" | "anvil"
    rpc_url: str
    chain_id: int
    accounts: list[LocalAccount]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop the engine process (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is not None:
            stop_process(self.process, 10)


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Stop a child process: SIGTERM, then SIGKILL after ``timeout`` s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
