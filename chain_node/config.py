"""The node's settings: one pydantic-settings class, env prefix ``PROV_NODE_``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NodeSettings(BaseSettings):
    """Everything ``provenance node run`` can be told; defaults give a working local node."""

    model_config = SettingsConfigDict(env_prefix="PROV_NODE_", env_parse_none_str="none")

    data_dir: Path = Path(".devnet/node")
    genesis: Path | None = None  # default: <data_dir>/genesis.json
    rpc_host: str = "127.0.0.1"
    rpc_port: int = 8545
    block_time: float | None = None  # None or 0: seal on arrival; else seconds between blocks
    # How far ahead of this node's clock a block may be stamped. Timestamps rise by at least a second a
    # block, so a block that would be stamped further ahead waits (at most a second), gathering whatever
    # arrives meanwhile. None: no bound, a block per transaction at once (a test chain, as geth --dev).
    max_clock_lead: float | None = Field(1.0, ge=0)
    # CPU seconds of execution one block may take: py-evm's time per gas varies a thousandfold (a blake2f
    # round costs 1 gas and ~19 us), so gas alone does not bound it. A block takes no more transactions
    # after half of it; a transaction that alone runs longer is dropped (TX_TOO_SLOW). None: unbounded.
    max_exec_time: float | None = Field(1.0, gt=0)
    receipt_wait: float = 2.0  # eth_getTransactionReceipt waits this long for a mempool tx's block
    log_level: str = "warning"
    dev_rpc: bool = False  # evm_increaseTime / evm_mine, for test suites and throw-away devnets only
    sync: Literal["full", "os"] = "full"  # "full": fsync per commit (power-loss safe); "os": kill -9 safe
    # Bounds on what one unauthenticated JSON-RPC request may cost (docs/design/node-rpc-limits.md).
    rpc_max_body_bytes: int = Field(5 << 20, gt=0)  # larger bodies: HTTP 413 (geth: 5 MiB)
    # HTTP: a request head's bytes (431 beyond) and the seconds to send it (408), a body's seconds (408
    # BODY_TIMEOUT), an idle keep-alive connection's seconds (provenance/http_limits.py, as the gateway's)
    rpc_max_header_bytes: int = Field(64 << 10, ge=4096)
    rpc_header_timeout: float = Field(10.0, gt=0)
    rpc_body_timeout: float = Field(30.0, gt=0)
    rpc_keep_alive_timeout: int = Field(5, ge=1)
    rpc_max_json_depth: int = Field(32, gt=0)  # deeper JSON: refused before the decoder sees it
    rpc_batch_limit: int = Field(1000, gt=0)  # requests in one batch (geth: 1000)
    rpc_batch_gas: int = Field(100_000_000, gt=0)  # eth_call/estimateGas gas of one batch, summed
    rpc_batch_response_bytes: int = Field(
        25 << 20, gt=0
    )  # answer bytes of one batch or request (geth's batch)
    rpc_gas_cap: int = Field(50_000_000, gt=0)  # most gas one eth_call/estimateGas may use (--rpc.gascap)
    rpc_evm_timeout: float = Field(5.0, gt=0)  # seconds one eth_call/estimateGas may run (--rpc.evmtimeout)
    rpc_call_workers: int = Field(2, gt=0)  # threads running eth_call/estimateGas beside the event loop
    # Browsers may call the node (the /verify page's eth_call and receipts): the Access-Control-Allow-Origin
    # answered to POST and to the OPTIONS preflight. "*": any page (reads are public, writes are signed
    # transactions); an origin ("https://prov.example.cn"): that page only; none: no CORS headers at all.
    rpc_cors_origin: str | None = "*"
    # Pre-EIP-155 (no chain id) transactions can be replayed on any chain: refused unless enabled.
    allow_unprotected_txs: bool = False

    def genesis_path(self) -> Path:
        """The genesis file in use."""
        return self.genesis or self.data_dir / "genesis.json"
