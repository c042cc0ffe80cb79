"""The rules of a dataset's life (``data.*``), steps of the sharing workflow.

States: ``dataset:<id>`` (owner, classification, openings, inputs and outputs: the lineage), ``request:<id>``
(the sharing request: its consent, and the accesses metered under it), ``settlement:<id>`` (pending, then
settled once the counterpart countersigns). A dataset registered in DataSharing without a ``data.collected``
(the devnet's) has no state until a derivation names it; its owner is the chain's.

A derived dataset carries its inputs' restrictions (docs/design/data-lifecycle.md, "Derived data"):
``floor``, the highest class of its inputs, below which it is not stored; ``bound``, the consents it was
derived under (its own and its inputs'), which keep it from being opened and bind every later derivation
from it to their purpose while they live; ``closed``, the inputs that keep it from being opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

from adapters._common import parse_instant, stricter
from adapters.abc import ChainView, RecordFacts, State, Step
from adapters.dated import Dated, check_order
from adapters.sharing.chain import dataset_owner, request_status
from adapters.sharing.consent import check_consent, outside_validity
from adapters.sharing.domain import (
    COLLECTED,
    COUNTERSIGNED,
    DERIVED,
    OPENED,
    SETTLED,
    STORED,
    dataset_key,
    dataset_state,
    request_state,
    settlement_key,
    spelled,
    state_key,
)
from adapters.sharing.errors import (
    ClassBelowInputs,
    ConsentExpired,
    ConsentPurposeBound,
    ConsentRevoked,
    DataClassForbids,
    DatasetConsentBound,
    DatasetExists,
    DatasetNotStored,
    DatasetUnknown,
    DerivedInputClosed,
    DerivedOutsideConsent,
    InputNotCovered,
    InputUnknown,
    NotDatasetOwner,
    SettlementExists,
    SettlementMeterMismatch,
    SettlementNotPending,
    SettlementNotProvider,
    SettlementPartyMismatch,
    SettlementTermsMismatch,
    SettlementUnknown,
    ShareRequestUnknown,
)
from provenance.errors import OrgMismatch
from provenance.timestamps import parse_rfc3339

_RANK = {"general": 0, "important": 1, "core": 2}  # 分类分级, lowest first


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


def in_order(
    kind: str, facts: Mapping[str, Any], fact: str, data: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A subject's records in date order (``adapters.dated``): a dataset's steps after its earlier ones, a
    request's consent and withdrawal after its earlier records, a countersignature after its proposal
    (DATE_BEFORE_SUBJECT); the new mark. Accesses are held to the consent's validity and to the settled
    periods (F5-5) instead: a meter may log them out of order."""
    return check_order(Dated.of(facts, fact), data, kind, details={"field": fact})


def _owner(
    states: Mapping[str, State | None], chain: ChainView, dataset: str
) -> tuple[State | None, str | None]:
    """The state and owner of a dataset a record names; no owner where it was made in another case (the
    chain keys it as spelled, so the record names no dataset there)."""
    state = dataset_state(states, dataset)
    if state is not None:
        return state, str(state.data["owner"])
    return None, None if states[dataset_key(dataset)] is not None else dataset_owner(chain, dataset)


def _taken(states: Mapping[str, State | None], chain: ChainView, dataset: str) -> bool:
    """Whether a new dataset's id is already a dataset's, whatever its case: one kept here (its state key is
    upper-cased), or one registered on chain only (the devnet's, keyed as spelled: its spelling as given,
    lower- and upper-cased)."""
    if states[dataset_key(dataset)] is not None:
        return True
    return any(
        dataset_owner(chain, v) is not None
        for v in dict.fromkeys((dataset, dataset.lower(), dataset.upper()))
    )


def _fresh(owner: str, dataset: str) -> dict[str, Any]:
    return {
        "dataset": dataset,  # as made: a record naming it in another case names none (``spelled``)
        "owner": owner,
        "classification": None,
        "public": False,
        "to": [],
        "inputs": [],
        "outputs": [],
        "floor": None,
        "bound": [],
        "closed": [],
    }


