"""The data-sharing domain on chain: ``DataSharing`` holds the datasets and their owners, each request's
status (pending, consented, revoked) and the accesses recorded under a consent, the openings, the
derivations (each input covered) and the settlements (pending until countersigned)."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.abc import ChainView, ContractCall, RecordFacts
from adapters.errors import ExpiryNotInFuture, ExpiryTooFar
from adapters.sharing import errors
from adapters.sharing.domain import COLLECTED, CONTRACT, COUNTERSIGNED, DERIVED, OPENED, SETTLED, STORED
from provenance.chain.contracts import chain_key, org_id
from provenance.crypto.sm3 import sm3
from provenance.errors import RoleForbidden

_STATUSES = (None, "pending", "consented", "revoked")


def request_key(request_id: str) -> bytes:
    return chain_key("share-request", request_id)


def request_status(chain: ChainView, request_id: str) -> str | None:
    """The DataSharing status of a request (pending, consented, revoked), None if the chain has none."""
    return _STATUSES[chain.call(CONTRACT, "requestOf", request_key(request_id))[0]]


def request_digest(chain: ChainView, request_id: str) -> str:
    """The digest of the record that made the request on chain, hex (zeros: none)."""
    return bytes(chain.call(CONTRACT, "requestOf", request_key(request_id))[3]).hex()


def dataset_owner(chain: ChainView, dataset: str) -> str | None:
    """The organisation that registered ``dataset`` in DataSharing, or None."""
    owner = bytes(chain.call(CONTRACT, "datasetOf", chain_key("dataset", dataset))[0]).rstrip(b"\0")
    return owner.decode("utf-8", "replace") if owner else None


# --- a dataset's life on chain: what several organisations agree on (docs/design/data-lifecycle.md) -----

_NO_REQUEST = bytes(32)


def purpose_key(purpose: str) -> bytes:
    """A consent's or a derivation's purpose as DataSharing compares them: SM3 of its UTF-8 text."""
    return sm3(purpose.encode("utf-8"))


def life_call(record: RecordFacts) -> ContractCall | None:
    """The DataSharing call of a ``data.*`` record; None for ``data.stored`` (the owner's own choice of
    place and class, which no other organisation has to agree to)."""
    facts, digest = record.facts, bytes.fromhex(record.record_id)
    if record.kind == STORED:
        return None
    if record.kind == COUNTERSIGNED:
        settlement = chain_key("settlement", str(facts["settlement_id"]))
        terms = bytes.fromhex(str(facts["settlement_digest"]))
        return ContractCall(CONTRACT, "countersignSettlement", (settlement, terms, digest))
    if record.kind == SETTLED:
        args = (
            chain_key("settlement", str(facts["settlement_id"])),
            request_key(str(facts["request_id"])),
            int(facts["access_count"]),
            int(facts["unit_price"]),
            int(facts["amount"]),
            bytes.fromhex(record.payload_digest),  # the terms the countersignature must name
            digest,
        )
        return ContractCall(CONTRACT, "proposeSettlement", args)
    dataset = chain_key("dataset", str(facts["dataset"]))
    if record.kind == COLLECTED:
        # The collection registers the dataset, its metadata digest the record's id: requests name it.
        return ContractCall(CONTRACT, "registerDataset", (dataset, digest))
    if record.kind == OPENED:
        to = [org_id(str(o)) for o in facts["to"]]
        return ContractCall(CONTRACT, "openDataset", (dataset, bool(facts["public"]), to, digest))
    inputs = facts["inputs"]
    names = [chain_key("dataset", str(i["dataset"])) for i in inputs]
    requests = [request_key(str(i["request_id"])) if i.get("request_id") else _NO_REQUEST for i in inputs]
    purpose = purpose_key(str(facts["purpose"]))
    return ContractCall(CONTRACT, "registerDerived", (dataset, purpose, names, requests, digest))


def life_applied(record: RecordFacts, chain: ChainView) -> bool:
    """Whether DataSharing already holds the ``data.*`` record (its call mined before a crash)."""
    facts = record.facts
    if record.kind in (COLLECTED, DERIVED):
        held = chain.call(CONTRACT, "datasetOf", chain_key("dataset", str(facts["dataset"])))
        return bytes(held[1]).hex() == record.record_id
    if record.kind == OPENED:
        logs = chain.events(CONTRACT, "DatasetOpened", datasetId=chain_key("dataset", str(facts["dataset"])))
    else:
        event = "SettlementProposed" if record.kind == SETTLED else "SettlementCountersigned"
        settlement = chain_key("settlement", str(facts["settlement_id"]))
        logs = chain.events(CONTRACT, event, settlementId=settlement)
    return any(bytes(ev["digest"]).hex() == record.record_id for ev in logs)


def settlement_status(chain: ChainView, settlement_id: str) -> str | None:
    """The DataSharing status of a settlement (pending, settled), None if the chain has none."""
    held = chain.call(CONTRACT, "settlementOf", chain_key("settlement", settlement_id))
    return (None, "pending", "settled")[held[0]]


# What each DataSharing revert means in the domain's codes: the contract refuses what the gateway's rules
# refuse first (workflow.py, lifecycle_rules.py), under these names on chain (a record's ``chain_error``).
# Not here: DuplicateAccess, a repeated call, which ``already_applied`` turns into the record's confirmation.
REVERT_CODES: Mapping[str, str] = {
    "Unauthorized": RoleForbidden.code,
    "RequestExists": errors.ShareRequestExists.code,
    "NotPending": errors.ShareNotPending.code,
    "NotRequester": errors.ConsentMissing.code,
    "ExpiryNotInFuture": ExpiryNotInFuture.code,
    "ExpiryTooFar": ExpiryTooFar.code,
    "InputsInvalid": errors.ShareRuleViolation.code,
    "DatasetExists": errors.DatasetExists.code,
    "DatasetNotFound": errors.DatasetUnknown.code,
    "NotDatasetOwner": errors.NotDatasetOwner.code,
    "InputNotFound": errors.InputUnknown.code,
    "InputNotCovered": errors.InputNotCovered.code,
    "ConsentNotLive": errors.ConsentMissing.code,
    "ConsentExpired": errors.ConsentExpired.code,
    "RequestNotFound": errors.ShareRequestUnknown.code,
    "SettlementExists": errors.SettlementExists.code,
    "SettlementNotFound": errors.SettlementUnknown.code,
    "SettlementNotPending": errors.SettlementNotPending.code,
    "NotSettlementParty": errors.SettlementPartyMismatch.code,
    "NotSettlementProvider": errors.SettlementNotProvider.code,
    "SettlementAmountMismatch": errors.SettlementAmountMismatch.code,
    "SettlementMeterExceeded": errors.SettlementMeterMismatch.code,
    "SettlementTermsMismatch": errors.SettlementTermsMismatch.code,
}
