"""The party-building workflow: a member's recorded place (the branch that holds them and their stage) is
the one state; membership and transfer records move it, one member at a time across the whole network.
Every record is kept by ``PartyRecords`` (keyed by its digest)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from adapters.abc import ChainView, ContractCall, Panel, Provision, RecordFacts, Route, SetupCall, State, Step
from adapters.party.domain import CONTRACT, DOMAIN
from adapters.party.errors import PartyFirstStageInvalid, PartyMemberNotAtBranch, PartyStageInvalid
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


class PartyWorkflow(PartyAdapter):
    """``party.record``: meetings, study and dues are kept as they are; a membership or transfer record
    must follow the member's recorded place."""

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
        return (_member(facts),) if facts.get("type") in MEMBER_TYPES else ()

    def transition(
        self, record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, now: datetime
    ) -> Step:
        if record.facts.get("type") not in MEMBER_TYPES:
            return Step()
        key = _member(record.facts)
        state = states[key]
        place = None if state is None else {"branch_id": state.data["branch_id"], "stage": state.status}
        after = member_step(record.facts, place)
        return Step(
            writes={key: State(after["stage"], {"branch_id": after["branch_id"], "record": record.record_id})}
        )

    def contract_call(self, record: RecordFacts) -> ContractCall | None:
        kind = RECORD_TYPES[record.facts["type"]]
        return ContractCall(CONTRACT, "addRecord", (kind, bytes.fromhex(record.record_id)))

    def already_applied(self, record: RecordFacts, revert: ContractReverted, chain: ChainView) -> bool:
        return revert.error == "DuplicateRecord"  # PartyRecords keys records by their digest: ours
