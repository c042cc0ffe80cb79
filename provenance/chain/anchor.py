"""The live anchor step: is the checkpoint's (size, root) anchored in ``ProvenanceLog`` on that chain, on
one history with the anchors around it?

A checkpoint anchored on chain may still belong to a fork: a ``ProvenanceLog`` that accepts any root for a
larger size lets a log operator anchor a rewritten history on top of the real one, and then both pass a
``rootAt`` lookup. So the checker also asks for the consistency proofs (RFC 9162, SM3) from the anchored
checkpoint just before this one and to the one just after, and checks them against the roots the chain
holds. Where the contract itself checks a consistency proof before it accepts an anchor, every anchor is on
one linear history and these proofs always verify; where it does not, they catch a fork next to the
checkpoint (``provenance audit log`` checks every link). See ``docs/design/verify-cli.md``.
"""

from __future__ import annotations

from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.exceptions import TransactionNotFound, Web3Exception

from provenance.abc import ConsistencyProofs
from provenance.chain.connect import connect
from provenance.chain.contracts import at
from provenance.errors import AnchorInvalid, ConsistencyInvalid, HistoryInconsistent, ProvenanceError
from provenance.log.bundle import Anchor
from provenance.log.checkpoint import Checkpoint
from provenance.log.merkle import verify_consistency


class ChainAnchorChecker:
    """Checks anchors against the chain through web3.py (``provenance.verification.verify.AnchorChecker``)."""

    def __init__(
        self,
        w3: Web3,
        *,
        contract: str | None = None,
        chain_id: int | None = None,
        proofs: ConsistencyProofs | None = None,
    ) -> None:
        self._w3 = w3
        self._contract = Web3.to_checksum_address(contract) if contract else None
        self._chain_id = chain_id
        self._proofs = proofs
        self._served: int | None = None
        # Anchors never change once written: (address, index) -> (size, root), read once.
        self._anchors: dict[tuple[str, int], tuple[int, bytes]] = {}

    @classmethod
    def from_rpc(
        cls,
        rpc_url: str,
        *,
        contract: str | None = None,
        chain_id: int | None = None,
        proofs: ConsistencyProofs | None = None,
        timeout: float = 10.0,
    ) -> ChainAnchorChecker:
        """A checker over JSON-RPC; ``contract`` and ``chain_id`` pin the ``ProvenanceLog`` (recommended),
        ``proofs`` serves the consistency proofs between anchored checkpoints (the gateway)."""
        return cls(connect(rpc_url, timeout=timeout), contract=contract, chain_id=chain_id, proofs=proofs)

    def check(self, anchor: Anchor, checkpoint: Checkpoint) -> None:
        """Return ``None`` if the chain holds the anchor, else raise :class:`AnchorInvalid` saying why."""
        try:
            self._check(anchor, checkpoint)
        except AnchorInvalid:
            raise
        except (Web3Exception, OSError, ValueError) as exc:
            raise AnchorInvalid(f"cannot look the anchor up on chain: {exc}") from exc
        except ProvenanceError as exc:  # the proof source's own failures (unreachable, refused)
            raise AnchorInvalid(f"cannot get a consistency proof: {exc.message}") from exc

    def _check(self, anchor: Anchor, checkpoint: Checkpoint) -> None:
        if self._served is None:
            self._served = int(self._w3.eth.chain_id)
        served = self._served
        if self._chain_id is not None and served != self._chain_id:
            raise AnchorInvalid(f"the node serves chain {served}, not the pinned chain {self._chain_id}")
        if anchor.chain_id != served:
            raise AnchorInvalid(f"anchor is on chain {anchor.chain_id}, the node serves chain {served}")
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
        self._check_history(log, checkpoint)

    def _anchor_at(self, log: Contract, index: int) -> tuple[int, bytes]:
        key = (log.address, index)
        if key not in self._anchors:
            a = log.functions.anchorAt(index).call()
            self._anchors[key] = (int(a[0]), bytes(a[1]))
        return self._anchors[key]

    def _check_history(self, log: Contract, checkpoint: Checkpoint) -> None:
        """The anchors just before and just after ``checkpoint``'s size extend one another through it."""
        count = int(log.functions.anchorCount().call())
        lo, hi = 0, count  # sizes strictly increase with the index: find the checkpoint's by bisection
        while lo < hi:
            mid = (lo + hi) // 2
            if self._anchor_at(log, mid)[0] < checkpoint.size:
                lo = mid + 1
            else:
                hi = mid
        if lo >= count or self._anchor_at(log, lo) != (checkpoint.size, checkpoint.root):
            raise AnchorInvalid(f"tree size {checkpoint.size} is not among the anchors of {log.address}")
        cp = (checkpoint.size, checkpoint.root)
        links = []
        if lo > 0:
            links.append((self._anchor_at(log, lo - 1), cp))
        if lo + 1 < count:
            links.append((cp, self._anchor_at(log, lo + 1)))
        if links and self._proofs is None:
            raise AnchorInvalid(
                f"tree size {checkpoint.size} has anchors around it; without consistency proofs (pass the "
                "gateway) the checkpoint cannot be shown to be on their history"
            )
        for (size1, root1), (size2, root2) in links:
            assert self._proofs is not None
            proof = list(self._proofs.consistency_proof(size1, size2))
            try:
                verify_consistency(size1, size2, root1, root2, proof)
            except ConsistencyInvalid as exc:
                raise HistoryInconsistent(
                    f"the anchored checkpoints of sizes {size1} and {size2} are not one history: "
                    f"{exc.message} (the log was forked; `provenance audit log` names every such link)",
                    details={"first": size1, "second": size2},
                ) from exc
