"""OrgRegistry: committee proposals, weighted votes, expiry; organisations, keys and accounts."""

from __future__ import annotations

from typing import Any

from web3.contract import Contract
from web3.logs import DISCARD

from provenance.chain.contracts import ProposalKind, ProposalStatus, Role, encode_proposal, org_id, propose
from tests.kit.contracts import ORG_PLAN, WEIGHTS, Chain, Deployment, extra_account, pubkey

K = ProposalKind
ZERO32 = b"\0" * 32


def status(reg: Contract, pid: int) -> ProposalStatus:
    return ProposalStatus(reg.functions.getProposal(pid).call()[1])


def by_c(chain: Chain, reg: Contract, kind: ProposalKind, *args: Any) -> int:
    return chain.enact(reg, kind, *args)


def add_org(chain: Chain, reg: Contract, name: str, role: Role = Role.HOSPITAL) -> bytes:
    return chain.new_org(reg, name, role)


# ------------------------------------------------------------------ the shared deployment


def test_deployment_registers_every_role(chain: Chain, deployment: Deployment) -> None:
    reg = deployment.suite.registry
    assert reg.functions.orgCount().call() == len(ORG_PLAN)
    assert {Role(r) for _, r, _ in ORG_PLAN} == set(Role) - {Role.NONE}
    for name, org in deployment.orgs.items():
        role, active, _, got_name = reg.functions.getOrg(org.id).call()
        assert (Role(role), active, got_name) == (org.role, True, name)
        assert reg.functions.keysOf(org.id).call() == [(org.key, 0, 0, 0)]
        assert reg.functions.keyValidAt(org.id, 0, chain.now()).call()
        if org.account is not None:
            addr = org.account.address
            assert reg.functions.accountsOf(org.id).call() == [addr]
            assert reg.functions.accountInfo(addr).call() == [org.id, org.role]
            assert Role(reg.functions.roleOf(addr).call()) == org.role
            assert reg.functions.orgOf(addr).call() == org.id
            assert reg.functions.isPermitted(addr).call()
    members, weights = reg.functions.members().call()
    assert members == [a.address for a in chain.committee] and tuple(weights) == WEIGHTS
    assert all(reg.functions.isPermitted(m).call() for m in members)  # members vote, so they transact
    stranger = extra_account(99).address
    assert not reg.functions.isPermitted(stranger).call()
    assert reg.functions.roleOf(stranger).call() == Role.NONE
    assert reg.functions.orgOf(stranger).call() == ZERO32


def test_events_carry_all_org_data(chain: Chain, deployment: Deployment) -> None:
    reg = deployment.suite.registry
    added = reg.events.OrgAdded().get_logs(from_block=0)
    assert [(e.args.orgId, Role(e.args.role), e.args.name) for e in added] == [
        (o.id, o.role, n) for n, o in deployment.orgs.items()
    ]
    keys = reg.events.KeyAdded().get_logs(
        from_block=0, argument_filters={"orgId": deployment.orgs["pharmacy-1"].id}
    )
    assert [(e.args.keyIndex, e.args.publicKey) for e in keys] == [(0, deployment.orgs["pharmacy-1"].key)]
    accounts = reg.events.AccountAdded().get_logs(from_block=0)
    assert {e.args.account for e in accounts} == {
        o.account.address for o in deployment.orgs.values() if o.account is not None
    }
    created = reg.events.ProposalCreated().get_logs(from_block=0)
    executed = reg.events.ProposalExecuted().get_logs(from_block=0)
    assert [e.args.id for e in created] == [e.args.id for e in executed]


# ------------------------------------------------------------------ committee


