"""Party building (党建): ``party.record`` for meetings (三会一课), study, dues, membership stages, transfers.

One kind, five record types told apart by ``type``; the subject is ``branch:<branch_id>``. Membership stages
follow the 发展党员 sequence 入党申请人 → 入党积极分子 → 发展对象 → 预备党员 → 正式党员, one step at a
time; a record states the stage it leaves (``previous_stage``) so the step is checked from the record alone,
and against the member's last recorded stage when ``AdaptContext.prior`` carries it.

A member id names one person in the whole network, and the member is recorded at one branch at a time: the
first record of a member anywhere is the first stage, and a member moves to another branch only by a
``transfer`` record of the branch that holds them (组织关系转接), naming the receiving branch and the stage
the member has; the receiving branch continues from that stage. :func:`member_step` is that rule, applied by
the gateway to the member's recorded place (the branch and stage of their last membership or transfer).

Reads (``READ_POLICY``): the branch reads its own records; besides it only auditors and regulators.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from adapters._common import (
    STRICT,
    Id,
    Instant,
    adapted,
    check_not_future,
    domain_policy,
    load_json_object,
    parse_instant,
    rfc3339_utc,
    unique_items,
    validation_error,
)
from adapters.abc import AdaptContext, AdaptedPayload, Payload
from adapters.errors import (
    PartyFirstStageInvalid,
    PartyMemberNotAtBranch,
    PartyRuleViolation,
    PartyStageInvalid,
    PayloadInvalid,
)

Text = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$")]

MEETING_TYPES = ("支部党员大会", "支部委员会", "党小组会", "党课")  # 三会一课
STAGES = ("入党申请人", "入党积极分子", "发展对象", "预备党员", "正式党员")
Stage = Literal["入党申请人", "入党积极分子", "发展对象", "预备党员", "正式党员"]
_MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"  # a pydantic pattern (Rust regex: $ is the end of the text)


Members = Annotated[list[Id], Field(min_length=1, max_length=1000), unique_items("member ids")]


class Meeting(BaseModel):
    """A 三会一课 meeting held by the branch."""

    model_config = STRICT

    type: Literal["meeting"]
    branch_id: Id
    meeting_id: Id
    meeting_type: Literal["支部党员大会", "支部委员会", "党小组会", "党课"]
    held_at: Instant
    topic: Text
    attendees: Members
    absentees: Annotated[list[Id], Field(max_length=1000), unique_items("member ids")] = []
    recorder: Id


class Study(BaseModel):
    """A study session (学习教育)."""

    model_config = STRICT

    type: Literal["study"]
    branch_id: Id
    session_id: Id
    held_at: Instant
    topic: Text
    materials: Annotated[list[Text], Field(max_length=100)] = []
    participants: Members
    duration_minutes: Annotated[int, Field(gt=0, le=24 * 60)]


class Dues(BaseModel):
    """One member's party dues (党费) for one month, in fen (分) so no amount is a float."""

    model_config = STRICT

    type: Literal["dues"]
    branch_id: Id
    member_id: Id
    month: Annotated[str, Field(pattern=_MONTH)]
    amount_fen: Annotated[int, Field(gt=0, le=100_000_000)]
    paid_at: Instant


class Membership(BaseModel):
    """A member reaching a stage of the 发展党员 sequence."""

    model_config = STRICT

    type: Literal["membership"]
    branch_id: Id
    member_id: Id
    stage: Stage
    previous_stage: Stage | None
    effective_at: Instant
    approved_by: Id  # the meeting (e.g. 支部党员大会 meeting_id) or body that decided the step


class Transfer(BaseModel):
    """A member leaving the branch for another (组织关系转接) at the stage they have."""

    model_config = STRICT

    type: Literal["transfer"]
    branch_id: Id  # the sending branch (the record's subject)
    member_id: Id
    stage: Stage  # the member's recorded stage, which the receiving branch continues from
    to_branch_id: Id
    effective_at: Instant
    approved_by: Id


PartyRecord = Annotated[Meeting | Study | Dues | Membership | Transfer, Field(discriminator="type")]
_RECORD: TypeAdapter[Meeting | Study | Dues | Membership | Transfer] = TypeAdapter(PartyRecord)
MEMBER_TYPES = frozenset({"membership", "transfer"})  # the record types that move a member's recorded place


