"""ProvenanceLog: anchors only from log operators, strictly growing sizes, one root per size."""

from __future__ import annotations

import hashlib

from conftest import Chain, Deployment
from web3.logs import DISCARD

from provenance.contracts import ProposalKind, Role, deploy


def root(n: int) -> bytes:
    return hashlib.sha256(f"root-{n}".encode()).digest()


def latest_size(dep: Deployment) -> int:
    size: int = dep.suite.log.functions.latest().call()[0]
    return size


def test_anchor_and_lookups(chain: Chain, deployment: Deployment) -> None:
    log = deployment.suite.log
    op = deployment.account("log-operator-1")
    count = log.functions.anchorCount().call()
    size = latest_size(deployment) + 10
    receipt = chain.tx(log.functions.anchor(size, root(size)), op)
    (event,) = log.events.Anchored().process_receipt(receipt, errors=DISCARD)
    block = chain.w3.eth.get_block(receipt.blockNumber)
    assert dict(event.args) == {
        "treeSize": size,
        "root": root(size),
        "operator": op.address,
        "timestamp": block["timestamp"],
    }
    expected = (size, root(size), op.address, block["timestamp"], receipt.blockNumber)
    assert log.functions.latest().call() == expected
    assert log.functions.anchorCount().call() == count + 1
    assert log.functions.anchorAt(count).call() == expected
    assert log.functions.rootAt(size).call() == root(size)
    assert log.functions.rootAt(size + 1).call() == b"\0" * 32
    logs = log.events.Anchored().get_logs(from_block=0, argument_filters={"treeSize": size})
    assert [e.args.root for e in logs] == [root(size)]


def test_sizes_strictly_increase_and_roots_never_change(chain: Chain, deployment: Deployment) -> None:
    log = deployment.suite.log
    op = deployment.account("log-operator-1")
    first = latest_size(deployment) + 5
    chain.tx(log.functions.anchor(first, root(first)), op)
    second = first + 5
    chain.tx(log.functions.anchor(second, root(second)), op)
    count = log.functions.anchorCount().call()

    # The same (size, root) again is an idempotent retry: no event, nothing stored.
    receipt = chain.tx(log.functions.anchor(second, root(second)), op)
    assert log.events.Anchored().process_receipt(receipt, errors=DISCARD) == ()
    receipt = chain.tx(log.functions.anchor(first, root(first)), op)
    assert log.functions.anchorCount().call() == count

    with chain.reverts("RootConflict") as info:
        chain.tx(log.functions.anchor(second, root(0)), op)
    assert info.value.details["args"] == [second, root(second), root(0)]
    with chain.reverts("RootConflict"):  # an older anchored size: the conflict is the better reason
        chain.tx(log.functions.anchor(first, root(0)), op)
    with chain.reverts("SizeNotIncreasing") as info:
        chain.tx(log.functions.anchor(second - 1, root(1)), op)
    assert info.value.details["args"] == [second - 1, second]
    with chain.reverts("SizeNotIncreasing"):
        chain.tx(log.functions.anchor(0, root(1)), op)
    with chain.reverts("ZeroRoot"):
        chain.tx(log.functions.anchor(second + 1, b"\0" * 32), op)
    with chain.reverts("IndexOutOfRange") as info:
        chain.call(log.functions.anchorAt(count))
    assert info.value.details["args"] == [count, count]


def test_only_log_operators_anchor(chain: Chain, deployment: Deployment) -> None:
    log = deployment.suite.log
    size = latest_size(deployment) + 1
    for who in (deployment.account("hospital-1"), chain.committee[0]):  # wrong role; no org at all
        with chain.reverts("Unauthorized") as info:
            chain.tx(log.functions.anchor(size, root(size)), who)
        assert info.value.details["args"] == [who.address, Role.LOG_OPERATOR]


def test_a_suspended_operator_cannot_anchor(chain: Chain) -> None:
    reg = chain.new_registry()
    op = chain.accounts[8]
    oid = chain.new_org(reg, "log-op", Role.LOG_OPERATOR, op)
    log = deploy(chain.w3, "ProvenanceLog", reg.address, sender=chain.accounts[0])
    chain.tx(log.functions.anchor(1, root(1)), op)
    chain.enact(reg, ProposalKind.SET_ORG_STATUS, oid, False)
    with chain.reverts("Unauthorized"):
        chain.tx(log.functions.anchor(2, root(2)), op)
    chain.enact(reg, ProposalKind.SET_ORG_STATUS, oid, True)
    chain.tx(log.functions.anchor(2, root(2)), op)
    assert log.functions.anchorCount().call() == 2
    assert log.functions.registry().call() == reg.address
