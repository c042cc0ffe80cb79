"""The embedded node as an attacker meets it: a real ``python -m chain_node run`` process, raw HTTP bodies.

``start_node(dir, rpc_evm_timeout="2")`` passes settings as the operator would, through the node's
``PROV_NODE_*`` environment (its pydantic-settings class); dev RPC stays off, as on a devnet anyone reaches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from devnet.embedded import start_embedded
from devnet.engines import EngineHandle

# Bytecode run by eth_call without a `to` (as init code), so that no deployment is needed.
LOOP = "0x5b600056"  # JUMPDEST PUSH1 0 JUMP: loops until its gas is gone (~0.2 µs of py-evm per gas)
BURN_ALL = "0xfe"  # INVALID: an exceptional halt burns all the call's gas at once
RETURN_42 = "0x602a60005260206000f3"  # MSTORE(0, 42) RETURN(0, 32)
BLAKE2F = "0x" + "00" * 19 + "09"  # precompile; its gas is its round count, each round pure Python here


def blake2f_input(rounds: int) -> str:
    """EIP-152 input: rounds, h, m, t, final flag."""
    return "0x" + (rounds.to_bytes(4, "big") + bytes(64 + 128 + 16) + b"\x01").hex()


def start_node(data_dir: Path, **settings: str) -> EngineHandle:
    """Start a node over ``data_dir`` with ``settings`` (NodeSettings field names, string values)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in settings.items():
            mp.setenv(f"PROV_NODE_{name.upper()}", value)
        return start_embedded(data_dir=data_dir, dev_rpc=False)  # the env is read when the node starts


def post(node: EngineHandle, body: bytes | str | Any, *, timeout: float = 30.0) -> httpx.Response:
    """POST one body (bytes and str as they are, anything else as JSON) to the node."""
    content = body if isinstance(body, bytes | str) else json.dumps(body)
    return httpx.post(
        node.rpc_url, content=content, headers={"content-type": "application/json"}, timeout=timeout
    )


def request(method: str, params: list[Any] | None = None, rid: Any = 1) -> dict[str, Any]:
    """A JSON-RPC 2.0 request object."""
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params or []}


def rpc_error(resp: httpx.Response) -> dict[str, Any]:
    """The error object of a single JSON-RPC answer (fails if there is none)."""
    body = resp.json()
    assert isinstance(body, dict) and "error" in body, body
    err: dict[str, Any] = body["error"]
    return err


def assert_alive(node: EngineHandle) -> None:
    """The node process runs and answers eth_blockNumber."""
    assert node.process is not None and node.process.poll() is None, "the node process died"
    r = post(node, request("eth_blockNumber"), timeout=10)
    assert r.status_code == 200 and r.json()["result"].startswith("0x"), r.text