def _highest(*classes: object) -> str | None:
    known = [c for c in classes if isinstance(c, str)]
    return max(known, key=_RANK.__getitem__) if known else None


def _class_allows(classification: str | None, public: bool, to: list[str], dataset: str) -> None:
    """Core data is never opened; important data only to named organisations (分类分级)."""
    if classification == "core" and (public or to):
        raise DataClassForbids("core data is never opened", details={"dataset": dataset, "class": "core"})
    if classification == "important" and public:
        raise DataClassForbids(
            "important data is opened only to named organisations",
            details={"dataset": dataset, "class": "important"},
        )


def _own(
    record: RecordFacts, states: Mapping[str, State | None], chain: ChainView
) -> tuple[State | None, dict[str, Any]]:
    """The dataset's state data for a step its owner takes (stored, opened), or the specific error."""
    dataset = str(record.facts["dataset"])
    state, owner = _owner(states, chain, dataset)
    if owner is None:
        raise DatasetUnknown(f"dataset {dataset!r} is not known", details={"dataset": dataset})
    if owner != record.org:
        raise NotDatasetOwner(
            f"{record.org!r} does not own dataset {dataset!r}", details={"dataset": dataset}
        )
    return state, (dict(state.data) if state is not None else _fresh(owner, dataset))


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
    if record.kind == COLLECTED:
        if facts["owner"] != org:
            raise OrgMismatch(
                "a collection's owner must be the submitting organisation",
                details={"owner": facts["owner"], "org": org},
            )
        if _taken(states, chain, dataset):
            raise DatasetExists(f"dataset {dataset!r} exists", details={"dataset": dataset})
        data = {
            **_fresh(org, dataset),
            "collected": record.record_id,
            **in_order(COLLECTED, facts, "collected_at", None),
        }
        return Step(writes={key: State("collected", data)})
    state, data = _own(record, states, chain)
    status = state.status if state is not None else "registered"
    data.update(in_order(record.kind, facts, "stored_at" if record.kind == STORED else "opened_at", data))
    if record.kind == STORED:
        floor = data.get("floor")
        if floor is not None and _RANK[facts["classification"]] < _RANK[floor]:
            raise ClassBelowInputs(
                f"dataset {dataset!r} is derived from {floor} data: it is stored {floor} or higher",
                details={"dataset": dataset, "class": facts["classification"], "floor": floor},
            )
        _class_allows(facts["classification"], data["public"], data["to"], dataset)
        data.update(classification=facts["classification"], location=facts["location"])
        return Step(writes={key: State(status, data)})
    assert record.kind == OPENED
    if data["classification"] is None:
        raise DatasetNotStored(
            f"dataset {dataset!r} has no storage record: its classification is not known",
            details={"dataset": dataset},
        )
    if data.get("bound"):
        raise DatasetConsentBound(
            f"dataset {dataset!r} is derived from data used under a consent: it is not opened",
            details={"dataset": dataset, "bound_by": [c["request_id"] for c in data["bound"]]},
        )
    if data.get("closed"):
        raise DerivedInputClosed(
            f"dataset {dataset!r} is derived from data that is neither open nor its owner's to open",
            details={"dataset": dataset, "inputs": data["closed"]},
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
    if _taken(states, chain, output):
        raise DatasetExists(f"dataset {output!r} exists", details={"dataset": output})
    purpose, at = str(facts["purpose"]), max(now, chain.clock())
    writes: dict[str, State] = {}
    out = {
        **_fresh(org, output),
        "inputs": [str(i["dataset"]) for i in facts["inputs"]],
        "derived": record.record_id,
        **in_order(DERIVED, facts, "derived_at", None),
    }
    bound: dict[str, dict[str, Any]] = {}
    for item in facts["inputs"]:
        name, request_id = str(item["dataset"]), item.get("request_id")
        state, owner = _owner(states, chain, name)
        if owner is None:
            raise InputUnknown(f"input dataset {name!r} is not known", details={"dataset": name})
        data = {**_fresh(owner, name), **state.data} if state is not None else _fresh(owner, name)
        mine = owner == org
        if data["bound"]:
            _bound(name, data["bound"], purpose, chain, at)
            if mine:
                _names_bound(states, name, data["bound"], request_id, org, at)
        # A named consent is the input's basis even where the input is also open or its own: it must cover
        # the use, and binds the output to its purpose (an opening names none, a consent does).
        named = request_id is not None and not (mine and data["bound"])
        if named or (not mine and not data["public"] and org not in data["to"]):
            consent = _covered(states, name, request_id, org, purpose, chain, now)
            _in_window(consent, str(request_id), facts["derived_at"])
            bound[str(request_id)] = {
                "request_id": request_id,
                "purpose": purpose,
                "expires_at": consent.get("expires_at"),
            }
        bound.update({str(c["request_id"]): c for c in data["bound"]})
        in_order(DERIVED, facts, "derived_at", data)  # after its inputs' records (their marks stay)
        out["floor"] = _highest(out["floor"], data["classification"], data["floor"])
        if not data["public"] and not (mine and not data["bound"] and not data["closed"]):
            out["closed"] = [*out["closed"], name]
        data["outputs"] = [*data["outputs"], output]
        writes[dataset_key(name)] = State(state.status if state is not None else "registered", data)
    out["bound"] = [bound[k] for k in sorted(bound)]
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
) -> Mapping[str, Any]:
    """An input neither open to ``org`` nor its own: a live consent of ``org``'s for it, for ``purpose``
    (its facts)."""
    details = {"dataset": dataset, "request_id": request_id}
    if not isinstance(request_id, str):
        raise InputNotCovered(
            f"input {dataset!r} is not open to {org!r} and names no consent", details=details
        )
    state = request_state(states, request_id)
    if state is None:
        raise ShareRequestUnknown(f"no data-sharing request {request_id!r}", details=details)
    if state.data.get("dataset") != dataset:
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
    return consent


