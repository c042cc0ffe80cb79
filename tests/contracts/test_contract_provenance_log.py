"""ProvenanceLog: anchors only from log operators, each extending the last (an RFC 9162 consistency proof
checked on chain with SM3), bounded growth, one root per size, and the committee's recovery path."""

from __future__ import annotations

import hashlib

import pytest
from web3.contract import Contract
from web3.logs import DISCARD

from provenance.chain.contracts import ProposalKind, ProposalStatus, Role, deploy, propose
from provenance.log.merkle import MerkleLog
from tests.kit.contract_roles import unauthorized
from tests.kit.contracts import Chain, Deployment

MAX_U64 = 2**64 - 1


def tree(n: int, label: str = "honest") -> MerkleLog:
    """A log of ``n`` entries; logs of different labels differ from their first entry on."""
    log = MerkleLog.in_memory()
    for i in range(n):
        log.append(f"{label} {i}".encode())
    return log


def forked(honest: MerkleLog, keep: int, n: int, label: str = "forged") -> MerkleLog:
    """A log that shares the first ``keep`` entries of ``honest`` and then goes its own way, to ``n``."""
    log = MerkleLog.in_memory()
    for i in range(n):
        log.append(f"honest {i}".encode() if i < keep else f"{label} {i}".encode())
    assert log.root(keep) == honest.root(keep)
    return log


def anchor(
    chain: Chain, log: Contract, t: MerkleLog, size: int, op: object, *, since: int | None = None
) -> object:
    """Anchor t's root at ``size`` with the proof from ``since`` (default: the contract's latest size)."""
    latest = log.functions.latest().call()[0] if since is None else since
    proof = t.consistency_proof(latest, size) if latest else []
    return chain.tx(log.functions.anchor(size, t.root(size), proof), op)


@pytest.fixture
def log(chain: Chain, deployment: Deployment) -> Contract:
    """A fresh ProvenanceLog on the shared registry (its own anchors, the shared operator and committee)."""
    return deploy(chain.w3, "ProvenanceLog", deployment.suite.registry.address, sender=chain.accounts[0])


def test_anchor_and_lookups(chain: Chain, deployment: Deployment, log: Contract) -> None:
    op = deployment.account("log-operator-1")
    t = tree(12)
    anchor(chain, log, t, 4, op)
    receipt = anchor(chain, log, t, 10, op)
    (event,) = log.events.Anchored().process_receipt(receipt, errors=DISCARD)
    block = chain.w3.eth.get_block(receipt.blockNumber)
    assert dict(event.args) == {
        "treeSize": 10,
        "root": t.root(10),
        "operator": op.address,
        "timestamp": block["timestamp"],
    }
    expected = (10, t.root(10), op.address, block["timestamp"], receipt.blockNumber)
    assert log.functions.latest().call() == expected
    assert log.functions.anchorCount().call() == 2
    assert log.functions.anchorAt(1).call() == expected
    assert log.functions.rootAt(10).call() == t.root(10)
    assert log.functions.rootAt(11).call() == b"\0" * 32
    logs = log.events.Anchored().get_logs(from_block=0, argument_filters={"treeSize": 10})
    assert [(e.address, e.args.root) for e in logs] == [(log.address, t.root(10))]


def test_every_anchor_must_extend_the_latest(chain: Chain, deployment: Deployment, log: Contract) -> None:
    """#25.1(b): the operator's rewritten history (a fork of the anchored tree) is refused on chain."""
    op = deployment.account("log-operator-1")
    honest = tree(40)
    with chain.reverts("InconsistentAnchor"):  # the first anchor extends the empty tree: no proof
        chain.tx(log.functions.anchor(3, honest.root(3), [honest.root(3)]), op)
    anchor(chain, log, honest, 3, op)
    anchor(chain, log, honest, 7, op)  # 3 -> 7: size1 not a power of two, the proof seeds the path

    fork = forked(honest, 5, 40)
    with chain.reverts("InconsistentAnchor") as info:
        chain.tx(log.functions.anchor(15, fork.root(15), fork.consistency_proof(7, 15)), op)
    assert info.value.details["args"] == [7, honest.root(7), 15, fork.root(15)]
    bad_proofs = {
        "honest proof, another root": (honest.consistency_proof(7, 15), fork.root(15)),
        "a hash flipped": (
            [bytes([p[0] ^ 1]) + p[1:] for p in honest.consistency_proof(7, 15)],
            honest.root(15),
        ),
        "one hash short": (honest.consistency_proof(7, 15)[:-1], honest.root(15)),
        "one hash too many": ([*honest.consistency_proof(7, 15), honest.root(15)], honest.root(15)),
        "the proof of another size": (honest.consistency_proof(7, 16), honest.root(15)),
        "empty": ([], honest.root(15)),
    }
    for name, (proof, root) in bad_proofs.items():
        with chain.reverts("InconsistentAnchor"):
            chain.tx(log.functions.anchor(15, root, proof), op)
            pytest.fail(name)
    anchor(chain, log, honest, 15, op)
    anchor(chain, log, honest, 16, op)  # to a power of two
    anchor(chain, log, honest, 32, op)  # from a power of two: the old root seeds the path
    anchor(chain, log, honest, 33, op)
    assert [log.functions.anchorAt(i).call()[0] for i in range(6)] == [3, 7, 15, 16, 32, 33]


