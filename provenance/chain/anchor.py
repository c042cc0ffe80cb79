"""The live anchor step: is the checkpoint's (size, root) anchored in ``ProvenanceLog`` on that chain, on
one history with the anchors around it?

A checkpoint anchored on chain may still belong to a fork: a ``ProvenanceLog`` that accepts any root for a
larger size lets a log operator anchor a rewritten history on top of the real one, and then both pass a
``rootAt`` lookup. So the checker also asks for the consistency proofs (RFC 9162, SM3) from the anchored
checkpoint just before this one and to the one just after, and checks them against the roots the chain
holds. Where the contract itself checks a consistency proof before it accepts an anchor, every anchor is on
one linear history and these proofs always verify; where it does not, they catch a fork next to the
checkpoint (``provenance audit log`` checks every link).

An RPC endpoint can lie: a fake one answers ``rootAt``, the receipt and the anchors for a fork it made up.
With the chain's sealing keys pinned (the trust file's ``chain.validators``), the checker does not take the
endpoint's word for the anchoring block: the block's seal must verify under a pinned key, its header must
hash to the bundle's block hash, and the receipts it serves must hash to the sealed receipts root, so the
``Anchored`` event it reads is one the validators sealed (``provenance/chain/block_proof.py``). Without
pinned sealing keys (anvil, Besu QBFT, a trust file without them) the step is a *warning* naming what was
taken on the endpoint's word, never *passed*. See ``docs/design/verify-cli.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import TransactionNotFound, Web3Exception

from provenance.abc import ConsistencyProofs
from provenance.chain.block_proof import receipts_root, sealed_header
from provenance.chain.connect import connect
from provenance.chain.contracts import at
from provenance.client.transport import AnswerOutOfBounds
from provenance.crypto import SM2PublicKey
from provenance.errors import (
    AnchorInvalid,
    BatchAnchorInvalid,
    ConsistencyInvalid,
    ConsistencyProofMalformed,
    FormatError,
    HistoryInconsistent,
    ProvenanceError,
)
from provenance.log.bundle import Anchor, BatchAnchor
from provenance.log.checkpoint import Checkpoint
from provenance.log.merkle import HASH_SIZE, consistency_proof_length, verify_consistency
from provenance.verification.trust import TrustStore

UNPINNED = (
    "looked up on an RPC endpoint taken on its word: no sealing keys are pinned (the trust file's "
    "chain.validators), so nothing proves that its block, receipt and anchors are the chain's"
)


class ChainAnchorChecker:
    """Checks anchors against the chain through web3.py (``provenance.verification.verify.AnchorChecker``)."""

    def __init__(
        self,
        w3: Web3,
        *,
        contract: str | None = None,
        chain_id: int | None = None,
        proofs: ConsistencyProofs | None = None,
        seal_keys: Sequence[SM2PublicKey] = (),
        give_up_after_bound: bool = False,
    ) -> None:
        self._w3 = w3
        self._contract = Web3.to_checksum_address(contract) if contract else None
        self._chain_id = chain_id
        self._proofs = proofs
        self._seal_keys = tuple(seal_keys)
        self._served: int | None = None
        # Anchors never change once written: (address, index) -> (size, root), read once.
        self._anchors: dict[tuple[str, int], tuple[int, bytes]] = {}
        # Blocks proven sealed: block hash -> their receipts, which hash to the sealed receipts root.
        self._proven: dict[bytes, list[Any]] = {}
        # A command checking many anchors stops asking after one answer out of its bounds (too slow, too
        # large; the chain's or the proof source's): else a hostile endpoint makes every anchor cost the whole
        # bound, one after another. Each later anchor fails at once, saying why.
        self._give_up_after_bound = give_up_after_bound
        self._gave_up: str | None = None

    @classmethod
    def from_rpc(
        cls,
        rpc_url: str,
        *,
        contract: str | None = None,
        chain_id: int | None = None,
        proofs: ConsistencyProofs | None = None,
        seal_keys: Sequence[SM2PublicKey] = (),
        timeout: float = 10.0,
        give_up_after_bound: bool = False,
    ) -> ChainAnchorChecker:
        """A checker over JSON-RPC; ``contract`` and ``chain_id`` pin the ``ProvenanceLog`` (recommended),
        ``proofs`` serves the consistency proofs between anchored checkpoints (the gateway), ``seal_keys``
        are the chain's sealing keys that prove the endpoint's blocks; ``give_up_after_bound``: after one
        answer out of its bounds, fail every later anchor at once (a command checking many)."""
        w3 = connect(rpc_url, timeout=timeout)
        return cls(
            w3,
            contract=contract,
            chain_id=chain_id,
            proofs=proofs,
            seal_keys=seal_keys,
            give_up_after_bound=give_up_after_bound,
        )

    @classmethod
    def for_trust(
        cls,
        rpc_url: str,
        trust: TrustStore | None,
        *,
        proofs: ConsistencyProofs | None = None,
        timeout: float = 10.0,
        give_up_after_bound: bool = False,
    ) -> ChainAnchorChecker:
        """A checker over JSON-RPC with all ``trust`` pins: chain id, ``ProvenanceLog``, sealing keys."""
        return cls.from_rpc(
            rpc_url,
            contract=trust.provenance_log if trust else None,
            chain_id=trust.chain_id if trust else None,
            seal_keys=trust.seal_keys if trust else (),
            proofs=proofs,
            timeout=timeout,
            give_up_after_bound=give_up_after_bound,
        )

    def check(self, anchor: Anchor, checkpoint: Checkpoint) -> str | None:
        """Return ``None`` if the chain holds the anchor, proven by pinned sealing keys; a warning if it
        holds by the word of an endpoint no pinned key proves; raise :class:`AnchorInvalid` saying why not."""
        self._not_given_up(AnchorInvalid)
        try:
            self._check(anchor, checkpoint)
        except AnchorInvalid:
            raise
        except (AnswerOutOfBounds, requests.Timeout) as exc:
            raise self._give_up(AnchorInvalid, exc) from exc
        except (Web3Exception, OSError, ValueError) as exc:
            raise AnchorInvalid(f"cannot look the anchor up on chain: {exc}") from exc
        except ProvenanceError as exc:  # the proof source's own failures (unreachable, refused)
            raise AnchorInvalid(f"cannot get a consistency proof: {exc.message}") from exc
        return None if self._seal_keys else UNPINNED

    def _not_given_up(self, error: type[AnchorInvalid | BatchAnchorInvalid]) -> None:
        if self._gave_up is not None:
            raise error(f"not looked up: {self._gave_up}; the endpoints are not asked again in this run")

    def _give_up(
        self, error: type[AnchorInvalid | BatchAnchorInvalid], exc: Exception
    ) -> AnchorInvalid | BatchAnchorInvalid:
        """The failure of an answer out of its bounds, remembered when this checker gives up after one."""
        why = exc.message if isinstance(exc, ProvenanceError) else f"no answer in time ({exc})"
        if self._give_up_after_bound:
            self._gave_up = why
        return error(f"cannot look the anchor up: {why}")

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
        if self._seal_keys:
            receipt = self._sealed_receipt(anchor)
        # Only the pinned contract's logs: any contract can emit an event of the same shape.
        own = {**receipt, "logs": [lg for lg in receipt["logs"] if lg["address"] == address]}
        events = log.events.Anchored().process_receipt(own)
        if not any(
            e["args"]["treeSize"] == checkpoint.size and bytes(e["args"]["root"]) == root for e in events
        ):
            raise AnchorInvalid(f"transaction {anchor.tx_hash} did not anchor tree size {checkpoint.size}")
        self._check_history(log, checkpoint)

    def check_batch(
        self, anchor: BatchAnchor, kind: str, subject: str, batch: Mapping[str, Any]
    ) -> str | None:
        """Return ``None`` if the chain holds the batch anchor, proven by pinned sealing keys; a warning if by
        the word of an unproven endpoint; raise :class:`BatchAnchorInvalid` saying why not. ``batch`` is
        the signed batch payload of a ``kind`` record of ``subject``: the anchor event must say what it
        says (its domain's ``RootSpec``: root, subject and fields)."""
        self._not_given_up(BatchAnchorInvalid)
        try:
            self._check_batch(anchor, kind, subject, batch)
        except BatchAnchorInvalid:
            raise
        except AnchorInvalid as exc:  # the sealed-block proof's failures, for this step
            raise BatchAnchorInvalid(exc.message, details=exc.details) from exc
        except (AnswerOutOfBounds, requests.Timeout) as exc:
            raise self._give_up(BatchAnchorInvalid, exc) from exc
        except (Web3Exception, OSError, ValueError) as exc:
            raise BatchAnchorInvalid(f"cannot look the batch anchor up on chain: {exc}") from exc
        return None if self._seal_keys else UNPINNED

    def _check_batch(self, anchor: BatchAnchor, kind: str, subject: str, batch: Mapping[str, Any]) -> None:
        from provenance.audit import subject_id
        from provenance.audit_roots import same_value
        from provenance.domains import root_specs

        if self._served is None:
            self._served = int(self._w3.eth.chain_id)
        if anchor.chain_id != self._served:
            raise BatchAnchorInvalid(
                f"batch anchor is on chain {anchor.chain_id}, the node serves {self._served}"
            )
        spec = next((s for s in root_specs() if s.kind == kind), None)
        if spec is None:
            raise BatchAnchorInvalid(f"no installed domain anchors the roots of {kind} records")
        try:
            receipt: Any = self._w3.eth.get_transaction_receipt(anchor.tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound as exc:
            raise BatchAnchorInvalid(f"batch anchor transaction {anchor.tx_hash} is not on chain") from exc
        if (
            receipt["status"] != 1
            or receipt["blockNumber"] != anchor.block_number
            or receipt["blockHash"].to_0x_hex() != anchor.block_hash
        ):
            raise BatchAnchorInvalid(
                "batch anchor transaction failed or is in another block than the bundle says",
                details={"block_number": receipt["blockNumber"], "status": receipt["status"]},
            )
        if self._seal_keys:
            receipt = self._sealed_receipt(anchor)
        address = Web3.to_checksum_address(anchor.contract)
        own = {**receipt, "logs": [lg for lg in receipt["logs"] if lg["address"] == address]}
        events = at(self._w3, spec.contract, address).events[spec.event]().process_receipt(own)
        sid = subject_id(subject)
        if not any(
            bytes(e["args"][spec.root]) == anchor.root
            and bytes(e["args"][spec.subject]) == sid
            and all(same_value(e["args"][name], batch.get(member)) for name, member in spec.fields.items())
            for e in events
        ):
            raise BatchAnchorInvalid(
                f"transaction {anchor.tx_hash} holds no {spec.contract}.{spec.event} of this batch "
                "(its root, subject and signed fields) from the contract the bundle names"
            )

    def _sealed_receipt(self, anchor: Anchor | BatchAnchor) -> Mapping[str, Any]:
        """The anchor transaction's receipt, proven to be in the block the pinned validators sealed."""
        block_hash = bytes.fromhex(anchor.block_hash[2:])
        receipts = self._proven.get(block_hash)
        if receipts is None:
            number = anchor.block_number
            resp = self._w3.provider.make_request("gm_getSeal", [hex(number)])  # type: ignore[arg-type]
            seal = resp.get("result") if isinstance(resp, Mapping) else None
            if seal is None:
                why = resp.get("error", "no seal") if isinstance(resp, Mapping) else "no answer"
                raise AnchorInvalid(
                    f"the endpoint serves no seal of block {number} ({why}): the trust file pins the "
                    "chain's sealing keys, and without a seal nothing proves the block is the chain's"
                )
            try:
                header = sealed_header(seal, block_hash=block_hash, number=number, keys=self._seal_keys)
                block = self._w3.eth.get_block(HexBytes(block_hash))
                hashes: list[Any] = list(block["transactions"])  # hashes: get_block's default
                receipts = self._paid_receipts(number, hashes, int.from_bytes(header["gasUsed"], "big"))
                root = receipts_root(receipts)
            except FormatError as exc:
                raise AnchorInvalid(f"block {number} is not proven to be the chain's: {exc.message}") from exc
            if root != header["receiptsRoot"]:
                raise AnchorInvalid(
                    f"the receipts served for block {number} do not hash to its sealed receipts root",
                    details={"sealed": "0x" + header["receiptsRoot"].hex(), "served": "0x" + root.hex()},
                )
            self._proven[block_hash] = receipts
        for r in receipts:
            if r["transactionHash"].to_0x_hex() == anchor.tx_hash:
                found: Mapping[str, Any] = r
                return found
        raise AnchorInvalid(f"transaction {anchor.tx_hash} is not in the sealed block {anchor.block_number}")

    def _paid_receipts(self, number: int, hashes: list[Any], gas_used: int) -> list[Any]:
        """The receipts of ``hashes``, no more than the sealed block's gas paid for. The receipts root is
        checked only once all are read, so a node listing made-up transactions, or padding receipts with
        logs, made the verifier read and hold without end (the seventh attack: 3.8 GB in 110 s). Every
        transaction costs at least 21,000 gas and every log 375, 375 a topic and 8 a byte of data; refunds
        give back at most a fifth of what a transaction used, so what was spent is at most 5/4 of
        ``gasUsed``."""
        budget = gas_used * 5 // 4

        def refuse(what: str) -> AnchorInvalid:
            return AnchorInvalid(
                f"block {number}: the node serves {what} than its sealed gas ({gas_used}) paid for",
                details={"block": number, "gas_used": gas_used},
            )

        spent = len(hashes) * 21_000
        if spent > budget:
            raise refuse(f"{len(hashes)} transactions, more")
        receipts = []
        for h in hashes:
            receipt = self._w3.eth.get_transaction_receipt(h)
            for lg in receipt["logs"]:
                spent += 375 + 375 * len(lg["topics"]) + 8 * len(lg["data"])
            if spent > budget:
                raise refuse("receipts with more logs")
            receipts.append(receipt)
        return receipts

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
            expected = consistency_proof_length(size1, size2)
            if len(proof) != expected or any(len(h) != HASH_SIZE for h in proof):
                # The proof source's fault: a proof of another shape proves nothing about the log.
                raise ConsistencyProofMalformed(
                    f"the proof source served a malformed consistency proof from size {size1} to {size2} "
                    f"({len(proof)} hashes, expected {expected} of {HASH_SIZE} bytes): the history cannot "
                    "be checked with it, which says nothing about the log",
                    details={"first": size1, "second": size2, "hashes": len(proof), "expected": expected},
                )
            try:
                verify_consistency(size1, size2, root1, root2, proof)
            except ConsistencyInvalid as exc:
                raise HistoryInconsistent(
                    f"the anchored checkpoints of sizes {size1} and {size2} are not shown to be one history: "
                    f"{exc.message} (a forked log, or a proof source serving a wrong proof; "
                    "`provenance audit log` checks every link)",
                    details={"first": size1, "second": size2},
                ) from exc