def _in_window(consent: Mapping[str, Any], request_id: str, derived_at: object) -> None:
    """A derivation under a consent is dated inside its validity: granted, not yet expired."""
    missed = outside_validity(consent, parse_instant(str(derived_at), "derived_at"))
    if missed is not None:
        raise DerivedOutsideConsent(
            f"derived_at {derived_at} lies outside the validity of the consent for request {request_id!r}",
            details={"field": "derived_at", "request_id": request_id, missed: consent[missed]},
        )


def _bound(dataset: str, bound: list[dict[str, Any]], purpose: str, chain: ChainView, at: datetime) -> None:
    """An input derived under consents: the derivation is for their purpose, each consent still live."""
    for c in bound:
        rid, expires = str(c["request_id"]), c.get("expires_at")
        if c["purpose"] != purpose:
            raise ConsentPurposeBound(
                f"input {dataset!r} was derived under consent {rid!r}: only for its purpose",
                details={"dataset": dataset, "request_id": rid, "consented_purpose": c["purpose"]},
            )
        if isinstance(expires, str) and at >= parse_rfc3339(expires, lenient=True):
            raise ConsentExpired(
                f"the consent for request {rid!r} expired at {expires}",
                details={"request_id": rid, "expires_at": expires},
            )
        if stricter(partial(request_status, chain, rid)) == "revoked":
            raise ConsentRevoked(
                f"the consent for request {rid!r} was withdrawn on chain",
                details={"request_id": rid, "on_chain": "revoked"},
            )


def _names_bound(
    states: Mapping[str, State | None],
    dataset: str,
    bound: list[dict[str, Any]],
    named: object,
    org: str,
    at: datetime,
) -> None:
    """The owner of an input derived under its consents names one (``request_id``): checked on the
    request's own state too, which knows a withdrawal the chain has not mined yet."""
    ids = [str(c["request_id"]) for c in bound]
    if named not in ids:
        raise ConsentPurposeBound(
            f"input {dataset!r} was derived under a consent: the input names it",
            details={"dataset": dataset, "request_id": named, "bound_by": ids},
        )
    check_consent(request_state(states, str(named)), str(named), org, at)