def test_constructor_validates_committee(chain: Chain) -> None:
    with chain.reverts("InvalidCommittee"):
        chain.new_registry(weights=())
    a, b, _ = chain.committee
    from provenance.chain.contracts import deploy

    with chain.reverts("InvalidCommittee"):
        deploy(chain.w3, "OrgRegistry", [a.address, b.address], [1], 50, 60, sender=a)
    with chain.reverts("DuplicateMember") as info:
        deploy(chain.w3, "OrgRegistry", [a.address, a.address], [1, 1], 50, 60, sender=a)
    assert info.value.details["args"] == [a.address]
    with chain.reverts("InvalidWeight"):
        chain.new_registry(weights=(1, 0))
    for rates in [(50, 0), (50, 101), (101, 60)]:
        with chain.reverts("InvalidRates"):
            chain.new_registry(rates=rates)


def test_two_light_members_pass_together(chain: Chain) -> None:
    reg = chain.new_registry()
    a, b, _ = chain.committee
    pid = propose(chain.w3, reg, K.ADD_ORG, org_id("h"), int(Role.HOSPITAL), "h", sender=a)
    assert status(reg, pid) == ProposalStatus.OPEN
    assert reg.functions.voteOf(pid, a.address).call() == 1
    assert reg.functions.orgCount().call() == 0
    receipt = chain.tx(reg.functions.vote(pid, True), b)
    assert [e.args.id for e in reg.events.ProposalExecuted().process_receipt(receipt, errors=DISCARD)] == [
        pid
    ]
    assert [e.args.weight for e in reg.events.Voted().process_receipt(receipt, errors=DISCARD)] == [1]
    assert status(reg, pid) == ProposalStatus.EXECUTED
    assert reg.functions.orgCount().call() == 1
    with chain.reverts("ProposalNotOpen") as info:
        chain.tx(reg.functions.vote(pid, True), chain.committee[2])
    assert info.value.details["args"] == [pid, ProposalStatus.EXECUTED]


def test_heavy_member_passes_alone_and_rejects_alone(chain: Chain) -> None:
    reg = chain.new_registry()
    a, b, c = chain.committee
    pid = by_c(chain, reg, K.ADD_ORG, org_id("h"), int(Role.HOSPITAL), "h")
    assert status(reg, pid) == ProposalStatus.EXECUTED
    pid = propose(chain.w3, reg, K.ADD_ORG, org_id("p"), int(Role.PHARMACY), "p", sender=a)
    receipt = chain.tx(reg.functions.vote(pid, False), c)
    assert [e.args.id for e in reg.events.ProposalRejected().process_receipt(receipt, errors=DISCARD)] == [
        pid
    ]
    assert status(reg, pid) == ProposalStatus.REJECTED
    with chain.reverts("ProposalNotOpen"):
        chain.tx(reg.functions.vote(pid, True), b)


def test_win_rate_counts_weights(chain: Chain) -> None:
    reg = chain.new_registry()
    a, b, c = chain.committee
    pid = propose(chain.w3, reg, K.ADD_ORG, org_id("h"), int(Role.HOSPITAL), "h", sender=a)
    chain.tx(reg.functions.vote(pid, False), b)  # 1 for, 1 against: 50 % < 60 %, but not yet lost
    assert status(reg, pid) == ProposalStatus.OPEN
    chain.tx(reg.functions.vote(pid, True), c)  # 3 for of 4 voted: 75 %
    assert status(reg, pid) == ProposalStatus.EXECUTED
    assert reg.functions.getProposal(pid).call()[5:7] == (3, 1)


def test_vote_and_propose_errors(chain: Chain) -> None:
    reg = chain.new_registry()
    a, _, _ = chain.committee
    outsider = chain.accounts[5]
    data = encode_proposal(K.ADD_ORG, org_id("h"), int(Role.HOSPITAL), "h")
    with chain.reverts("NotCommitteeMember"):
        chain.tx(reg.functions.propose(int(K.ADD_ORG), data, 10), outsider)
    with chain.reverts("InvalidProposalKind"):
        chain.tx(reg.functions.propose(0, data, 10), a)
    with chain.reverts("InvalidTtl"):
        chain.tx(reg.functions.propose(int(K.ADD_ORG), data, 0), a)
    pid = propose(chain.w3, reg, K.ADD_ORG, org_id("h"), int(Role.HOSPITAL), "h", sender=a)
    with chain.reverts("NotCommitteeMember"):
        chain.tx(reg.functions.vote(pid, True), outsider)
    with chain.reverts("AlreadyVoted"):
        chain.tx(reg.functions.vote(pid, False), a)
    for bad in (0, pid + 1):
        with chain.reverts("ProposalNotFound"):
            chain.tx(reg.functions.vote(bad, True), a)
        with chain.reverts("ProposalNotFound"):
            chain.call(reg.functions.getProposal(bad))