def test_sizes_strictly_increase_and_roots_never_change(
    chain: Chain, deployment: Deployment, log: Contract
) -> None:
    op = deployment.account("log-operator-1")
    t = tree(20)
    anchor(chain, log, t, 5, op)
    anchor(chain, log, t, 10, op)
    other = tree(20, "other").root(10)

    # The same (size, root) again is an idempotent retry: no event, nothing stored, any proof.
    receipt = chain.tx(log.functions.anchor(10, t.root(10), []), op)
    assert log.events.Anchored().process_receipt(receipt, errors=DISCARD) == ()
    chain.tx(log.functions.anchor(5, t.root(5), []), op)
    assert log.functions.anchorCount().call() == 2

    with chain.reverts("RootConflict") as info:
        chain.tx(log.functions.anchor(10, other, []), op)
    assert info.value.details["args"] == [10, t.root(10), other]
    with chain.reverts("RootConflict"):  # an older anchored size: the conflict is the better reason
        chain.tx(log.functions.anchor(5, other, []), op)
    with chain.reverts("SizeNotIncreasing") as info:
        chain.tx(log.functions.anchor(9, t.root(9), []), op)
    assert info.value.details["args"] == [9, 10]
    with chain.reverts("SizeNotIncreasing"):
        chain.tx(log.functions.anchor(0, other, []), op)
    with chain.reverts("ZeroRoot"):
        chain.tx(log.functions.anchor(11, b"\0" * 32, t.consistency_proof(10, 11)), op)
    with chain.reverts("IndexOutOfRange") as info:
        chain.call(log.functions.anchorAt(2))
    assert info.value.details["args"] == [2, 2]


def test_an_absurd_size_is_refused(chain: Chain, deployment: Deployment, log: Contract) -> None:
    """#23.8: anchor(2**64 - 1) would have stopped anchoring for good; growth per anchor is bounded."""
    op = deployment.account("log-operator-1")
    limit = log.functions.maxGrowth().call()
    assert limit == log.functions.DEFAULT_MAX_GROWTH().call() == 1_000_000
    root = hashlib.sha256(b"anything").digest()
    with chain.reverts("GrowthTooLarge") as info:
        chain.tx(log.functions.anchor(MAX_U64, root, []), op)
    assert info.value.details["args"] == [MAX_U64, 0, limit]
    t = tree(3)
    anchor(chain, log, t, 3, op)
    with chain.reverts("GrowthTooLarge") as info:
        chain.tx(log.functions.anchor(3 + limit + 1, root, [root]), op)
    assert info.value.details["args"] == [3 + limit + 1, 3, limit]
    assert log.functions.latest().call()[0] == 3


def test_the_committee_governs_the_bound(chain: Chain, deployment: Deployment, log: Contract) -> None:
    reg = deployment.suite.registry
    op = deployment.account("log-operator-1")
    receipt_pid = chain.enact(reg, ProposalKind.SET_MAX_ANCHOR_GROWTH, log.address, 4)
    assert reg.functions.getProposal(receipt_pid).call()[1] == ProposalStatus.EXECUTED
    assert log.functions.maxGrowth().call() == 4
    events = log.events.MaxGrowthSet().get_logs(from_block=0)
    assert [(e.address, e.args.maxGrowth) for e in events] == [(log.address, 4)]
    t = tree(10)
    with chain.reverts("GrowthTooLarge"):
        anchor(chain, log, t, 5, op)
    anchor(chain, log, t, 4, op)
    anchor(chain, log, t, 8, op)
    # Nobody but the registry sets it, the operator included; zero would stop anchoring, so it is refused.
    for who in (op, chain.committee[2], deployment.account("hospital-1")):
        with chain.reverts("NotRegistry") as info:
            chain.tx(log.functions.setMaxGrowth(10**9), who)
        assert info.value.details["args"] == [who.address]
    with chain.reverts("InvalidMaxGrowth"):  # a failing execution reverts the deciding vote
        chain.enact(reg, ProposalKind.SET_MAX_ANCHOR_GROWTH, log.address, 0)
    assert log.functions.maxGrowth().call() == 4


