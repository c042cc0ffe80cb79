"""DataSharing: owners register datasets, users request, owners consent; access only under live consent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from web3.contract import Contract
from web3.logs import DISCARD

from provenance.chain.contracts import Role, deploy, transact
from tests.kit.contract_roles import unauthorized
from tests.kit.contracts import Chain, Deployment

PENDING, CONSENTED, REVOKED = 1, 2, 3
DAY = 86_400


@pytest.fixture
def ds(deployment: Deployment) -> Contract:
    return deployment.suite["DataSharing"]


def open_request(chain: Chain, dep: Deployment, unique: Callable[[str], bytes]) -> tuple[bytes, bytes]:
    ds = dep.suite["DataSharing"]
    dataset, request = unique("dataset"), unique("request")
    chain.tx(ds.functions.registerDataset(dataset, b"m" * 32), dep.account("data-owner-1"))
    chain.tx(ds.functions.request(request, dataset, b"q" * 32), dep.account("data-user-1"))
    return dataset, request


def consent(chain: Chain, dep: Deployment, request: bytes, ttl: int = DAY) -> int:
    expires = chain.now() + ttl
    fn = dep.suite["DataSharing"].functions.consent(request, b"s" * 32, b"p" * 32, expires, b"c" * 32)
    chain.tx(fn, dep.account("data-owner-1"))
    return expires


def test_request_consent_access_revoke(
    chain: Chain, deployment: Deployment, ds: Contract, unique: Callable[[str], bytes]
) -> None:
    owner, user = deployment.orgs["data-owner-1"], deployment.orgs["data-user-1"]
    dataset, request = open_request(chain, deployment, unique)
    assert ds.functions.datasetOf(dataset).call()[:2] == (owner.id, b"m" * 32)
    got = ds.functions.requestOf(request).call()
    assert got[:5] == (PENDING, dataset, user.id, b"q" * 32, b"\0" * 32)
    assert not ds.functions.consentLive(request).call()

    expires = chain.now() + DAY
    receipt = chain.tx(
        ds.functions.consent(request, b"s" * 32, b"p" * 32, expires, b"c" * 32),
        deployment.account("data-owner-1"),
    )
    (event,) = ds.events.ConsentGranted().process_receipt(receipt, errors=DISCARD)
    assert (event.args.ownerOrg, event.args.scopeDigest, event.args.expiresAt) == (
        owner.id,
        b"s" * 32,
        expires,
    )
    assert ds.functions.consentLive(request).call()

    for i in range(2):
        receipt = chain.tx(
            ds.functions.recordAccess(request, unique("access")), deployment.account("data-user-1")
        )
        (event,) = ds.events.AccessRecorded().process_receipt(receipt, errors=DISCARD)
        assert (event.args.datasetId, event.args.requesterOrg, event.args.accessIndex) == (
            dataset,
            user.id,
            i,
        )
    assert ds.functions.requestOf(request).call()[9] == 2

    receipt = chain.tx(ds.functions.revokeConsent(request, b"x" * 32), deployment.account("data-owner-1"))
    assert len(ds.events.ConsentWithdrawn().process_receipt(receipt, errors=DISCARD)) == 1
    assert ds.functions.requestOf(request).call()[0] == REVOKED
    with chain.reverts("ConsentNotLive") as info:
        chain.tx(ds.functions.recordAccess(request, b"a" * 32), deployment.account("data-user-1"))
    assert info.value.details["args"] == [request, REVOKED]
    with chain.reverts("ConsentNotLive"):
        chain.tx(ds.functions.revokeConsent(request, b"x" * 32), deployment.account("data-owner-1"))
    with chain.reverts("NotPending"):
        consent(chain, deployment, request)
    logged = ds.events.AccessRecorded().get_logs(from_block=0, argument_filters={"requestId": request})
    assert len(logged) == 2


def test_access_needs_consent_and_the_requester(
    chain: Chain, deployment: Deployment, ds: Contract, unique: Callable[[str], bytes]
) -> None:
    _, request = open_request(chain, deployment, unique)
    with chain.reverts("ConsentNotLive") as info:
        chain.tx(ds.functions.recordAccess(request, b"a" * 32), deployment.account("data-user-1"))
    assert info.value.details["args"] == [request, PENDING]
    consent(chain, deployment, request)
    with chain.reverts("NotRequester") as info:
        chain.tx(ds.functions.recordAccess(request, b"a" * 32), deployment.account("data-user-2"))
    assert info.value.details["args"] == [request, deployment.orgs["data-user-2"].id]
    with chain.reverts("RequestNotFound"):
        chain.tx(ds.functions.recordAccess(unique("request"), b"a" * 32), deployment.account("data-user-1"))
    with chain.reverts("NotPending"):
        consent(chain, deployment, request)


def test_an_access_digest_is_recorded_once(
    chain: Chain, deployment: Deployment, ds: Contract, unique: Callable[[str], bytes]
) -> None:
    """A recordAccess retried after its receipt was lost is refused, so the access is logged once."""
    _, request = open_request(chain, deployment, unique)
    consent(chain, deployment, request)
    user = deployment.account("data-user-1")
    first, second = unique("access"), unique("access")
    assert not ds.functions.accessRecorded(first).call()
    chain.tx(ds.functions.recordAccess(request, first), user)
    assert ds.functions.accessRecorded(first).call()
    with chain.reverts("DuplicateAccess") as info:
        chain.tx(ds.functions.recordAccess(request, first), user)
    assert info.value.details["args"] == [first]
    # Mined (an explicit gas limit skips the estimate, as for a retry racing its original): reverts too.
    with chain.reverts("DuplicateAccess"):
        transact(chain.w3, ds.functions.recordAccess(request, first), user, gas=200_000)
    receipt = chain.tx(ds.functions.recordAccess(request, second), user)  # same consent, another access
    (event,) = ds.events.AccessRecorded().process_receipt(receipt, errors=DISCARD)
    assert (event.args.accessDigest, event.args.accessIndex) == (second, 1)
    logged = ds.events.AccessRecorded().get_logs(from_block=0, argument_filters={"requestId": request})
    assert [(e.args.accessDigest, e.args.accessIndex) for e in logged] == [(first, 0), (second, 1)]
    assert ds.functions.requestOf(request).call()[9] == 2
    # A repeat is named as such before the consent checks: after the consent ended, and under another request.
    chain.tx(ds.functions.revokeConsent(request, b"x" * 32), deployment.account("data-owner-1"))
    with chain.reverts("DuplicateAccess"):
        chain.tx(ds.functions.recordAccess(request, first), user)
    _, other = open_request(chain, deployment, unique)
    consent(chain, deployment, other)
    with chain.reverts("DuplicateAccess"):
        chain.tx(ds.functions.recordAccess(other, second), user)
    assert len(ds.events.AccessRecorded().get_logs(from_block=0, argument_filters={"requestId": other})) == 0


def test_registry_and_request_errors(
    chain: Chain, deployment: Deployment, ds: Contract, unique: Callable[[str], bytes]
) -> None:
    dataset, request = open_request(chain, deployment, unique)
    with chain.reverts("DatasetExists"):
        chain.tx(ds.functions.registerDataset(dataset, b"m" * 32), deployment.account("data-owner-1"))
    with chain.reverts("DatasetNotFound"):
        chain.tx(
            ds.functions.request(unique("request"), unique("dataset"), b"q" * 32),
            deployment.account("data-user-1"),
        )
    with chain.reverts("RequestExists"):
        chain.tx(ds.functions.request(request, dataset, b"q" * 32), deployment.account("data-user-2"))
    with chain.reverts("RequestNotFound"):
        consent(chain, deployment, unique("request"))
    with chain.reverts("ExpiryNotInFuture"):
        consent(chain, deployment, request, ttl=-1)


def test_only_the_dataset_owner_consents(
    chain: Chain, deployment: Deployment, ds: Contract, unique: Callable[[str], bytes]
) -> None:
    # A second data-owner org on a registry of our own, so the shared registry stays untouched.
    reg = chain.new_registry()
    owner1, owner2, user = chain.accounts[6], chain.accounts[4], chain.accounts[7]
    chain.new_org(reg, "owner-1", Role.DATA_OWNER, owner1)
    other = chain.new_org(reg, "owner-2", Role.DATA_OWNER, owner2)
    chain.new_org(reg, "user-1", Role.DATA_USER, user)
    mine = deploy(chain.w3, "DataSharing", reg.address, sender=chain.accounts[0])
    dataset, request = unique("dataset"), unique("request")
    chain.tx(mine.functions.registerDataset(dataset, b"m" * 32), owner1)
    chain.tx(mine.functions.request(request, dataset, b"q" * 32), user)
    expires = chain.now() + DAY
    with chain.reverts("NotDatasetOwner") as info:
        chain.tx(mine.functions.consent(request, b"s" * 32, b"p" * 32, expires, b"c" * 32), owner2)
    assert info.value.details["args"] == [dataset, other]
    chain.tx(mine.functions.consent(request, b"s" * 32, b"p" * 32, expires, b"c" * 32), owner1)
    with chain.reverts("NotDatasetOwner"):
        chain.tx(mine.functions.revokeConsent(request, b"x" * 32), owner2)


def test_roles(chain: Chain, deployment: Deployment, ds: Contract, unique: Callable[[str], bytes]) -> None:
    dataset, request = open_request(chain, deployment, unique)
    expires = chain.now() + DAY
    cases = [
        (ds.functions.registerDataset(unique("dataset"), b"m" * 32), "data-user-1", Role.DATA_OWNER),
        (ds.functions.request(unique("request"), dataset, b"q" * 32), "data-owner-1", Role.DATA_USER),
        (
            ds.functions.consent(request, b"s" * 32, b"p" * 32, expires, b"c" * 32),
            "data-user-1",
            Role.DATA_OWNER,
        ),
        (ds.functions.revokeConsent(request, b"x" * 32), "hospital-1", Role.DATA_OWNER),
        (ds.functions.recordAccess(request, b"a" * 32), "data-owner-1", Role.DATA_USER),
    ]
    for fn, who, role in cases:
        unauthorized(chain, fn, deployment.account(who), role)


def test_expired_consent_allows_no_access(
    chain: Chain, deployment: Deployment, ds: Contract, unique: Callable[[str], bytes]
) -> None:
    _, request = open_request(chain, deployment, unique)
    expires = consent(chain, deployment, request, ttl=600)
    chain.advance(601)  # anvil only
    assert not ds.functions.consentLive(request).call()
    with chain.reverts("ConsentExpired") as info:
        chain.tx(ds.functions.recordAccess(request, b"a" * 32), deployment.account("data-user-1"))
    assert info.value.details["args"] == [request, expires]
