"""The rules of a dataset's life (``data.*``), steps of the sharing workflow.

States: ``dataset:<id>`` (owner, classification, openings, inputs and outputs: the lineage), ``request:<id>``
(the sharing request: its consent, and the accesses metered under it), ``settlement:<id>`` (pending, then
settled once the counterpart countersigns). A dataset registered in DataSharing without a ``data.collected``
(the devnet's) has no state until a derivation names it; its owner is the chain's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters._common import parse_instant, stricter
from adapters.abc import ChainView, RecordFacts, State, Step
from adapters.sharing.chain import dataset_owner, request_status
from adapters.sharing.consent import check_consent
from adapters.sharing.domain import (
    COLLECTED,
    COUNTERSIGNED,
    DERIVED,
    OPENED,
    SETTLED,
    STORED,
    dataset_key,
    settlement_key,
    state_key,
)
from adapters.sharing.errors import (
    ConsentRevoked,
    DataClassForbids,
    DatasetExists,
    DatasetNotStored,
    DatasetUnknown,
    InputNotCovered,
    InputUnknown,
    NotDatasetOwner,
    SettlementExists,
    SettlementMeterMismatch,
    SettlementNotPending,
    SettlementPartyMismatch,
    SettlementTermsMismatch,
    SettlementUnknown,
    ShareRequestUnknown,
)
from provenance.errors import OrgMismatch


def keys(kind: str, facts: Mapping[str, Any]) -> tuple[str, ...]:
    """The states a lifecycle record reads or writes."""
    if kind == DERIVED:
        inputs = facts["inputs"]
        requests = {state_key(str(i["request_id"])) for i in inputs if i.get("request_id")}
        return (
            dataset_key(str(facts["dataset"])),
            *(dataset_key(str(i["dataset"])) for i in inputs),
            *sorted(requests),
        )
    if kind == SETTLED:
        return (settlement_key(str(facts["settlement_id"])), state_key(str(facts["request_id"])))
    if kind == COUNTERSIGNED:
        return (settlement_key(str(facts["settlement_id"])),)
    return (dataset_key(str(facts["dataset"])),)


def _owner(state: State | None, chain: ChainView, dataset: str) -> str | None:
    return str(state.data["owner"]) if state is not None else dataset_owner(chain, dataset)


def _fresh(owner: str) -> dict[str, Any]:
    return {"owner": owner, "classification": None, "public": False, "to": [], "inputs": [], "outputs": []}


def _class_allows(classification: str | None, public: bool, to: list[str], dataset: str) -> None:
    """Core data is never opened; important data only to named organisations (分类分级)."""
    if classification == "core" and (public or to):
        raise DataClassForbids("core data is never opened", details={"dataset": dataset, "class": "core"})
    if classification == "important" and public:
        raise DataClassForbids(
            "important data is opened only to named organisations",
            details={"dataset": dataset, "class": "important"},
        )


def _own(record: RecordFacts, state: State | None, chain: ChainView) -> dict[str, Any]:
    """The dataset's state data for a step its owner takes (stored, opened), or the specific error."""
    dataset = str(record.facts["dataset"])
    owner = _owner(state, chain, dataset)
    if owner is None:
        raise DatasetUnknown(f"dataset {dataset!r} is not known", details={"dataset": dataset})
    if owner != record.org:
        raise NotDatasetOwner(
            f"{record.org!r} does not own dataset {dataset!r}", details={"dataset": dataset}
        )
    return dict(state.data) if state is not None else _fresh(owner)


def transition(
    record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, now: datetime
) -> Step:
    """The step of a ``data.*`` record, or its specific error."""
    facts, org = record.facts, record.org
    if record.kind in (SETTLED, COUNTERSIGNED):
        return _settlement(record, states, chain)
    if record.kind == DERIVED:
        return _derived(record, states, chain, now)
    dataset = str(facts["dataset"])
    key = dataset_key(dataset)
    state = states[key]
    if record.kind == COLLECTED:
        if facts["owner"] != org:
            raise OrgMismatch(
                "a collection's owner must be the submitting organisation",
                details={"owner": facts["owner"], "org": org},
            )
        if state is not None or dataset_owner(chain, dataset) is not None:
            raise DatasetExists(f"dataset {dataset!r} exists", details={"dataset": dataset})
        data = {**_fresh(org), "collected": record.record_id}
        return Step(writes={key: State("collected", data)})
    data = _own(record, state, chain)
    status = state.status if state is not None else "registered"
    if record.kind == STORED:
        _class_allows(facts["classification"], data["public"], data["to"], dataset)
        data.update(classification=facts["classification"], location=facts["location"])
        return Step(writes={key: State(status, data)})
    assert record.kind == OPENED
    if data["classification"] is None:
        raise DatasetNotStored(
            f"dataset {dataset!r} has no storage record: its classification is not known",
            details={"dataset": dataset},
        )
    _class_allows(data["classification"], facts["public"], facts["to"], dataset)
    data.update(public=data["public"] or facts["public"], to=sorted({*data["to"], *facts["to"]}))
    return Step(writes={key: State(status, data)})


