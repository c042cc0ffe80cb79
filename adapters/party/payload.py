"""Party building (党建): ``party.record`` for meetings (三会一课), study, dues, membership stages, transfers.

One kind, five record types told apart by ``type``; the subject is ``branch:<branch_id>``. Membership stages
follow the 发展党员 sequence 入党申请人 → 入党积极分子 → 发展对象 → 预备党员 → 正式党员, one step at a
time; a record states the stage it leaves (``previous_stage``) so the step is checked from the record alone,
and against the member's last recorded stage when ``AdaptContext.prior`` carries it.

A member id names one person in the whole network, and the member is recorded at one branch at a time: the
first record of a member anywhere is the first stage, and a member moves to another branch only by a
``transfer`` record of the branch that holds them (组织关系转接), naming the receiving branch and the stage
the member has; the receiving branch continues from that stage. ``adapters.party.workflow.member_step``
is that rule (the workflow's ``transition``), applied to the member's recorded place (the branch and stage
of their last membership or transfer).

Reads (``READ_POLICY``): the branch reads its own records; besides it only auditors and regulators.

Facts (kept in clear in the gateway's database, beside the encrypted payload) name no person: the member is
``member_ref_hmac``, a keyed digest (``adapters._common.pseudonym``), which also keys the member's recorded
place; attendance lists and the recorder, which no rule reads, are left out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from adapters._common import (
    STRICT,
    Id,
    Instant,
    adapted,
    domain_policy,
    load_json_object,
    past_instant,
    pseudonym,
    rfc3339_utc,
    unique_items,
    validation_error,
)
from adapters.abc import AdaptContext, AdaptedPayload, Payload
from adapters.errors import PayloadInvalid
from adapters.party.errors import PartyDuesMonthInvalid, PartyRuleViolation, PartyStageInvalid

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
# Members' ids in a record, which its facts leave out (a person's id is a keyed digest there, or absent).
_PERSONS = ("attendees", "absentees", "participants", "recorder")
MEMBER_REF = "party-member"  # the pseudonym's ``what``: a member id keyed like no other identifier


def member_facts(member_id: str, ctx: AdaptContext) -> dict[str, str]:
    """The member's fact: ``member_ref_hmac``, their id's keyed digest (none without the deployment key).
    Case makes no other member (a017 is A017, as data-sharing request ids): ids are ASCII (ID_PATTERN),
    digested upper-cased."""
    keyed = pseudonym(ctx, MEMBER_REF, member_id.upper())
    return {} if keyed is None else {"member_ref_hmac": keyed}


def _check_stage(record: Membership, prior: dict[str, Any] | None, ctx: AdaptContext) -> None:
    index = STAGES.index(record.stage)
    expected = STAGES[index - 1] if index else None
    if record.previous_stage != expected:
        raise PartyStageInvalid(
            f"{record.stage} follows {expected or 'no stage'}, not {record.previous_stage}",
            details={"field": "previous_stage", "expected": expected},
        )
    if prior is None:
        return
    # The prior's member: in clear from a client's own facts, a keyed digest from the gateway's.
    if "member_id" in prior:
        same = str(prior["member_id"]).upper() == record.member_id.upper()
    else:
        same = prior.get("member_ref_hmac") in (
            None,
            member_facts(record.member_id, ctx).get("member_ref_hmac"),
        )
    if not same:
        raise PartyRuleViolation("prior record is of another member", details={"field": "member_id"})
    check_recorded_stage(record.previous_stage, prior.get("stage"))


def _dues_month(record: Dues, ctx: AdaptContext) -> str:
    """The first instant after the dues' month in the deployment's zone (RFC 3339 UTC: the ``month_until``
    fact, against which the workflow checks that the branch held the member in that month); a month that
    has not begun yet is refused."""
    year, month = int(record.month[:4]), int(record.month[5:])
    first = datetime(year, month, 1, tzinfo=ctx.time_zone)
    if ctx.now is not None and first > ctx.now + ctx.max_clock_skew:
        raise PartyDuesMonthInvalid(
            f"dues for {record.month}, a month that has not begun",
            details={"field": "month", "value": record.month},
        )
    after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=ctx.time_zone)
    return rfc3339_utc(after)


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
            if key in facts:  # dates of what happened: not after the gateway's clock
                facts[key] = past_instant(facts[key], key, ctx)
        if isinstance(record, Meeting) and set(record.attendees) & set(record.absentees):
            raise PartyRuleViolation(
                "a member cannot both attend and be absent", details={"field": "absentees"}
            )
        if isinstance(record, Membership):
            _check_stage(record, dict(ctx.prior) if ctx.prior is not None else None, ctx)
        if isinstance(record, Dues):
            facts["month_until"] = _dues_month(record, ctx)
        if isinstance(record, Transfer) and record.to_branch_id == record.branch_id:
            raise PartyRuleViolation("a transfer names another branch", details={"field": "to_branch_id"})
        for key in _PERSONS:
            facts.pop(key, None)
        if "member_id" in facts:
            facts |= member_facts(facts.pop("member_id"), ctx)
        return adapted(kind, f"branch:{record.branch_id}", obj, facts)
