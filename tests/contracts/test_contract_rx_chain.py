"""Prescriptions beyond issue and dispense: the pharmacist's review (审方) a deployment requires by default,
drug traceability codes handed over once network-wide, 医保's settlement once per dispense."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from web3.contract import Contract
from web3.logs import DISCARD

from provenance.chain.contracts import Role, deploy
from tests.kit.contract_roles import unauthorized
from tests.kit.contracts import Chain, Deployment

DAY = 86_400
APPROVED, REJECTED = 1, 2


@pytest.fixture(scope="module")
def rx(chain: Chain, deployment: Deployment) -> Contract:
    """A Prescriptions of its own, with the deployment's default: a dispense needs an approved review."""
    return deploy(chain.w3, "Prescriptions", deployment.suite.registry.address, sender=chain.accounts[0])


@pytest.fixture
def issued(
    chain: Chain, deployment: Deployment, rx: Contract, unique: Callable[[str], bytes]
) -> Callable[[int], list[bytes]]:
    """``issued(n)``: the ids of ``n`` fresh prescriptions, issued by hospital-1 for a day."""

    def issue(n: int) -> list[bytes]:
        ids = [unique("rx") for _ in range(n)]
        for rx_id in ids:
            chain.tx(
                rx.functions.issue(rx_id, b"i" * 32, chain.now() + DAY), deployment.account("hospital-1")
            )
        return ids

    return issue


def test_review_required_by_default_and_fixed_once_a_prescription_exists(
    chain: Chain, deployment: Deployment, rx: Contract, issued: Callable[[int], list[bytes]]
) -> None:
    assert rx.functions.reviewRequired().call()
    with chain.reverts("NotDeployer"):
        chain.tx(rx.functions.setReviewRequired(False), deployment.account("hospital-1"))
    (rx_id,) = issued(1)
    with chain.reverts("SettingLocked"):
        chain.tx(rx.functions.setReviewRequired(False), chain.accounts[0])
    pharmacy = deployment.account("pharmacy-1")
    with chain.reverts("NotReviewed"):
        chain.tx(rx.functions.dispense(rx_id, b"d" * 32), pharmacy)
    unauthorized(chain, rx.functions.review(rx_id, b"r" * 32, True), pharmacy, Role.PHARMACIST)
    receipt = chain.tx(rx.functions.review(rx_id, b"r" * 32, True), deployment.account("pharmacist-1"))
    (event,) = rx.events.Reviewed().process_receipt(receipt, errors=DISCARD)
    assert (event.args.reviewerOrg, event.args.approved) == (deployment.orgs["pharmacist-1"].id, True)
    with chain.reverts("AlreadyReviewed"):
        chain.tx(rx.functions.review(rx_id, b"s" * 32, False), deployment.account("pharmacist-1"))
    chain.tx(rx.functions.dispense(rx_id, b"d" * 32), pharmacy)
    assert rx.functions.reviewOf(rx_id).call() == (APPROVED, deployment.orgs["pharmacist-1"].id, b"r" * 32)


def test_rejected_is_never_dispensed_and_closed_is_not_reviewed(
    chain: Chain, deployment: Deployment, rx: Contract, issued: Callable[[int], list[bytes]]
) -> None:
    rejected, revoked = issued(2)
    chain.tx(rx.functions.review(rejected, b"r" * 32, False), deployment.account("pharmacist-1"))
    with chain.reverts("ReviewRejected"):
        chain.tx(rx.functions.dispense(rejected, b"d" * 32), deployment.account("pharmacy-1"))
    chain.tx(rx.functions.revoke(revoked, b"v" * 32), deployment.account("hospital-1"))
    with chain.reverts("RxIsRevoked"):
        chain.tx(rx.functions.review(revoked, b"r" * 32, True), deployment.account("pharmacist-1"))


def test_a_trace_code_is_handed_over_once_network_wide(
    chain: Chain,
    deployment: Deployment,
    rx: Contract,
    unique: Callable[[str], bytes],
    issued: Callable[[int], list[bytes]],
) -> None:
    first, second = issued(2)
    for rx_id in (first, second):
        chain.tx(rx.functions.review(rx_id, b"r" * 32, True), deployment.account("pharmacist-1"))
    box, other = unique("code"), unique("code")
    with chain.reverts("TraceCodeDuplicated"):
        chain.tx(
            rx.functions.dispenseWithCodes(first, b"d" * 32, [box, box]), deployment.account("pharmacy-1")
        )
    chain.tx(rx.functions.dispenseWithCodes(first, b"d" * 32, [box, other]), deployment.account("pharmacy-1"))
    assert rx.functions.codeUse(box).call() == (first, b"d" * 32)
    # The same box again, at another pharmacy for another prescription: a resold box (回流药) or a fake.
    with chain.reverts("TraceCodeReused") as info:
        chain.tx(rx.functions.dispenseWithCodes(second, b"e" * 32, [box]), deployment.account("pharmacy-2"))
    assert info.value.details["args"] == [box, first, b"d" * 32]


def test_settled_once_only_after_dispense(
    chain: Chain, deployment: Deployment, rx: Contract, issued: Callable[[int], list[bytes]]
) -> None:
    rx_id, revoked = issued(2)
    insurer = deployment.account("insurer-1")
    with chain.reverts("NotDispensed"):
        chain.tx(rx.functions.settle(rx_id, b"s" * 32), insurer)
    chain.tx(rx.functions.revoke(revoked, b"v" * 32), deployment.account("hospital-1"))
    with chain.reverts("RxIsRevoked"):
        chain.tx(rx.functions.settle(revoked, b"s" * 32), insurer)
    chain.tx(rx.functions.review(rx_id, b"r" * 32, True), deployment.account("pharmacist-1"))
    chain.tx(rx.functions.dispense(rx_id, b"d" * 32), deployment.account("pharmacy-1"))
    with chain.reverts("Unauthorized"):
        chain.tx(rx.functions.settle(rx_id, b"s" * 32), deployment.account("pharmacy-1"))
    chain.tx(rx.functions.settle(rx_id, b"s" * 32), insurer)
    assert rx.functions.settlementOf(rx_id).call() == (deployment.orgs["insurer-1"].id, b"s" * 32)
    with chain.reverts("AlreadySettled"):
        chain.tx(rx.functions.settle(rx_id, b"t" * 32), insurer)