def _derived(
    record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, now: datetime
) -> Step:
    facts, org = record.facts, record.org
    output = str(facts["dataset"])
    if facts["analyst"] != org:
        raise OrgMismatch(
            "a derivation's analyst must be the submitting organisation",
            details={"analyst": facts["analyst"], "org": org},
        )
    if states[dataset_key(output)] is not None or dataset_owner(chain, output) is not None:
        raise DatasetExists(f"dataset {output!r} exists", details={"dataset": output})
    writes: dict[str, State] = {}
    for item in facts["inputs"]:
        name, request_id = str(item["dataset"]), item.get("request_id")
        state = states[dataset_key(name)]
        owner = _owner(state, chain, name)
        if owner is None:
            raise InputUnknown(f"input dataset {name!r} is not known", details={"dataset": name})
        data = dict(state.data) if state is not None else _fresh(owner)
        if owner != org and not data["public"] and org not in data["to"]:
            _covered(states, name, request_id, org, str(facts["purpose"]), chain, now)
        data["outputs"] = [*data["outputs"], output]
        writes[dataset_key(name)] = State(state.status if state is not None else "registered", data)
    inputs = [str(i["dataset"]) for i in facts["inputs"]]
    out = {**_fresh(org), "inputs": inputs, "derived": record.record_id}
    writes[dataset_key(output)] = State("derived", out)
    return Step(writes=writes)


def _covered(
    states: Mapping[str, State | None],
    dataset: str,
    request_id: object,
    org: str,
    purpose: str,
    chain: ChainView,
    now: datetime,
) -> None:
    """An input neither open to ``org`` nor its own: a live consent of ``org``'s for it, for ``purpose``."""
    details = {"dataset": dataset, "request_id": request_id}
    if not isinstance(request_id, str):
        raise InputNotCovered(
            f"input {dataset!r} is not open to {org!r} and names no consent", details=details
        )
    state = states[state_key(request_id)]
    if state is not None and state.data.get("dataset") != dataset:
        raise InputNotCovered(f"request {request_id!r} is not for dataset {dataset!r}", details=details)
    consent = check_consent(state, request_id, org, max(now, chain.clock()))
    if stricter(lambda: request_status(chain, request_id)) == "revoked":
        raise ConsentRevoked(
            f"the consent for request {request_id!r} was withdrawn on chain",
            details={"request_id": request_id, "on_chain": "revoked"},
        )
    if consent.get("purpose") != purpose:
        raise InputNotCovered(
            f"the consent for request {request_id!r} is for another purpose",
            details={**details, "consented_purpose": consent.get("purpose")},
        )


def _settlement(record: RecordFacts, states: Mapping[str, State | None], chain: ChainView) -> Step:
    facts, org = record.facts, record.org
    settlement_id = str(facts["settlement_id"])
    key = settlement_key(settlement_id)
    state = states[key]
    if record.kind == COUNTERSIGNED:
        if state is None:
            raise SettlementUnknown(
                f"no settlement {settlement_id!r}", details={"settlement_id": settlement_id}
            )
        if state.status != "pending":
            raise SettlementNotPending(
                f"settlement {settlement_id!r} is {state.status}", details={"status": state.status}
            )
        if org != state.data["counterpart"]:
            raise SettlementPartyMismatch(
                f"only {state.data['counterpart']!r} countersigns settlement {settlement_id!r}",
                details={"org": org, "counterpart": state.data["counterpart"]},
            )
        if facts["settlement_digest"] != state.data["digest"] or facts["dataset"] != state.data["dataset"]:
            raise SettlementTermsMismatch(
                "the countersignature names other terms than the pending settlement",
                details={"settlement_digest": state.data["digest"], "dataset": state.data["dataset"]},
            )
        return Step(writes={key: State("settled", {**state.data, "countersigned": record.record_id})})
    request_id = str(facts["request_id"])
    rkey = state_key(request_id)
    request = states[rkey]
    if request is None:
        raise ShareRequestUnknown(
            f"no data-sharing request {request_id!r}", details={"request_id": request_id}
        )
    dataset = str(request.data["dataset"])
    sides = {"provider": dataset_owner(chain, dataset), "consumer": request.data.get("requester")}
    named = {"provider": facts["provider"], "consumer": facts["consumer"]}
    if facts["dataset"] != dataset or named != sides:
        raise SettlementPartyMismatch(
            "a settlement's sides are the request's dataset owner and requester",
            details={"dataset": dataset, **{k: v for k, v in sides.items()}},
        )
    if org not in named.values():
        raise SettlementPartyMismatch(
            f"{org!r} is neither side of request {request_id!r}", details={"org": org, **named}
        )
    if state is not None:
        raise SettlementExists(
            f"settlement {settlement_id!r} exists", details={"settlement_id": settlement_id}
        )
    start = parse_instant(facts["period_start"], "period_start")
    end = parse_instant(facts["period_end"], "period_end")
    for period in request.data.get("settled_periods", []):
        if parse_instant(period[0], "period_start") < end and start < parse_instant(period[1], "period_end"):
            raise SettlementExists(
                "a settlement of this request already covers part of the period",
                details={"period": period},
            )
    metered = sum(
        1 for at in request.data.get("accesses", []) if start <= parse_instant(at, "accessed_at") < end
    )
    if metered != facts["access_count"]:
        raise SettlementMeterMismatch(
            f"{metered} accesses recorded in the period, {facts['access_count']} settled",
            details={"metered": metered, "access_count": facts["access_count"]},
        )
    counterpart = named["consumer"] if org == named["provider"] else named["provider"]
    pending = {
        "request_id": request_id,
        "dataset": dataset,
        "proposer": org,
        "counterpart": counterpart,
        "digest": record.payload_digest,
        "record": record.record_id,
        "amount": facts["amount"],
    }
    periods = [*request.data.get("settled_periods", []), [facts["period_start"], facts["period_end"]]]
    return Step(
        writes={
            key: State("pending", pending),
            rkey: State(request.status, {**request.data, "settled_periods": periods}),
        }
    )
