"""The node's settings: one pydantic-settings class, env prefix ``PROV_NODE_``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class NodeSettings(BaseSettings):
    """Everything ``provenance node run`` can be told; defaults give a working local node."""

    model_config = SettingsConfigDict(env_prefix="PROV_NODE_")

    data_dir: Path = Path(".devnet/node")
    genesis: Path | None = None  # default: <data_dir>/genesis.json
    rpc_host: str = "127.0.0.1"
    rpc_port: int = 8545
    block_time: float | None = None  # None or 0: seal on arrival; else seconds between blocks
    receipt_wait: float = 2.0  # eth_getTransactionReceipt waits this long for a mempool tx's block
    log_level: str = "warning"
    dev_rpc: bool = False  # evm_increaseTime / evm_mine, for test suites and throw-away devnets only
    sync: Literal["full", "os"] = "full"  # "full": fsync per commit (power-loss safe); "os": kill -9 safe

    def genesis_path(self) -> Path:
        """The genesis file in use."""
        return self.genesis or self.data_dir / "genesis.json"
