"""DataSharing's multi-party rules of a dataset's life: openings, derivations (each input own, open or
under the analyst's live consent for the analysis's purpose) and settlements (pending until the
counterpart countersigns the same terms; never more accesses than were recorded)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from web3.contract import Contract
from web3.logs import DISCARD

from adapters.sharing.chain import REVERT_CODES
from adapters.sharing.errors import SettlementAmountMismatch
from provenance.chain.contracts import load_artifact
from tests.contracts.test_contract_data_sharing import DAY, open_request
from tests.kit.contracts import Chain, Deployment

PENDING, SETTLED = 1, 2
NO_REQUEST = bytes(32)


@pytest.fixture
def ds(deployment: Deployment) -> Contract:
    return deployment.suite["DataSharing"]


def consent_for(chain: Chain, dep: Deployment, ds: Contract, request: bytes, purpose: bytes) -> None:
    """The owner consents for ``purpose`` (its SM3, as the gateway's binding sends it) for a day."""
    fn = ds.functions.consent(request, b"s" * 32, purpose, chain.now() + DAY, b"c" * 32)
    chain.tx(fn, dep.account("data-owner-1"))


def derive(ds: Contract, out: bytes, purpose: bytes, inputs: list[bytes], requests: list[bytes]) -> object:
    return ds.functions.registerDerived(out, purpose, inputs, requests, b"d" * 32)


def test_derivation_needs_each_input_covered(
    chain: Chain, deployment: Deployment, ds: Contract, unique: Callable[[str], bytes]
) -> None:
    user = deployment.account("data-user-1")
    analyst = deployment.orgs["data-user-1"].id
    dataset, request = open_request(chain, deployment, unique)
    purpose = unique("purpose")
    out = unique("dataset")
    with chain.reverts("InputNotFound") as info:
        chain.tx(derive(ds, out, purpose, [unique("dataset")], [NO_REQUEST]), user)
    with chain.reverts("InputNotCovered") as info:
        chain.tx(derive(ds, out, purpose, [dataset], [NO_REQUEST]), user)
    assert info.value.details["args"] == [dataset, NO_REQUEST]
    with chain.reverts("ConsentNotLive"):  # the request exists, the owner has not consented yet
        chain.tx(derive(ds, out, purpose, [dataset], [request]), user)
    consent_for(chain, deployment, ds, request, purpose)
    with chain.reverts("InputNotCovered"):  # consented for another purpose
        chain.tx(derive(ds, out, unique("purpose"), [dataset], [request]), user)
    with chain.reverts("InputNotCovered"):  # not data-user-2's request
        chain.tx(derive(ds, out, purpose, [dataset], [request]), deployment.account("data-user-2"))
    with chain.reverts("InputsInvalid"):
        chain.tx(derive(ds, out, purpose, [dataset], []), user)
    with chain.reverts("InputsInvalid"):
        chain.tx(derive(ds, out, purpose, [], []), user)
    receipt = chain.tx(derive(ds, out, purpose, [dataset], [request]), user)
    (event,) = ds.events.DatasetDerived().process_receipt(receipt, errors=DISCARD)
    assert (event.args.analystOrg, event.args.purposeDigest, event.args.inputs) == (
        analyst,
        purpose,
        [dataset],
    )
    assert ds.functions.datasetOf(out).call()[:2] == (analyst, b"d" * 32)
    with chain.reverts("DatasetExists"):
        chain.tx(derive(ds, out, purpose, [dataset], [request]), user)
    # The output is the analyst's own: it derives from it again with no consent, the owner cannot.
    chain.tx(derive(ds, unique("dataset"), unique("purpose"), [out], [NO_REQUEST]), user)
    with chain.reverts("InputNotCovered"):
        chain.tx(
            derive(ds, unique("dataset"), purpose, [out], [NO_REQUEST]), deployment.account("data-owner-1")
        )
    # A withdrawn consent covers nothing more.
    chain.tx(ds.functions.revokeConsent(request, b"x" * 32), deployment.account("data-owner-1"))
    with chain.reverts("ConsentNotLive"):
        chain.tx(derive(ds, unique("dataset"), purpose, [dataset], [request]), user)


def test_an_opened_dataset_needs_no_consent(
    chain: Chain, deployment: Deployment, ds: Contract, unique: Callable[[str], bytes]
) -> None:
    owner, user1, user2 = (deployment.account(n) for n in ("data-owner-1", "data-user-1", "data-user-2"))
    to_one, to_all = unique("dataset"), unique("dataset")
    for d in (to_one, to_all):
        chain.tx(ds.functions.registerDataset(d, b"m" * 32), owner)
    with chain.reverts("NotDatasetOwner"):
        chain.tx(ds.functions.openDataset(to_one, True, [], b"o" * 32), user1)
    with chain.reverts("DatasetNotFound"):
        chain.tx(ds.functions.openDataset(unique("dataset"), True, [], b"o" * 32), owner)
    receipt = chain.tx(
        ds.functions.openDataset(to_one, False, [deployment.orgs["data-user-1"].id], b"o" * 32), owner
    )
    (event,) = ds.events.DatasetOpened().process_receipt(receipt, errors=DISCARD)
    assert (event.args.isPublic, event.args.digest) == (False, b"o" * 32)
    chain.tx(ds.functions.openDataset(to_all, True, [], b"o" * 32), owner)
    assert ds.functions.openTo(to_one, deployment.orgs["data-user-1"].id).call()
    assert not ds.functions.openTo(to_one, deployment.orgs["data-user-2"].id).call()
    purpose = unique("purpose")
    chain.tx(derive(ds, unique("dataset"), purpose, [to_one, to_all], [NO_REQUEST, NO_REQUEST]), user1)
    chain.tx(derive(ds, unique("dataset"), purpose, [to_all], [NO_REQUEST]), user2)
    with chain.reverts("InputNotCovered") as info:
        chain.tx(derive(ds, unique("dataset"), purpose, [to_all, to_one], [NO_REQUEST, NO_REQUEST]), user2)
    assert info.value.details["args"] == [to_one, NO_REQUEST]


def test_a_named_consent_must_cover_an_open_input(
    chain: Chain, deployment: Deployment, ds: Contract, unique: Callable[[str], bytes]
) -> None:
    """The fifth attack (F7): an input open to the analyst that names a consent (a request id) is covered by
    that consent alone: a request that does not exist, is not consented or is for another purpose does
    not cover it (InputNotCovered, ConsentNotLive); naming none, the opening covers it."""
    owner, user = deployment.account("data-owner-1"), deployment.account("data-user-1")
    dataset, request = open_request(chain, deployment, unique)
    chain.tx(ds.functions.openDataset(dataset, False, [deployment.orgs["data-user-1"].id], b"o" * 32), owner)
    purpose = unique("purpose")
    with chain.reverts("InputNotCovered") as info:
        chain.tx(derive(ds, unique("dataset"), purpose, [dataset], [unique("request")]), user)
    assert info.value.details["args"][0] == dataset
    with chain.reverts("ConsentNotLive"):
        chain.tx(derive(ds, unique("dataset"), purpose, [dataset], [request]), user)
    consent_for(chain, deployment, ds, request, purpose)
    with chain.reverts("InputNotCovered"):
        chain.tx(derive(ds, unique("dataset"), unique("purpose"), [dataset], [request]), user)
    chain.tx(derive(ds, unique("dataset"), purpose, [dataset], [request]), user)
    chain.tx(derive(ds, unique("dataset"), unique("purpose"), [dataset], [NO_REQUEST]), user)


def test_settlement_pending_until_the_counterpart_countersigns(
    chain: Chain, deployment: Deployment, ds: Contract, unique: Callable[[str], bytes]
) -> None:
    owner, user = deployment.account("data-owner-1"), deployment.account("data-user-1")
    _, request = open_request(chain, deployment, unique)
    consent_for(chain, deployment, ds, request, unique("purpose"))
    for _ in range(3):
        chain.tx(ds.functions.recordAccess(request, unique("access")), user)
    settlement, terms = unique("settlement"), unique("terms")

    def propose(sid: bytes, count: int, price: int, amount: int, who: object = owner) -> object:
        return chain.tx(
            ds.functions.proposeSettlement(sid, request, count, price, amount, terms, b"p" * 32), who
        )

    with chain.reverts("SettlementAmountMismatch") as info:
        propose(settlement, 2, 150, 301)
    assert info.value.details["args"] == [301, 300]
    with chain.reverts("SettlementMeterExceeded") as info:
        propose(settlement, 4, 150, 600)
    assert info.value.details["args"] == [request, 4, 3]
    with chain.reverts("NotSettlementParty"):
        propose(settlement, 2, 150, 300, deployment.account("data-user-2"))
    # The sixth attack (F6-4): the requester's own low proposal would take the meter and freeze the owner's.
    with chain.reverts("NotSettlementProvider"):
        propose(settlement, 2, 1, 2, user)
    with chain.reverts("NotSettlementProvider"):
        propose(settlement, 0, 0, 0, user)
    with chain.reverts("RequestNotFound"):
        chain.tx(ds.functions.proposeSettlement(settlement, unique("r"), 0, 1, 0, terms, b"p" * 32), owner)
    receipt = propose(settlement, 2, 150, 300)
    (event,) = ds.events.SettlementProposed().process_receipt(receipt, errors=DISCARD)
    assert (event.args.counterpartOrg, event.args.amount) == (deployment.orgs["data-user-1"].id, 300)
    held = ds.functions.settlementOf(settlement).call()
    assert (held[0], held[4], held[5], held[6]) == (PENDING, terms, 2, 300)
    with chain.reverts("SettlementExists"):
        propose(settlement, 1, 150, 150)
    # Two of three accesses settled: a second settlement counts at most the third.
    with chain.reverts("SettlementMeterExceeded"):
        propose(unique("settlement"), 2, 1, 2)

    countersign = ds.functions.countersignSettlement
    with chain.reverts("NotSettlementParty"):  # the proposer itself
        chain.tx(countersign(settlement, terms, b"k" * 32), owner)
    with chain.reverts("NotSettlementParty"):  # a third party
        chain.tx(countersign(settlement, terms, b"k" * 32), deployment.account("data-user-2"))
    with chain.reverts("SettlementTermsMismatch"):
        chain.tx(countersign(settlement, unique("terms"), b"k" * 32), user)
    with chain.reverts("SettlementNotFound"):
        chain.tx(countersign(unique("settlement"), terms, b"k" * 32), user)
    assert ds.functions.settlementOf(settlement).call()[0] == PENDING
    receipt = chain.tx(countersign(settlement, terms, b"k" * 32), user)
    assert len(ds.events.SettlementCountersigned().process_receipt(receipt, errors=DISCARD)) == 1
    assert ds.functions.settlementOf(settlement).call()[0] == SETTLED
    with chain.reverts("SettlementNotPending"):
        chain.tx(countersign(settlement, terms, b"k" * 32), user)


def test_every_revert_has_a_domain_code() -> None:
    """Each custom error DataSharing reverts with names the domain's code for the same refusal (but a
    repeated access, which the chain caller confirms as already applied): a new error needs a code."""
    errors = {i["name"] for i in load_artifact("DataSharing").abi if i["type"] == "error"}
    assert errors - set(REVERT_CODES) == {"DuplicateAccess"}
    assert set(REVERT_CODES) <= errors
    assert REVERT_CODES["SettlementAmountMismatch"] == SettlementAmountMismatch.code
    assert REVERT_CODES["InputNotCovered"] == "INPUT_NOT_COVERED"