def _check_stage(record: Membership, prior: dict[str, Any] | None) -> None:
    index = STAGES.index(record.stage)
    expected = STAGES[index - 1] if index else None
    if record.previous_stage != expected:
        raise PartyStageInvalid(
            f"{record.stage} follows {expected or 'no stage'}, not {record.previous_stage}",
            details={"field": "previous_stage", "expected": expected},
        )
    if prior is None:
        return
    if prior.get("member_id", record.member_id) != record.member_id:
        raise PartyRuleViolation("prior record is of another member", details={"field": "member_id"})
    check_recorded_stage(record.previous_stage, prior.get("stage"))


def check_recorded_stage(previous_stage: str | None, recorded: str | None) -> None:
    """A membership record's ``previous_stage`` must be the member's recorded stage (the gateway checks it
    again inside its write transaction)."""
    if recorded != previous_stage:
        raise PartyStageInvalid(
            f"member's recorded stage is {recorded}, not {previous_stage}",
            details={"field": "previous_stage", "recorded": recorded},
        )


_KINDS = ("party.record",)
READ_POLICY = domain_policy(_KINDS)


def member_step(facts: Mapping[str, Any], place: Mapping[str, Any] | None) -> dict[str, str]:
    """The member's recorded place (``branch_id``, ``stage``) after a membership or transfer record, given
    their place before it anywhere in the network (None: the member has no record yet); raises the
    specific error when the record may not follow that place."""
    branch, member = facts["branch_id"], facts["member_id"]
    if place is None:
        if facts["type"] == "transfer":
            raise PartyMemberNotAtBranch(
                f"member {member!r} has no recorded stage to transfer",
                details={"field": "member_id", "recorded_branch": None},
            )
        if facts["previous_stage"] is not None:
            raise PartyFirstStageInvalid(
                f"member {member!r} has no recorded stage: their first record is {STAGES[0]} (or they come "
                "with a transfer record of the branch that holds them)",
                details={"field": "previous_stage", "expected": None, "stage": STAGES[0]},
            )
        return {"branch_id": branch, "stage": facts["stage"]}
    if place["branch_id"] != branch:
        raise PartyMemberNotAtBranch(
            f"member {member!r} is recorded at branch {place['branch_id']!r}: only a transfer record of "
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


class PartyAdapter:
    """``party.record``; subject ``branch:<branch_id>``."""

    kinds: tuple[str, ...] = _KINDS
    read_policy = READ_POLICY

    def adapt(self, kind: str, payload: Payload, *, context: AdaptContext | None = None) -> AdaptedPayload:
        """Validate one party-building record."""
        ctx = context or AdaptContext()
        if kind not in self.kinds:
            raise PayloadInvalid(f"not a party kind: {kind}", details={"field": "kind"})
        obj = load_json_object(payload)
        try:
            record = _RECORD.validate_python(obj)
        except ValidationError as exc:
            if any(e["type"].startswith("union_tag") for e in exc.errors()):
                raise PayloadInvalid(
                    "type must be meeting, study, dues, membership or transfer", details={"field": "type"}
                ) from exc
            raise validation_error(exc, PayloadInvalid, "party record") from exc
        facts: dict[str, Any] = record.model_dump()
        for key in ("held_at", "paid_at", "effective_at"):
            if key in facts:
                when = parse_instant(facts[key], key)
                check_not_future(when, key, ctx)  # dates of what happened: not after the gateway's clock
                facts[key] = rfc3339_utc(when)
        if isinstance(record, Meeting) and set(record.attendees) & set(record.absentees):
            raise PartyRuleViolation(
                "a member cannot both attend and be absent", details={"field": "absentees"}
            )
        if isinstance(record, Membership):
            _check_stage(record, dict(ctx.prior) if ctx.prior is not None else None)
        if isinstance(record, Transfer) and record.to_branch_id == record.branch_id:
            raise PartyRuleViolation("a transfer names another branch", details={"field": "to_branch_id"})
        return adapted(kind, f"branch:{record.branch_id}", obj, facts)
