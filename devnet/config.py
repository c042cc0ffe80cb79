"""The devnet's settings: one pydantic-settings class, environment prefix ``PROV_DEVNET_``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from devnet.solc import REPO_ROOT

Engine = Literal["embedded", "anvil"]


class DevnetSettings(BaseSettings):
    """Everything ``provenance devnet`` can be told; the defaults are ``make run``'s network."""

    model_config = SettingsConfigDict(env_prefix="PROV_DEVNET_", extra="ignore")

    dir: Path = REPO_ROOT / ".devnet"
    engine: Engine = "embedded"
    rpc_port: int = Field(default=8545, ge=1, le=65535)
    gateway_port: int = Field(default=8000, ge=1, le=65535)
    block_time: float | None = Field(
        default=None, ge=0, description="seconds between blocks; None: on arrival"
    )
    witness_port: int | None = Field(
        default=None, ge=1, le=65535, description="first witness's port (then +1, +2); None: free ports"
    )
    start_gateway: bool = True  # with `python -m gateway serve`, when the gateway is installed
    demo_data: bool = True  # a new network's first run records each domain's demo (Workflow.demo)
    start_timeout: float = Field(
        default=120.0, gt=0, description="seconds to wait for a process or a detached up"
    )
    stop_timeout: float = Field(default=10.0, gt=0, description="seconds between SIGTERM and SIGKILL")
    verbose: bool = False  # tracebacks with error lines
