"""Step ``batch_anchor`` of a batch item's bundle: the batch root's anchor in its domain contract
(``docs/formats.md``, Batch anchors) names the signed root on the pinned chain and, given a chain, is
there."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provenance.errors import BatchAnchorInvalid
from provenance.log.bundle import EvidenceBundle

if TYPE_CHECKING:
    from provenance.verification.verify import AnchorChecker


def check_batch_anchor(
    b: EvidenceBundle, pinned_chain: int | None, checker: AnchorChecker | None
) -> tuple[str, str] | None:
    """The step's status and detail when it did not simply pass (``skipped``, ``warning``); raises
    :class:`BatchAnchorInvalid` when the anchor names another root or chain, or the chain does not hold it."""
    a = b.batch_anchor
    if a is None:
        return "skipped", "no batch anchor in the bundle"
    batch = b.payload if b.has_payload else None
    root = batch.get("root") if isinstance(batch, dict) else None
    if root != a.root.hex():  # the item step held: the payload names a root
        raise BatchAnchorInvalid(
            "the batch anchor names another Merkle root than the signed batch",
            details={"anchored": a.root.hex(), "signed": root},
        )
    if pinned_chain is not None and a.chain_id != pinned_chain:
        raise BatchAnchorInvalid(
            f"the batch anchor is on chain {a.chain_id}, the trust file pins chain {pinned_chain}",
            details={"chain_id": a.chain_id, "pinned": pinned_chain},
        )
    if checker is None:
        return "skipped", f"names the signed root; not looked up on chain {a.chain_id} (offline)"
    assert isinstance(batch, dict)
    env = b.signed.envelope
    warning = checker.check_batch(a, env.kind, env.subject, batch)
    return ("warning", warning) if warning else None
