"""Auditors' checks over a whole log: every anchored checkpoint extends the previous one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from web3 import Web3

from provenance.contracts import at
from provenance.errors import ConsistencyInvalid, ProvenanceError
from provenance.merkle import verify_consistency


@dataclass(frozen=True, slots=True)
class AnchoredCheckpoint:
    index: int
    tree_size: int
    root: bytes
    block_number: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class LinkResult:
    """The check between two consecutive anchors: ``ok`` or a reason (fork, gap, unavailable proof)."""

    first: AnchoredCheckpoint
    second: AnchoredCheckpoint
    ok: bool
    reason: str = ""


def read_anchors(w3: Web3, log_contract: str) -> list[AnchoredCheckpoint]:
    """Every (size, root) anchored in ``ProvenanceLog``, oldest first."""
    log = at(w3, "ProvenanceLog", log_contract)
    count = log.functions.anchorCount().call()
    out = []
    for i in range(count):
        a = log.functions.anchorAt(i).call()
        out.append(AnchoredCheckpoint(i, int(a[0]), bytes(a[1]), int(a[4]), int(a[3])))
    return out


ProofSource = Callable[[int, int], Sequence[bytes]]


def check_links(
    anchors: Sequence[AnchoredCheckpoint],
    proof_for: ProofSource,
    *,
    progress: Callable[[], None] | None = None,
) -> list[LinkResult]:
    """Verify a consistency proof between each pair of consecutive anchors."""
    results = []
    for first, second in pairwise(anchors):
        if second.tree_size <= first.tree_size:
            results.append(LinkResult(first, second, False, "anchored size did not grow"))
        else:
            try:
                proof = proof_for(first.tree_size, second.tree_size)
                verify_consistency(first.tree_size, second.tree_size, first.root, second.root, list(proof))
                results.append(LinkResult(first, second, True))
            except ConsistencyInvalid as exc:
                results.append(LinkResult(first, second, False, f"fork: {exc.message}"))
            except ProvenanceError as exc:
                results.append(LinkResult(first, second, False, f"no proof: {exc.message}"))
        if progress:
            progress()
    return results