def test_proposal_expires_after_its_blocks(chain: Chain) -> None:
    reg = chain.new_registry()
    a, b, _ = chain.committee
    pid = propose(chain.w3, reg, K.ADD_ORG, org_id("h"), int(Role.HOSPITAL), "h", sender=a, ttl_blocks=2)
    expires = reg.functions.getProposal(pid).call()[4]
    chain.mine_until(expires - 1)  # the vote lands in a later block, at or past the deadline
    with chain.reverts("ProposalExpired") as info:
        chain.tx(reg.functions.vote(pid, True), b)
    assert info.value.details["args"] == [pid, expires]
    assert status(reg, pid) == ProposalStatus.EXPIRED
    with chain.reverts("ProposalNotOpen"):
        chain.tx(reg.functions.cancelProposal(pid), a)


def test_cancel_by_proposer_only(chain: Chain) -> None:
    reg = chain.new_registry()
    a, b, _ = chain.committee
    pid = propose(chain.w3, reg, K.ADD_ORG, org_id("h"), int(Role.HOSPITAL), "h", sender=a)
    with chain.reverts("NotProposer"):
        chain.tx(reg.functions.cancelProposal(pid), b)
    receipt = chain.tx(reg.functions.cancelProposal(pid), a)
    assert len(reg.events.ProposalCancelled().process_receipt(receipt, errors=DISCARD)) == 1
    assert status(reg, pid) == ProposalStatus.CANCELLED
    with chain.reverts("ProposalNotOpen"):
        chain.tx(reg.functions.vote(pid, True), b)
    with chain.reverts("ProposalNotFound"):
        chain.tx(reg.functions.cancelProposal(pid + 1), a)


def test_failed_execution_reverts_the_deciding_vote(chain: Chain) -> None:
    reg = chain.new_registry()
    a, b, _ = chain.committee
    first = propose(chain.w3, reg, K.ADD_ORG, org_id("h"), int(Role.HOSPITAL), "h", sender=a)
    second = propose(chain.w3, reg, K.ADD_ORG, org_id("h"), int(Role.PHARMACY), "h", sender=a)
    chain.tx(reg.functions.vote(first, True), b)
    with chain.reverts("OrgExists"):
        chain.tx(reg.functions.vote(second, True), b)
    assert status(reg, second) == ProposalStatus.OPEN


