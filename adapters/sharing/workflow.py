"""The data-sharing workflow: one state per request (``request:<request_id>``), pending -> consented ->
revoked, kept by ``DataSharing`` on chain; an access reads the request's consent and changes nothing. The
rules refuse what the contract would refuse, with the code the chain would give (its state and clock count
too: a raw transaction may have changed a request, the chain's clock may run ahead of the gateway's)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from adapters._common import check_expiry, parse_instant, stricter
from adapters.abc import ChainView, ContractCall, Panel, Provision, RecordFacts, Route, SetupCall, State, Step
from adapters.dated import MARK, mark_of
from adapters.sharing import demo as _demo
from adapters.sharing import lifecycle_rules
from adapters.sharing.chain import (
    dataset_owner,
    life_applied,
    life_call,
    purpose_key,
    request_digest,
    request_key,
    request_status,
)
from adapters.sharing.consent import check_consent
from adapters.sharing.domain import (
    ACCESS,
    CONSENT,
    CONTRACT,
    DOMAIN,
    LIFE_KINDS,
    REQUEST,
    REVOKE,
    request_state,
    state_key,
)
from adapters.sharing.errors import (
    AccessorMismatch,
    AccessPeriodSettled,
    ConsentMissing,
    ConsentRevoked,
    DatasetUnknown,
    NotDatasetOwner,
    ShareNotPending,
    ShareRequestExists,
    ShareRequestUnknown,
)
from adapters.sharing.payload import MAX_CONSENT, SharingAdapter
from adapters.sharing.routes import ROUTES
from provenance.chain.contracts import ContractReverted, chain_key
from provenance.errors import OrgMismatch
from provenance.timestamps import to_unix

if TYPE_CHECKING:  # annotations only
    from adapters.abc import DemoWriter


def _at(mark: Mapping[str, Any]) -> datetime:
    return parse_instant(mark["at"], "at")


class SharingWorkflow(SharingAdapter):
    """``share.request`` and ``share.access`` by a data user, ``share.consent`` and
    ``share.revoke_consent`` by the dataset's owner."""

    domain = DOMAIN
    contracts: tuple[str, ...] = (CONTRACT,)
    watched: tuple[str, ...] = ()
    routes: Sequence[Route] = ROUTES
    panels: Sequence[Panel] = ()

    def demo(self, writer: DemoWriter) -> str | None:
        _demo.data_life(writer)
        return f"dataset:{_demo.DATASET}"

    def provision(self, network: Provision) -> Sequence[SetupCall]:
        # Each dataset registered by its owner (no schema digest yet: its ``data.collected`` record says it).
        fns = network.contracts[CONTRACT].functions
        return [
            SetupCall(org.id, fns.registerDataset(chain_key("dataset", dataset), b"\0" * 32))
            for org in network.orgs
            for dataset in org.datasets
        ]

    def keys(self, kind: str, facts: Mapping[str, Any]) -> tuple[str, ...]:
        if kind in LIFE_KINDS:
            return lifecycle_rules.keys(kind, facts)
        return (state_key(str(facts["request_id"])),)

    def transition(
        self, record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, now: datetime
    ) -> Step:
        if record.kind in LIFE_KINDS:
            return lifecycle_rules.transition(record, states, chain, now)
        facts, org = record.facts, record.org
        request_id = str(facts["request_id"])
        key = state_key(request_id)
        if record.kind == REQUEST:
            return Step(writes={key: self._request(record, states[key], chain)})
        state = request_state(states, request_id)
        if record.kind == ACCESS:
            accessor = str(record.detail["accessor"])
            if accessor != org and not accessor.startswith(f"{org}:"):
                raise AccessorMismatch(
                    "an access's accessor must be the submitting organisation (or '<org>:<account>')",
                    details={"accessor": accessor, "org": org},
                )
            consent = check_consent(state, request_id, org, max(now, chain.clock()))
            if stricter(lambda: request_status(chain, request_id)) == "revoked":
                # Withdrawn on chain by a raw transaction: DataSharing refuses the access (ConsentNotLive).
                raise ConsentRevoked(
                    f"the consent for request {request_id!r} was withdrawn on chain",
                    details={"request_id": request_id, "on_chain": "revoked"},
                )
            # Metered: a settlement of the request's accesses counts these (data.settled). One dated inside
            # a period already settled or pending would never be billed: refused, so the meter is the log.
            assert state is not None
            at = parse_instant(facts["accessed_at"], "accessed_at")
            if lifecycle_rules.settled_period(state.data, at, at + timedelta.resolution) is not None:
                raise AccessPeriodSettled(
                    f"accessed_at {facts['accessed_at']} lies in a period of request {request_id!r} "
                    "already settled or pending settlement",
                    details={"field": "accessed_at", "request_id": request_id},
                )
            metered = {**state.data, "accesses": [*state.data.get("accesses", []), facts["accessed_at"]]}
            return Step(prior=consent, writes={key: State(state.status, metered)})
        if state is None:
            raise ShareRequestUnknown(
                f"no data-sharing request {request_id!r}", details={"request_id": request_id}
            )
        dataset = state.data["dataset"]
        if dataset_owner(chain, dataset) != org:
            raise NotDatasetOwner(f"{org!r} does not own dataset {dataset!r}", details={"dataset": dataset})
        on_chain = stricter(lambda: request_status(chain, request_id))
        if record.kind == CONSENT:
            if state.status != "pending" or on_chain not in (None, "pending"):
                status = state.status if state.status != "pending" else on_chain
                raise ShareNotPending(
                    f"request {request_id!r} is {status}",
                    details={"status": state.status, "on_chain": on_chain},
                )
            check_expiry(chain, facts["expires_at"], "expires_at", MAX_CONSENT)
            dated = lifecycle_rules.in_order(CONSENT, facts, "granted_at", state.data)
            consent = {**facts, "digest": record.payload_digest}
            consented = {**state.data, "consent_record": record.record_id, "consent_facts": consent, **dated}
            return Step(prior=state.data["request_facts"], writes={key: State("consented", consented)})
        assert record.kind == REVOKE
        # The chain may lag (the consent's call not sent yet); withdrawn there, a raw transaction did it.
        if state.status != "consented" or on_chain == "revoked":
            raise ConsentMissing(
                f"request {request_id!r} has no live consent to revoke",
                details={"status": state.status, "on_chain": on_chain},
            )
        # Withdrawn after what it was granted for: the grant, and every access logged under it.
        accessed = max(state.data.get("accesses", []), default=None)
        mark = mark_of(state.data)
        if accessed is not None and (mark is None or parse_instant(accessed, "accessed_at") > _at(mark)):
            mark = {"at": accessed, "kind": ACCESS}
        dated = lifecycle_rules.in_order(REVOKE, facts, "revoked_at", None if mark is None else {MARK: mark})
        return Step(writes={key: State("revoked", {**state.data, **dated})})

    @staticmethod
    def _request(record: RecordFacts, state: State | None, chain: ChainView) -> State:
        facts, org = record.facts, record.org
        request_id, dataset = str(facts["request_id"]), str(facts["dataset"])
        if facts.get("requester") != org:
            raise OrgMismatch(
                "a request's requester must be the submitting organisation",
                details={"requester": facts.get("requester"), "org": org},
            )
        if dataset_owner(chain, dataset) is None:
            raise DatasetUnknown(f"dataset {dataset!r} is not registered", details={"dataset": dataset})
        if state is not None:
            raise ShareRequestExists(f"request {request_id!r} exists", details={"request_id": request_id})
        if (on_chain := request_status(chain, request_id)) is not None:
            raise ShareRequestExists(
                f"the chain already holds request {request_id!r} (put there without a record here)",
                details={"request_id": request_id, "on_chain": on_chain},
            )
        data = {
            "dataset": dataset,
            "requester": org,
            "request_record": record.record_id,
            "request_facts": dict(facts),
            "consent_record": None,
            "consent_facts": None,
            **lifecycle_rules.in_order(REQUEST, facts, "requested_at", None),
        }
        return State("pending", data)

    def contract_call(self, record: RecordFacts) -> ContractCall | None:
        if record.kind in LIFE_KINDS:
            return life_call(record)
        request, digest = request_key(str(record.facts["request_id"])), bytes.fromhex(record.record_id)
        if record.kind == REQUEST:
            dataset = chain_key("dataset", str(record.facts["dataset"]))
            return ContractCall(CONTRACT, "request", (request, dataset, digest))
        if record.kind == CONSENT:
            scope = bytes.fromhex(record.payload_digest)  # the consent document (scope, purpose, expiry)
            # Its purpose apart: a derivation under the consent must name the same one (registerDerived).
            purpose = purpose_key(str(record.facts["purpose"]))
            expires = to_unix(record.facts["expires_at"])
            return ContractCall(CONTRACT, "consent", (request, scope, purpose, expires, digest))
        if record.kind == ACCESS:
            return ContractCall(CONTRACT, "recordAccess", (request, digest))
        return ContractCall(CONTRACT, "revokeConsent", (request, digest))

    def already_applied(self, record: RecordFacts, revert: ContractReverted, chain: ChainView) -> bool:
        if record.kind in LIFE_KINDS:
            return life_applied(record, chain)
        if record.kind == ACCESS:
            try:
                return bool(chain.call(CONTRACT, "accessRecorded", bytes.fromhex(record.record_id)))
            except ContractReverted:
                # A DataSharing deployed before accessRecorded existed (a network resumed from an older
                # checkout) has no such view; it never refused a repeat, so the revert was a real refusal.
                return False
        request_id = str(record.facts.get("request_id", ""))
        if record.kind == REQUEST:
            return request_digest(chain, request_id) == record.record_id
        event = "ConsentGranted" if record.kind == CONSENT else "ConsentWithdrawn"
        logs = chain.events(CONTRACT, event, requestId=request_key(request_id))
        return any(bytes(ev["digest"]).hex() == record.record_id for ev in logs)
