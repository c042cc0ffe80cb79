"""PartyRecords: records of a party branch, written by that branch's accounts only."""

from __future__ import annotations

from collections.abc import Callable

from web3.logs import DISCARD

from provenance.chain.contracts import Role
from tests.kit.contract_roles import unauthorized
from tests.kit.contracts import Chain, Deployment

MEETING, STUDY = 1, 2


def test_add_and_look_up(chain: Chain, deployment: Deployment, unique: Callable[[str], bytes]) -> None:
    pr = deployment.suite["PartyRecords"]
    branch = deployment.orgs["party-branch-1"]
    acct = deployment.account("party-branch-1")
    before = pr.functions.branchRecordCount(branch.id).call()
    digests = [unique("meeting"), unique("study")]
    indexes = []
    for kind, digest in zip((MEETING, STUDY), digests, strict=True):
        receipt = chain.tx(pr.functions.addRecord(kind, digest), acct)
        (event,) = pr.events.RecordAdded().process_receipt(receipt, errors=DISCARD)
        assert (event.args.branchOrg, event.args.kind, event.args.digest) == (branch.id, kind, digest)
        indexes.append(event.args.index)
    assert pr.functions.branchRecordCount(branch.id).call() == before + 2
    index, record = pr.functions.branchRecordAt(branch.id, before + 1).call()
    assert index == indexes[1]
    assert record[:4] == (branch.id, STUDY, digests[1], acct.address)
    assert pr.functions.recordAt(indexes[0]).call()[2] == digests[0]
    assert pr.functions.findDigest(digests[0]).call() == [True, indexes[0]]
    assert pr.functions.findDigest(unique("none")).call() == [False, 0]
    assert pr.functions.recordCount().call() > indexes[1]
    other = deployment.orgs["party-branch-2"].id
    logs = pr.events.RecordAdded().get_logs(from_block=0, argument_filters={"branchOrg": other})
    assert all(e.args.branchOrg == other for e in logs)


def test_errors(chain: Chain, deployment: Deployment, unique: Callable[[str], bytes]) -> None:
    pr = deployment.suite["PartyRecords"]
    acct = deployment.account("party-branch-1")
    digest = unique("d")
    chain.tx(pr.functions.addRecord(MEETING, digest), acct)
    with chain.reverts("DuplicateRecord") as info:
        chain.tx(pr.functions.addRecord(STUDY, digest), deployment.account("party-branch-2"))
    assert info.value.details["args"] == [digest]
    with chain.reverts("InvalidKind"):
        chain.tx(pr.functions.addRecord(0, unique("d")), acct)
    with chain.reverts("ZeroDigest"):
        chain.tx(pr.functions.addRecord(MEETING, b"\0" * 32), acct)
    hospital = deployment.account("hospital-1")
    unauthorized(chain, pr.functions.addRecord(MEETING, unique("d")), hospital, Role.PARTY_BRANCH)
    count = pr.functions.recordCount().call()
    with chain.reverts("IndexOutOfRange"):
        chain.call(pr.functions.recordAt(count))
    with chain.reverts("IndexOutOfRange"):
        chain.call(pr.functions.branchRecordAt(deployment.orgs["party-branch-1"].id, 10**6))