def test_membership_and_rates_change_by_proposal(chain: Chain) -> None:
    reg = chain.new_registry()
    a, b, c = chain.committee
    d = chain.accounts[3]
    by_c(chain, reg, K.SET_MEMBER, d.address, 3)  # c: 2 of 4
    assert (reg.functions.totalWeight().call(), reg.functions.weightOf(d.address).call()) == (7, 3)
    pid = by_c(chain, reg, K.SET_MEMBER, d.address, 1)  # 2 of 7 is not enough any more ...
    assert status(reg, pid) == ProposalStatus.OPEN
    chain.tx(reg.functions.vote(pid, True), d)  # ... 5 of 7 is
    members, weights = reg.functions.members().call()
    assert members == [a.address, b.address, c.address, d.address]  # re-weighted, not added twice
    assert weights == [1, 1, 2, 1]
    pid = by_c(chain, reg, K.REMOVE_MEMBER, a.address)
    chain.tx(reg.functions.vote(pid, True), b)
    members, _ = reg.functions.members().call()
    assert sorted(members) == sorted([b.address, c.address, d.address])
    assert reg.functions.totalWeight().call() == 4
    assert not reg.functions.isPermitted(a.address).call()
    with chain.reverts("NotCommitteeMember"):
        propose(chain.w3, reg, K.ADD_ORG, org_id("h"), 1, "h", sender=a)
    with chain.reverts("NotCommitteeMember"):
        by_c(chain, reg, K.REMOVE_MEMBER, a.address)
    with chain.reverts("InvalidWeight"):
        by_c(chain, reg, K.SET_MEMBER, a.address, 0)
    by_c(chain, reg, K.SET_RATES, 100, 100)
    assert (reg.functions.participatesRate().call(), reg.functions.winRate().call()) == (100, 100)
    pid = propose(chain.w3, reg, K.SET_RATES, 0, 0, sender=b)  # now every member must vote for
    chain.tx(reg.functions.vote(pid, True), d)
    assert status(reg, pid) == ProposalStatus.OPEN
    with chain.reverts("InvalidRates"):
        chain.tx(reg.functions.vote(pid, True), c)


def test_last_member_cannot_leave(chain: Chain) -> None:
    reg = chain.new_registry(weights=(1,))
    with chain.reverts("CommitteeEmpty"):
        propose(chain.w3, reg, K.REMOVE_MEMBER, chain.accounts[0].address, sender=chain.accounts[0])


# ------------------------------------------------------------------ organisations


def test_org_errors(chain: Chain) -> None:
    reg = chain.new_registry()
    with chain.reverts("InvalidOrgId"):
        by_c(chain, reg, K.ADD_ORG, ZERO32, int(Role.HOSPITAL), "zero")
    with chain.reverts("InvalidRole"):
        by_c(chain, reg, K.ADD_ORG, org_id("none"), int(Role.NONE), "none")
    oid = add_org(chain, reg, "h")
    with chain.reverts("OrgExists"):
        add_org(chain, reg, "h")
    with chain.reverts("InvalidRole"):
        by_c(chain, reg, K.SET_ORG_ROLE, oid, int(Role.NONE))
    unknown = org_id("unknown")
    for kind, args in [
        (K.SET_ORG_ROLE, (unknown, int(Role.PHARMACY))),
        (K.SET_ORG_STATUS, (unknown, False)),
        (K.ADD_KEY, (unknown, pubkey("k"), 0, 0)),
        (K.ADD_ACCOUNT, (unknown, chain.accounts[4].address)),
    ]:
        with chain.reverts("OrgNotFound") as info:
            by_c(chain, reg, kind, *args)
        assert info.value.details["args"] == [unknown]
    with chain.reverts("OrgNotFound"):
        chain.call(reg.functions.getOrg(unknown))


