"""Prescriptions: issue by hospitals, dispense once by pharmacies, revoke by the issuer before dispense."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from web3.contract import Contract
from web3.logs import DISCARD

from provenance.chain.contracts import Role, transact
from tests.kit.contract_roles import unauthorized
from tests.kit.contracts import Chain, Deployment

ISSUED, DISPENSED, REVOKED = 1, 2, 3
DAY = 86_400
ZERO32 = b"\0" * 32


@pytest.fixture
def rx(deployment: Deployment) -> Contract:
    return deployment.suite["Prescriptions"]


def issue(chain: Chain, dep: Deployment, rx_id: bytes, ttl: int = DAY, hospital: str = "hospital-1") -> int:
    expires = chain.now() + ttl
    chain.tx(dep.suite["Prescriptions"].functions.issue(rx_id, b"i" * 32, expires), dep.account(hospital))
    return expires


@pytest.fixture
def rx_id(chain: Chain, deployment: Deployment, unique: Callable[[str], bytes]) -> bytes:
    """A fresh prescription's id, issued by hospital-1 for a day."""
    issued = unique("rx")
    issue(chain, deployment, issued)
    return issued


def test_issue_then_dispense(
    chain: Chain, deployment: Deployment, rx: Contract, unique: Callable[[str], bytes]
) -> None:
    rx_id = unique("rx")
    hospital, pharmacy = deployment.orgs["hospital-1"], deployment.orgs["pharmacy-1"]
    assert rx.functions.statusOf(rx_id).call()[0] == 0
    expires = chain.now() + DAY
    receipt = chain.tx(rx.functions.issue(rx_id, b"i" * 32, expires), deployment.account("hospital-1"))
    (event,) = rx.events.Issued().process_receipt(receipt, errors=DISCARD)
    assert dict(event.args) == {
        "rxId": rx_id,
        "issuerOrg": hospital.id,
        "recordDigest": b"i" * 32,
        "expiresAt": expires,
        "account": deployment.account("hospital-1").address,
    }
    issued_at = chain.w3.eth.get_block(receipt.blockNumber)["timestamp"]
    assert rx.functions.statusOf(rx_id).call() == (
        ISSUED, hospital.id, ZERO32, expires, issued_at, 0, 0, b"i" * 32, ZERO32
    )  # fmt: skip
    assert rx.functions.isDispensable(rx_id).call()

    receipt = chain.tx(rx.functions.dispense(rx_id, b"d" * 32), deployment.account("pharmacy-1"))
    (event,) = rx.events.Dispensed().process_receipt(receipt, errors=DISCARD)
    assert (event.args.rxId, event.args.dispenserOrg, event.args.recordDigest) == (
        rx_id,
        pharmacy.id,
        b"d" * 32,
    )
    dispensed_at = chain.w3.eth.get_block(receipt.blockNumber)["timestamp"]
    assert rx.functions.statusOf(rx_id).call() == (
        DISPENSED, hospital.id, pharmacy.id, expires, issued_at, dispensed_at, 0, b"i" * 32, b"d" * 32
    )  # fmt: skip
    assert not rx.functions.isDispensable(rx_id).call()
    history = [
        e.event
        for ev in (rx.events.Issued, rx.events.Dispensed, rx.events.Revoked)
        for e in ev().get_logs(from_block=0, argument_filters={"rxId": rx_id})
    ]
    assert history == ["Issued", "Dispensed"]


def test_dispensed_exactly_once(chain: Chain, deployment: Deployment, rx: Contract, rx_id: bytes) -> None:
    pharmacy = deployment.account("pharmacy-1")
    chain.tx(rx.functions.dispense(rx_id, b"d" * 32), pharmacy)
    with chain.reverts("AlreadyDispensed") as info:
        chain.tx(rx.functions.dispense(rx_id, b"e" * 32), pharmacy)
    assert info.value.details["args"] == [rx_id]
    with chain.reverts("AlreadyDispensed"):
        chain.tx(rx.functions.revoke(rx_id, b"r" * 32), deployment.account("hospital-1"))


