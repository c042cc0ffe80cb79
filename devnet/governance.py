"""Governing a deployed network by committee vote (FISCO v3 CommitteeManager as the model): organisations,
their SM2 keys and transaction accounts, ProvenanceLog's anchors. Used by the deployment, by tests and by an
operator's scripts (``docs/deploy-besu.md``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from provenance.chain.contracts import ProposalKind, Role, encode_proposal, org_id, propose, transact


@dataclass(frozen=True, kw_only=True)
class OrgSpec:
    """An organisation to register: id (≤ 32 bytes), role, name, and domain objects it owns."""

    id: str
    role: Role
    name: str = ""
    datasets: tuple[str, ...] = ()  # data_owner: datasets registered in DataSharing
    # monitoring_station: MNs registered in EnvMonitoring (by the bureau); gas_utility: its data loggers'
    # ids, registered in GasNetwork (by itself)
    stations: tuple[str, ...] = ()


def committee_pass(
    w3: Web3, registry: Any, committee: Sequence[LocalAccount], kind: ProposalKind, *args: Any
) -> None:
    """Propose with the first member and vote with the others until the proposal executes."""
    pid = propose(w3, registry, kind, *args, sender=committee[0])
    for member in committee[1:]:
        if registry.functions.getProposal(pid).call()[1] != 1:  # no longer Open: executed
            break
        transact(w3, registry.functions.vote(pid, True), member)
    status = registry.functions.getProposal(pid).call()[1]
    if status != 2:
        raise RuntimeError(f"proposal {pid} ({kind.name}) did not execute (status {status})")


def register_key(
    w3: Web3,
    registry: Any,
    committee: Sequence[LocalAccount],
    org: str,
    raw_public_key: bytes,
    *,
    valid_from: int = 0,
    valid_until: int = 0,
) -> int:
    """Add an SM2 key (64-byte x‖y) to ``org``, valid for unix times in ``[valid_from, valid_until)``
    (defaults: always, no end); returns its key index."""
    committee_pass(
        w3, registry, committee, ProposalKind.ADD_KEY, org_id(org), raw_public_key, valid_from, valid_until
    )
    count: int = registry.functions.keyCount(org_id(org)).call()
    return count - 1


def revoke_key(
    w3: Web3, registry: Any, committee: Sequence[LocalAccount], org: str, index: int, at_unix: int = 0
) -> None:
    """Revoke key ``index`` of ``org`` as of ``at_unix`` (0 = the block's time)."""
    committee_pass(w3, registry, committee, ProposalKind.REVOKE_KEY, org_id(org), index, at_unix)


def void_anchors(
    w3: Web3, registry: Any, committee: Sequence[LocalAccount], log_contract: str, keep_size: int
) -> None:
    """Void every ProvenanceLog anchor above ``keep_size`` (0 or an anchored size) by committee vote: the
    recovery from an anchor the gateway's log cannot extend (ANCHOR_STUCK; docs/design/anchor-consistency.md).
    """
    log = Web3.to_checksum_address(log_contract)
    committee_pass(w3, registry, committee, ProposalKind.VOID_ANCHORS, log, keep_size)


def set_max_anchor_growth(
    w3: Web3, registry: Any, committee: Sequence[LocalAccount], log_contract: str, max_growth: int
) -> None:
    """Set by committee vote how much one anchor may grow ProvenanceLog's anchored size."""
    log = Web3.to_checksum_address(log_contract)
    committee_pass(w3, registry, committee, ProposalKind.SET_MAX_ANCHOR_GROWTH, log, max_growth)


def register_org(
    w3: Web3,
    registry: Any,
    committee: Sequence[LocalAccount],
    spec: OrgSpec,
    *,
    account: str,
    raw_public_key: bytes,
) -> None:
    """Add the org, its SM2 key and its transaction account, each by committee vote."""
    oid = org_id(spec.id)
    committee_pass(w3, registry, committee, ProposalKind.ADD_ORG, oid, int(spec.role), spec.name or spec.id)
    register_key(w3, registry, committee, spec.id, raw_public_key)
    committee_pass(w3, registry, committee, ProposalKind.ADD_ACCOUNT, oid, Web3.to_checksum_address(account))


def send_all(w3: Web3, calls: Sequence[tuple[LocalAccount, Any]], *, gas: int = 2_000_000) -> list[Any]:
    """Send contract calls, each from its account (consecutive nonces per account), without waiting in
    between; then every receipt, in order.

    One block can then carry them all: registering a dozen organisations takes a few blocks, not dozens
    (and a node that keeps its clock within a second of real time makes about a block a second).
    Gas is fixed because a later call may depend on an earlier one that estimation cannot see yet.
    """
    chain_id = w3.eth.chain_id
    nonces: dict[str, int] = {}
    hashes = []
    for sender, fn in calls:
        nonce = nonces.get(sender.address)
        if nonce is None:
            nonce = w3.eth.get_transaction_count(sender.address, "pending")
        nonces[sender.address] = nonce + 1
        tx = fn.build_transaction({"from": sender.address, "nonce": nonce, "chainId": chain_id, "gas": gas})
        hashes.append(w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction))
    receipts = [w3.eth.wait_for_transaction_receipt(h, timeout=120, poll_latency=0.05) for h in hashes]
    failed = [r["transactionHash"].to_0x_hex() for r in receipts if r["status"] != 1]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(calls)} transactions reverted, first {failed[0]}")
    return receipts


def committee_pass_many(
    w3: Web3,
    registry: Any,
    committee: Sequence[LocalAccount],
    proposals: Sequence[tuple[ProposalKind, tuple[Any, ...]]],
) -> None:
    """Pass many proposals at once: all proposed by the first member, then voted by the others as needed."""
    if not proposals:
        return
    receipts = send_all(
        w3,
        [
            (committee[0], registry.functions.propose(int(k), encode_proposal(k, *args), 1000))
            for k, args in proposals
        ],
    )
    ids = [
        registry.events.ProposalCreated().process_receipt(r, errors=DISCARD)[0]["args"]["id"]
        for r in receipts
    ]
    for member in committee[1:]:
        open_ids = [i for i in ids if registry.functions.getProposal(i).call()[1] == 1]
        if not open_ids:
            break
        send_all(w3, [(member, registry.functions.vote(i, True)) for i in open_ids])
    for pid in ids:
        status = registry.functions.getProposal(pid).call()[1]
        if status != 2:
            raise RuntimeError(f"proposal {pid} did not execute (status {status})")