def test_role_status_and_accounts(chain: Chain) -> None:
    reg = chain.new_registry()
    oid = add_org(chain, reg, "h")
    accts = [chain.accounts[i].address for i in (3, 4, 5)]
    for addr in accts:
        by_c(chain, reg, K.ADD_ACCOUNT, oid, addr)
    other = add_org(chain, reg, "p", Role.PHARMACY)
    with chain.reverts("AccountAlreadyBound") as info:
        by_c(chain, reg, K.ADD_ACCOUNT, other, accts[0])
    assert info.value.details["args"] == [accts[0], oid]
    with chain.reverts("ZeroAddress"):
        by_c(chain, reg, K.ADD_ACCOUNT, oid, "0x" + "00" * 20)
    by_c(chain, reg, K.REMOVE_ACCOUNT, accts[1])  # the middle one: swap-and-pop keeps the list exact
    assert sorted(reg.functions.accountsOf(oid).call()) == sorted([accts[0], accts[2]])
    assert reg.functions.orgOf(accts[1]).call() == ZERO32
    assert not reg.functions.isPermitted(accts[1]).call()
    with chain.reverts("AccountNotBound"):
        by_c(chain, reg, K.REMOVE_ACCOUNT, accts[1])

    pid = by_c(chain, reg, K.SET_ORG_ROLE, oid, int(Role.AUDITOR))
    assert status(reg, pid) == ProposalStatus.EXECUTED
    assert reg.functions.roleOf(accts[0]).call() == Role.AUDITOR
    logs = reg.events.OrgRoleChanged().get_logs(from_block=0, argument_filters={"orgId": oid})
    assert [(e.args.oldRole, e.args.newRole) for e in logs] == [(Role.HOSPITAL, Role.AUDITOR)]

    by_c(chain, reg, K.SET_ORG_STATUS, oid, False)  # suspended: no role, not permitted, still bound
    assert reg.functions.roleOf(accts[0]).call() == Role.NONE
    assert reg.functions.orgRoleOf(oid).call() == Role.NONE
    assert reg.functions.orgOf(accts[0]).call() == oid
    assert not reg.functions.isPermitted(accts[0]).call()
    assert reg.functions.getOrg(oid).call()[1] is False
    by_c(chain, reg, K.SET_ORG_STATUS, oid, True)
    assert reg.functions.isPermitted(accts[0]).call()


def test_key_rotation_and_revocation_windows(chain: Chain) -> None:
    reg = chain.new_registry()
    oid = add_org(chain, reg, "h")
    t = 1_800_000_000
    by_c(chain, reg, K.ADD_KEY, oid, pubkey("k0"), 0, 0)
    by_c(chain, reg, K.ADD_KEY, oid, pubkey("k1"), t, 0)  # rotation: k1 from t on ...
    by_c(chain, reg, K.REVOKE_KEY, oid, 0, t)  # ... and k0 revoked as of t
    by_c(chain, reg, K.ADD_KEY, oid, pubkey("k2"), 100, 200)
    valid = reg.functions.keyValidAt
    assert [valid(oid, 0, ts).call() for ts in (0, t - 1, t)] == [True, True, False]
    assert [valid(oid, 1, ts).call() for ts in (t - 1, t, 2**64 - 1)] == [False, True, True]
    assert [valid(oid, 2, ts).call() for ts in (99, 100, 199, 200)] == [False, True, True, False]
    assert reg.functions.keyCount(oid).call() == 3
    assert reg.functions.keyAt(oid, 0).call() == (pubkey("k0"), 0, 0, t)

    pid = by_c(chain, reg, K.REVOKE_KEY, oid, 1, 0)  # 0 = as of the executing block
    receipt = chain.w3.eth.get_transaction_receipt(
        reg.events.ProposalExecuted().get_logs(from_block=0, argument_filters={"id": pid})[0].transactionHash
    )
    (revoked,) = reg.events.KeyRevoked().process_receipt(receipt, errors=DISCARD)
    block_ts = chain.w3.eth.get_block(receipt.blockNumber)["timestamp"]
    assert (revoked.args.keyIndex, revoked.args.revokedAt) == (1, block_ts)

    with chain.reverts("KeyAlreadyRevoked"):
        by_c(chain, reg, K.REVOKE_KEY, oid, 0, 0)
    with chain.reverts("KeyNotFound"):
        by_c(chain, reg, K.REVOKE_KEY, oid, 3, 0)
    with chain.reverts("KeyNotFound"):
        chain.call(reg.functions.keyAt(oid, 3))
    with chain.reverts("KeyNotFound"):
        chain.call(reg.functions.keyValidAt(oid, 3, 0))
    with chain.reverts("InvalidPublicKey") as info:
        by_c(chain, reg, K.ADD_KEY, oid, pubkey("k")[:63], 0, 0)
    assert info.value.details["args"] == [63]
    with chain.reverts("InvalidKeyWindow"):
        by_c(chain, reg, K.ADD_KEY, oid, pubkey("k"), 200, 200)