def settled_period(request: Mapping[str, Any], start: datetime, end: datetime) -> list[str] | None:
    """The first period of the request's settlements (settled or pending) that meets [start, end)."""
    for period in request.get("settled_periods", []):
        if parse_instant(period[0], "period_start") < end and start < parse_instant(period[1], "period_end"):
            return list(period)
    return None


def _settlement(record: RecordFacts, states: Mapping[str, State | None], chain: ChainView) -> Step:
    facts, org = record.facts, record.org
    settlement_id = str(facts["settlement_id"])
    key = settlement_key(settlement_id)
    state = states[key]
    if record.kind == COUNTERSIGNED:
        state = spelled(state, state.data.get("settlement_id") if state is not None else None, settlement_id)
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
        dated = in_order(COUNTERSIGNED, facts, "countersigned_at", state.data)
        return Step(
            writes={key: State("settled", {**state.data, "countersigned": record.record_id, **dated})}
        )
    request_id = str(facts["request_id"])
    rkey = state_key(request_id)
    request = request_state(states, request_id)
    if request is None:
        raise ShareRequestUnknown(
            f"no data-sharing request {request_id!r}", details={"request_id": request_id}
        )
    dataset = str(request.data["dataset"])
    sides = {"provider": dataset_owner(chain, dataset), "consumer": request.data.get("requester")}
    named = {"provider": facts["provider"], "consumer": facts["consumer"]}
    # A third party learns nothing of the request (its sides, its settlements' periods, its meter): only its
    # sides, who read every settlement of it (GET /settlements/{id}), get the precise errors below.
    if org not in sides.values():
        raise SettlementPartyMismatch(
            f"{org!r} is neither side of request {request_id!r}", details={"org": org}
        )
    if facts["dataset"] != dataset or named != sides:
        raise SettlementPartyMismatch(
            "a settlement's sides are the request's dataset owner and requester",
            details={"dataset": dataset, **{k: v for k, v in sides.items()}},
        )
    # The provider bills, the consumer countersigns: a consumer's low proposal would hold the period
    # pending (no access is dated into it, no other settlement overlaps it), freezing the owner's billing.
    if org != sides["provider"]:
        raise SettlementNotProvider(
            f"only the dataset's owner {sides['provider']!r} proposes a settlement of request {request_id!r}",
            details={"org": org, "provider": sides["provider"]},
        )
    if state is not None:
        raise SettlementExists(
            f"settlement {settlement_id!r} exists", details={"settlement_id": settlement_id}
        )
    start = parse_instant(facts["period_start"], "period_start")
    end = parse_instant(facts["period_end"], "period_end")
    if (period := settled_period(request.data, start, end)) is not None:
        raise SettlementExists(
            "a settlement of this request already covers part of the period", details={"period": period}
        )
    metered = sum(
        1 for at in request.data.get("accesses", []) if start <= parse_instant(at, "accessed_at") < end
    )
    if metered != facts["access_count"]:
        raise SettlementMeterMismatch(
            f"{metered} accesses recorded in the period, {facts['access_count']} settled",
            details={"metered": metered, "access_count": facts["access_count"]},
        )
    pending = {
        "settlement_id": settlement_id,
        "request_id": request_id,
        "dataset": dataset,
        "proposer": org,
        "counterpart": named["consumer"],
        "digest": record.payload_digest,
        "record": record.record_id,
        "amount": facts["amount"],
        # The terms, which both sides read (the counterpart countersigns them).
        **{k: facts[k] for k in ("period_start", "period_end", "access_count", "unit_price")},
        **in_order(SETTLED, facts, "settled_at", None),
    }
    periods = [*request.data.get("settled_periods", []), [facts["period_start"], facts["period_end"]]]
    return Step(
        writes={
            key: State("pending", pending),
            rkey: State(request.status, {**request.data, "settled_periods": periods}),
        }
    )
