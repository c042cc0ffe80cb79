"""The node's interfaces (py-evm keeps its own in ``eth/abc.py``)."""

from __future__ import annotations

from typing import Protocol

from eth.abc import SignedTransactionAPI


class Executable(Protocol):
    """A transaction to execute in a block, its hash and sender already known (the mempool's entries)."""

    @property
    def hash(self) -> bytes:
        """Transaction hash."""
        ...

    tx: SignedTransactionAPI
    sender: bytes
