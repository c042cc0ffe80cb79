"""#23.10 on chain: every caller-supplied time is bounded from the block's time, and no role but a hospital
can take an rx id (the squatting a raw transaction could do)."""

from __future__ import annotations

from collections.abc import Callable

from eth_account.signers.local import LocalAccount

from provenance.chain.contracts import ProposalKind, Role, encode_proposal, org_id
from tests.kit.contract_roles import unauthorized
from tests.kit.contracts import ORG_PLAN, Chain, Deployment, pubkey

FAR = 2**40  # the attack's expiry: year 36812
HOUR = 3600


def test_a_far_future_prescription_expiry_is_refused(
    chain: Chain, deployment: Deployment, unique: Callable[[str], bytes]
) -> None:
    rx = deployment.suite["Prescriptions"]
    hospital = deployment.account("hospital-1")
    horizon = rx.functions.MAX_VALIDITY().call()
    assert horizon == 366 * 86_400
    with chain.reverts("ExpiryTooFar") as info:
        chain.tx(rx.functions.issue(unique("rx"), b"i" * 32, FAR), hospital)
    assert info.value.details["args"][0] == FAR
    assert chain.now() + horizon <= info.value.details["args"][1] <= chain.now() + horizon + HOUR
    rx_id = unique("rx")
    near_limit = chain.now() + horizon - HOUR
    chain.tx(rx.functions.issue(rx_id, b"i" * 32, near_limit), hospital)
    assert rx.functions.statusOf(rx_id).call()[3] == near_limit


def test_a_far_future_consent_expiry_is_refused(
    chain: Chain, deployment: Deployment, unique: Callable[[str], bytes]
) -> None:
    ds = deployment.suite["DataSharing"]
    owner, user = deployment.account("data-owner-1"), deployment.account("data-user-1")
    dataset, request = unique("dataset"), unique("request")
    chain.tx(ds.functions.registerDataset(dataset, b"m" * 32), owner)
    chain.tx(ds.functions.request(request, dataset, b"q" * 32), user)
    horizon = ds.functions.MAX_CONSENT().call()
    for too_far in (FAR, chain.now() + horizon + HOUR):
        with chain.reverts("ExpiryTooFar") as info:
            chain.tx(ds.functions.consent(request, b"s" * 32, b"p" * 32, too_far, b"c" * 32), owner)
        assert info.value.details["args"][0] == too_far
    chain.tx(
        ds.functions.consent(request, b"s" * 32, b"p" * 32, chain.now() + horizon - HOUR, b"c" * 32), owner
    )
    assert ds.functions.consentLive(request).call()


def test_key_times_are_bounded(chain: Chain) -> None:
    reg = chain.new_registry()
    oid = chain.new_org(reg, "h", Role.HOSPITAL)
    horizon = reg.functions.MAX_KEY_HORIZON().call()
    for valid_from, valid_until in ((FAR, 0), (0, FAR), (chain.now() + horizon + HOUR, 0)):
        with chain.reverts("TimeTooFar") as info:
            chain.enact(reg, ProposalKind.ADD_KEY, oid, pubkey("k"), valid_from, valid_until)
        assert info.value.details["args"][0] in (valid_from, valid_until)
    within = chain.now() + horizon - HOUR
    chain.enact(reg, ProposalKind.ADD_KEY, oid, pubkey("k"), 0, within)
    with chain.reverts("TimeTooFar"):  # a revocation may be backdated or scheduled, not set in year 36812
        chain.enact(reg, ProposalKind.REVOKE_KEY, oid, 0, FAR)
    chain.enact(reg, ProposalKind.REVOKE_KEY, oid, 0, within - 1)
    assert reg.functions.keyAt(oid, 0).call()[1:] == (0, within, within - 1)


def test_a_proposal_window_is_bounded(chain: Chain) -> None:
    """ttlBlocks near 2**64 used to overflow (a Panic); now it is a named refusal."""
    reg = chain.new_registry()
    data = encode_proposal(ProposalKind.ADD_ORG, org_id("h"), int(Role.HOSPITAL), "h")
    most = reg.functions.MAX_TTL_BLOCKS().call()
    for ttl in (2**64 - 1, most + 1):
        with chain.reverts("InvalidTtl") as info:
            chain.tx(reg.functions.propose(int(ProposalKind.ADD_ORG), data, ttl), chain.committee[0])
        assert info.value.details["args"] == [ttl]
    chain.tx(reg.functions.propose(int(ProposalKind.ADD_ORG), data, most), chain.committee[0])


def test_a_batch_period_cannot_lead_the_clock(
    chain: Chain, deployment: Deployment, unique: Callable[[str], bytes]
) -> None:
    env = deployment.suite["EnvMonitoring"]
    sid = unique("station")
    chain.tx(
        env.functions.registerStation(sid, deployment.orgs["station-1"].id, b"m" * 32),
        deployment.account("env-bureau-1"),
    )
    station = deployment.account("station-1")
    lead = env.functions.MAX_CLOCK_LEAD().call()
    with chain.reverts("PeriodInFuture") as info:
        chain.tx(env.functions.anchorBatch(sid, 0, FAR, b"r" * 32, 1), station)
    assert info.value.details["args"][0] == FAR
    end = chain.now() + lead - 60
    chain.tx(env.functions.anchorBatch(sid, 0, end, b"r" * 32, 1), station)
    assert env.functions.stationOf(sid).call()[4] == end


def test_no_role_but_a_hospital_can_take_an_rx_id(
    chain: Chain, deployment: Deployment, unique: Callable[[str], bytes]
) -> None:
    """Squatting by raw transaction: every other role, and an account of no organisation, is refused; the
    id stays free for the hospital. (A hospital taking another's id is its own signed act: residual risk,
    named by `provenance audit workflow`, docs/security.md.)"""
    rx = deployment.suite["Prescriptions"]
    rx_id = unique("rx")
    expires = chain.now() + 86_400
    squatters: list[LocalAccount] = [
        deployment.account(name) for name, role, who in ORG_PLAN if who is not None and role != Role.HOSPITAL
    ]
    squatters.append(chain.committee[0])  # a committee member has no organisation
    assert {deployment.orgs[n].role for n, _, w in ORG_PLAN if w is not None} - {Role.HOSPITAL} == {
        r for r in Role if r not in (Role.NONE, Role.HOSPITAL, Role.AUDITOR, Role.REGULATOR)
    }
    for who in squatters:
        unauthorized(chain, rx.functions.issue(rx_id, b"s" * 32, expires), who, Role.HOSPITAL)
    assert rx.functions.statusOf(rx_id).call()[0] == 0
    chain.tx(rx.functions.issue(rx_id, b"i" * 32, expires), deployment.account("hospital-1"))
    assert rx.functions.statusOf(rx_id).call()[1] == deployment.orgs["hospital-1"].id
