"""The party-building workflow: a member's recorded place (the branch that holds them, since when, and their
stage) is the state; membership and transfer records move it, one member at a time across the whole
network; dues follow it (recorded by the branch holding the member, once per member and month: state
``dues:<member>:<month>``). Every record is kept by ``PartyRecords`` (keyed by its digest)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from adapters.abc import ChainView, ContractCall, Panel, Provision, RecordFacts, Route, SetupCall, State, Step
from adapters.dated import Dated, check_order
from adapters.party.domain import CONTRACT, DOMAIN
from adapters.party.errors import (
    PartyDuesDuplicate,
    PartyFirstStageInvalid,
    PartyMemberNotAtBranch,
    PartyStageInvalid,
)
from adapters.party.payload import MEMBER_TYPES, STAGES, PartyAdapter, check_recorded_stage
from provenance.chain.contracts import ContractReverted

# PartyRecords keeps an open uint8 numbering of record types (0 invalid): ours, append only.
RECORD_TYPES = {"meeting": 1, "study": 2, "dues": 3, "membership": 4, "transfer": 5}


def member_step(facts: Mapping[str, Any], place: Mapping[str, Any] | None) -> dict[str, str]:
    """The member's recorded place (``branch_id``, ``stage``) after a membership or transfer record, given
    their place before it anywhere in the network (None: the member has no record yet); raises the
    specific error when the record may not follow that place."""
    branch = facts["branch_id"]
    if place is None:
        if facts["type"] == "transfer":
            raise PartyMemberNotAtBranch(
                "the member has no recorded stage to transfer",
                details={"field": "member_id", "recorded_branch": None},
            )
        if facts["previous_stage"] is not None:
            raise PartyFirstStageInvalid(
                f"the member has no recorded stage: their first record is {STAGES[0]} (or they come "
                "with a transfer record of the branch that holds them)",
                details={"field": "previous_stage", "expected": None, "stage": STAGES[0]},
            )
        return {"branch_id": branch, "stage": facts["stage"]}
    if place["branch_id"] != branch:
        raise PartyMemberNotAtBranch(
            f"the member is recorded at branch {place['branch_id']!r}: only a transfer record of "
            "that branch naming this one moves them here",
            details={"field": "member_id", "recorded_branch": place["branch_id"]},
        )
    if facts["type"] == "transfer":
        if facts["stage"] != place["stage"]:
            raise PartyStageInvalid(
                f"member's recorded stage is {place['stage']}, not {facts['stage']}",
                details={"field": "stage", "recorded": place["stage"]},
            )
        return {"branch_id": facts["to_branch_id"], "stage": facts["stage"]}
    check_recorded_stage(facts["previous_stage"], place["stage"])
    return {"branch_id": branch, "stage": facts["stage"]}


def _member(facts: Mapping[str, Any]) -> str:
    # Network-wide (a member is at one branch at a time), by the keyed digest of their id: states are kept
    # in the gateway's database in clear, like facts.
    return f"member:{facts['member_ref_hmac']}"


def _dues(facts: Mapping[str, Any]) -> str:
    return f"dues:{facts['member_ref_hmac']}:{facts['month']}"  # one dues record per member and month


def dues_step(facts: Mapping[str, Any], member: State | None, recorded: State | None) -> None:
    """Dues are recorded by the branch holding the member (recorded there by a membership or transfer
    record), for a month the member was held there by its end, once per member and month."""
    if member is None or member.data["branch_id"] != facts["branch_id"]:
        at = None if member is None else member.data["branch_id"]
        raise PartyMemberNotAtBranch(
            "dues are recorded by the branch holding the member: "
            + ("the member has no recorded stage" if at is None else f"the member is recorded at {at!r}"),
            details={"field": "member_id", "recorded_branch": at},
        )
    since = member.data.get("since")  # when the branch began to hold them (absent for older states)
    if since is not None and facts["month_until"] <= since:
        raise PartyMemberNotAtBranch(
            f"the branch holds the member since {since}, after the month {facts['month']}",
            details={"field": "month", "value": facts["month"], "since": since},
        )
    if recorded is not None:
        raise PartyDuesDuplicate(
            f"the member's dues for {facts['month']} are recorded already",
            details={"field": "month", "value": facts["month"], "record": recorded.data["record"]},
        )


def in_order(facts: Mapping[str, Any], fact: str, member: Mapping[str, Any] | None) -> dict[str, Any]:
    """A member's records in date order (``adapters.dated``): a stage, transfer or dues payment is not dated
    before the member's earlier records anywhere in the network (DATE_BEFORE_SUBJECT); the new mark.
    Meetings and study sessions name no member and are not ordered."""
    return check_order(Dated.of(facts, fact), member, str(facts["type"]), details={"field": fact})


class PartyWorkflow(PartyAdapter):
    """``party.record``: meetings and study are kept as they are; a membership or transfer record must
    follow the member's recorded place, dues the branch holding the member."""

    domain = DOMAIN
    contracts: tuple[str, ...] = (CONTRACT,)
    watched: tuple[str, ...] = ()
    routes: Sequence[Route] = ()
    panels: Sequence[Panel] = ()

    def provision(self, network: Provision) -> Sequence[SetupCall]:
        return ()  # a branch records as soon as it is registered

    def demo(self, writer: object) -> str | None:
        return None  # no demo records

    def keys(self, kind: str, facts: Mapping[str, Any]) -> tuple[str, ...]:
        if facts.get("type") == "dues":
            return _member(facts), _dues(facts)
        return (_member(facts),) if facts.get("type") in MEMBER_TYPES else ()

    def transition(
        self, record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, now: datetime
    ) -> Step:
        f = record.facts
        if f.get("type") == "dues":
            member = states[_member(f)]
            dues_step(f, member, states[_dues(f)])
            assert member is not None  # dues_step: the branch holds the member
            dated = in_order(f, "paid_at", member.data)
            return Step(
                writes={
                    _dues(f): State("recorded", {"record": record.record_id}),
                    _member(f): State(member.status, {**member.data, **dated}),
                }
            )
        if f.get("type") not in MEMBER_TYPES:
            return Step()
        key = _member(f)
        state = states[key]
        place = None if state is None else {"branch_id": state.data["branch_id"], "stage": state.status}
        after = member_step(f, place)
        dated = in_order(f, "effective_at", None if state is None else state.data)
        # Since when the branch holds the member (for their dues): kept while they stay, restarted on arrival.
        if state is None or after["branch_id"] != state.data["branch_id"]:
            since = f["effective_at"]
        else:
            since = state.data.get("since")
        data = {"branch_id": after["branch_id"], "record": record.record_id, "since": since, **dated}
        return Step(writes={key: State(after["stage"], data)})

    def contract_call(self, record: RecordFacts) -> ContractCall | None:
        kind = RECORD_TYPES[record.facts["type"]]
        return ContractCall(CONTRACT, "addRecord", (kind, bytes.fromhex(record.record_id)))

    def already_applied(self, record: RecordFacts, revert: ContractReverted, chain: ChainView) -> bool:
        return revert.error == "DuplicateRecord"  # PartyRecords keys records by their digest: ours