def test_losing_a_dispense_race_reports_already_dispensed(
    chain: Chain, deployment: Deployment, rx: Contract, rx_id: bytes
) -> None:
    # Both dispenses pass their gas estimate; the chain orders them and the second reverts when mined.
    # An explicit gas limit skips the estimate, as happens to the loser of a real race.
    pharmacy = deployment.account("pharmacy-1")
    chain.tx(rx.functions.dispense(rx_id, b"d" * 32), pharmacy)
    with chain.reverts("AlreadyDispensed"):
        transact(chain.w3, rx.functions.dispense(rx_id, b"e" * 32), pharmacy, gas=200_000)


def test_revoke_by_issuer_before_dispense(
    chain: Chain, deployment: Deployment, rx: Contract, rx_id: bytes
) -> None:
    with chain.reverts("NotIssuer") as info:
        chain.tx(rx.functions.revoke(rx_id, b"r" * 32), deployment.account("hospital-2"))
    assert info.value.details["args"] == [rx_id, deployment.orgs["hospital-2"].id]
    receipt = chain.tx(rx.functions.revoke(rx_id, b"r" * 32), deployment.account("hospital-1"))
    (event,) = rx.events.Revoked().process_receipt(receipt, errors=DISCARD)
    assert (event.args.issuerOrg, event.args.recordDigest) == (deployment.orgs["hospital-1"].id, b"r" * 32)
    status = rx.functions.statusOf(rx_id).call()
    assert (status[0], status[6], status[8]) == (
        REVOKED,
        chain.w3.eth.get_block(receipt.blockNumber)["timestamp"],
        b"r" * 32,
    )
    with chain.reverts("RxIsRevoked"):
        chain.tx(rx.functions.dispense(rx_id, b"d" * 32), deployment.account("pharmacy-1"))
    with chain.reverts("RxIsRevoked"):
        chain.tx(rx.functions.revoke(rx_id, b"r" * 32), deployment.account("hospital-1"))


def test_issue_errors(
    chain: Chain, deployment: Deployment, rx: Contract, unique: Callable[[str], bytes], rx_id: bytes
) -> None:
    for hospital in ("hospital-1", "hospital-2"):
        with chain.reverts("RxExists"):
            issue(chain, deployment, rx_id, hospital=hospital)
    with chain.reverts("ExpiryNotInFuture"):
        issue(chain, deployment, unique("rx"), ttl=-3600)
    with chain.reverts("RxNotFound"):
        chain.tx(rx.functions.dispense(unique("rx"), b"d" * 32), deployment.account("pharmacy-1"))
    with chain.reverts("RxNotFound"):
        chain.tx(rx.functions.revoke(unique("rx"), b"r" * 32), deployment.account("hospital-1"))


def test_roles(
    chain: Chain, deployment: Deployment, rx: Contract, unique: Callable[[str], bytes], rx_id: bytes
) -> None:
    expires = chain.now() + DAY
    cases = [
        (rx.functions.issue(unique("rx"), b"i" * 32, expires), "pharmacy-1", Role.HOSPITAL),
        (rx.functions.dispense(rx_id, b"d" * 32), "hospital-1", Role.PHARMACY),
        (rx.functions.revoke(rx_id, b"r" * 32), "pharmacy-1", Role.HOSPITAL),
        (rx.functions.dispense(rx_id, b"d" * 32), "data-user-1", Role.PHARMACY),
    ]
    for fn, who, role in cases:
        unauthorized(chain, fn, deployment.account(who), role)


def test_expired_prescriptions_cannot_be_dispensed(
    chain: Chain, deployment: Deployment, rx: Contract, unique: Callable[[str], bytes]
) -> None:
    rx_id, other = unique("rx"), unique("rx")
    expires = issue(chain, deployment, rx_id, ttl=600)
    issue(chain, deployment, other, ttl=600)
    chain.advance(601)  # anvil only: our node's clock is the wall clock
    assert not rx.functions.isDispensable(rx_id).call()
    with chain.reverts("RxExpired") as info:
        chain.tx(rx.functions.dispense(rx_id, b"d" * 32), deployment.account("pharmacy-1"))
    assert info.value.details["args"] == [rx_id, expires]
    chain.tx(
        rx.functions.revoke(other, b"r" * 32), deployment.account("hospital-1")
    )  # closing is still allowed
