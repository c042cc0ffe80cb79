"""The live anchor step: is the checkpoint's (size, root) anchored in ``ProvenanceLog`` on that chain?"""

from __future__ import annotations

from typing import Any

from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3Exception

from provenance.bundle import Anchor
from provenance.checkpoint import Checkpoint
from provenance.contracts import at
from provenance.errors import AnchorInvalid


class ChainAnchorChecker:
    """Checks anchors against the chain through web3.py (``provenance.verify.AnchorChecker``)."""

    def __init__(self, w3: Web3, *, contract: str | None = None, chain_id: int | None = None) -> None:
        self._w3 = w3
        self._contract = Web3.to_checksum_address(contract) if contract else None
        self._chain_id = chain_id

    @classmethod
    def from_rpc(
        cls, rpc_url: str, *, contract: str | None = None, timeout: float = 10.0
    ) -> ChainAnchorChecker:
        """A checker over JSON-RPC; ``contract`` pins the ``ProvenanceLog`` address (recommended)."""
        return cls(Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout})), contract=contract)

    def check(self, anchor: Anchor, checkpoint: Checkpoint) -> None:
        """Return ``None`` if the chain holds the anchor, else raise :class:`AnchorInvalid` saying why."""
        try:
            self._check(anchor, checkpoint)
        except AnchorInvalid:
            raise
        except (Web3Exception, OSError, ValueError) as exc:
            raise AnchorInvalid(f"cannot look the anchor up on chain: {exc}") from exc

    def _check(self, anchor: Anchor, checkpoint: Checkpoint) -> None:
        chain_id = self._chain_id if self._chain_id is not None else self._w3.eth.chain_id
        self._chain_id = chain_id
        if anchor.chain_id != chain_id:
            raise AnchorInvalid(f"anchor is on chain {anchor.chain_id}, the node serves chain {chain_id}")
        address = Web3.to_checksum_address(anchor.contract)
        if self._contract is not None and address != self._contract:
            raise AnchorInvalid(
                f"anchor names contract {address}, not the pinned ProvenanceLog {self._contract}"
            )
        log = at(self._w3, "ProvenanceLog", address)
        root: bytes = bytes(log.functions.rootAt(checkpoint.size).call())
        if root == b"\x00" * 32:
            raise AnchorInvalid(f"tree size {checkpoint.size} is not anchored in ProvenanceLog {address}")
        if root != checkpoint.root:
            raise AnchorInvalid(
                f"ProvenanceLog holds a different root for tree size {checkpoint.size}",
                details={"chain_root": root.hex(), "checkpoint_root": checkpoint.root.hex()},
            )
        try:
            receipt: Any = self._w3.eth.get_transaction_receipt(anchor.tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound as exc:
            raise AnchorInvalid(f"anchor transaction {anchor.tx_hash} is not on chain") from exc
        if (
            receipt["blockNumber"] != anchor.block_number
            or receipt["blockHash"].to_0x_hex() != anchor.block_hash
        ):
            raise AnchorInvalid(
                "anchor transaction is in another block than the bundle says",
                details={"block_number": receipt["blockNumber"]},
            )
        events = log.events.Anchored().process_receipt(receipt)
        if not any(
            e["args"]["treeSize"] == checkpoint.size and bytes(e["args"]["root"]) == root for e in events
        ):
            raise AnchorInvalid(f"transaction {anchor.tx_hash} did not anchor tree size {checkpoint.size}")
