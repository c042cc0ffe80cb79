"""The one way the SDK reaches a chain: a web3.py ``Web3`` over JSON-RPC on HTTP."""

from __future__ import annotations

from web3 import HTTPProvider, Web3


def connect(rpc_url: str, *, timeout: float = 30.0) -> Web3:
    """A ``Web3`` for the node at ``rpc_url``; each request gives up after ``timeout`` seconds."""
    return Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