def test_the_committee_voids_an_anchor_the_log_cannot_extend(
    chain: Chain, deployment: Deployment, log: Contract
) -> None:
    """The operator's key anchors an invented extension; anchoring is stuck until the committee votes."""
    reg = deployment.suite.registry
    op = deployment.account("log-operator-1")
    honest = tree(30)
    anchor(chain, log, honest, 6, op)
    anchor(chain, log, honest, 10, op)
    # A consistent extension of what is anchored, with invented entries: the chain cannot tell it apart.
    bogus = forked(honest, 10, 20)
    anchor(chain, log, bogus, 20, op)
    with chain.reverts("SizeNotIncreasing"):
        anchor(chain, log, honest, 14, op, since=10)
    with chain.reverts("InconsistentAnchor"):
        anchor(chain, log, honest, 25, op, since=20)

    # Only the committee voids, and only down to an anchored size, and only when something is above it.
    with chain.reverts("NotRegistry"):
        chain.tx(log.functions.voidAnchorsAfter(10), op)
    with chain.reverts("NotAnchored") as info:
        chain.enact(reg, ProposalKind.VOID_ANCHORS, log.address, 9)
    assert info.value.details["args"] == [9]
    with chain.reverts("NothingToVoid"):
        chain.enact(reg, ProposalKind.VOID_ANCHORS, log.address, 20)

    # A and B together pass it (weights 1 + 1 of 4, 50 % participation, 100 % for).
    a, b, _ = chain.committee
    pid = propose(chain.w3, reg, ProposalKind.VOID_ANCHORS, log.address, 10, sender=a)
    assert log.functions.latest().call()[0] == 20  # one vote of weight 1: not yet
    receipt = chain.tx(reg.functions.vote(pid, True), b)
    voided = log.events.AnchorVoided().process_receipt(receipt, errors=DISCARD)
    assert [(e.args.treeSize, e.args.root, e.args.operator) for e in voided] == [
        (20, bogus.root(20), op.address)
    ]
    (summary,) = log.events.AnchorsVoided().process_receipt(receipt, errors=DISCARD)
    assert dict(summary.args) == {"keptSize": 10, "voidedLatestSize": 20, "count": 1}
    assert log.functions.rootAt(20).call() == b"\0" * 32
    assert log.functions.latest().call()[:2] == (10, honest.root(10))

    # Anchoring resumes from the kept anchor, and the voided size can now hold the honest root.
    anchor(chain, log, honest, 20, op)
    anchor(chain, log, honest, 25, op)
    assert log.functions.rootAt(20).call() == honest.root(20)

    # Voiding everything (keep 0) leaves a log whose next anchor is a first anchor again.
    chain.enact(reg, ProposalKind.VOID_ANCHORS, log.address, 0)
    assert log.functions.anchorCount().call() == 0
    anchor(chain, log, honest, 3, op)


def test_void_anchors_of_an_address_without_a_log_fails_whole(chain: Chain, deployment: Deployment) -> None:
    """A proposal naming no ProvenanceLog cannot execute: the deciding vote reverts, nothing changes."""
    reg = deployment.suite.registry
    before = reg.functions.proposalCount().call()
    with chain.reverts("unknown"):  # a call to an account without code reverts without data
        chain.enact(reg, ProposalKind.VOID_ANCHORS, chain.accounts[9].address, 0)
    assert reg.functions.proposalCount().call() == before


def test_only_log_operators_anchor(chain: Chain, deployment: Deployment, log: Contract) -> None:
    t = tree(1)
    # other roles, and a committee member (no organisation at all)
    others = ("hospital-1", "pharmacy-1", "env-bureau-1", "data-owner-1")
    for who in (*(deployment.account(o) for o in others), chain.committee[0]):
        unauthorized(chain, log.functions.anchor(1, t.root(1), []), who, Role.LOG_OPERATOR)


def test_a_suspended_operator_cannot_anchor(chain: Chain) -> None:
    reg = chain.new_registry()
    op = chain.accounts[8]
    oid = chain.new_org(reg, "log-op", Role.LOG_OPERATOR, op)
    log = deploy(chain.w3, "ProvenanceLog", reg.address, sender=chain.accounts[0])
    t = tree(2)
    anchor(chain, log, t, 1, op)
    chain.enact(reg, ProposalKind.SET_ORG_STATUS, oid, False)
    with chain.reverts("Unauthorized"):
        anchor(chain, log, t, 2, op)
    chain.enact(reg, ProposalKind.SET_ORG_STATUS, oid, True)
    anchor(chain, log, t, 2, op)
    assert log.functions.anchorCount().call() == 2
    assert log.functions.registry().call() == reg.address


def test_sm3_precompile_is_used_only_where_it_computes_sm3(chain: Chain, log: Contract) -> None:
    """Our node has SM3 at 0x…5001 (checked against GB/T 32905 at deployment); anvil has nothing there."""
    assert log.functions.sm3Precompiled().call() is (chain.engine.name == "embedded")
