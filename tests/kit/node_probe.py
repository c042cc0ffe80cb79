"""Helpers for the node tests: the probe contract and a send-and-wait shortcut."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract

from devnet.engines import EngineHandle

PROBE = json.loads((Path(__file__).resolve().parent.parent / "assets" / "NodeProbe.json").read_text())


def deploy_probe(w3: Web3, handle: EngineHandle) -> Contract:
    """Deploy tests/assets/NodeProbe from the admin account."""
    admin = handle.accounts[0]
    factory = w3.eth.contract(abi=PROBE["abi"], bytecode=PROBE["bytecode"])
    tx = factory.constructor().build_transaction(
        {"from": admin.address, "nonce": w3.eth.get_transaction_count(admin.address, "pending")}
    )
    rcpt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(admin.sign_transaction(tx).raw_transaction)
    )
    assert rcpt["status"] == 1
    return w3.eth.contract(address=rcpt["contractAddress"], abi=PROBE["abi"])


def transfer(h: EngineHandle, *, to: str | None, nonce: int, value: int = 0, **fields: Any) -> dict[str, Any]:
    """A plain transfer on ``h``'s chain (21,000 gas, fees any block takes), to sign; ``fields`` override;
    ``to=None``: a contract creation."""
    return {
        **({"to": to} if to is not None else {}),
        "value": value,
        "gas": 21000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 1,
        "nonce": nonce,
        "chainId": h.chain_id,
        **fields,
    }


def send(w3: Web3, account: Any, fn: Any) -> Any:
    """Build, sign, send a contract call from ``account``; return its receipt."""
    tx = fn.build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address, "pending")}
    )
    return w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    )
