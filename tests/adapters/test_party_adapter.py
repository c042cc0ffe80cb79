"""Party-building adapter: record types, dues in fen, membership stage transitions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters import AdaptContext, adapt
from adapters.errors import PayloadInvalid
from adapters.party import STAGES, member_step
from adapters.party.errors import PartyFirstStageInvalid, PartyMemberNotAtBranch, PartyStageInvalid
from provenance.crypto import sm3_hex
from tests.kit.adapter_samples import ASSETS, PSEUDONYM_KEY

PARTY = ASSETS / "party"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PARTY / name).read_text(encoding="utf-8"))
    return data


MEETING, DUES, MEMBERSHIP = (
    load("meeting-branch-assembly.json"),
    load("dues.json"),
    load("membership-probationary.json"),
)


def expect(payload: dict[str, Any], code: str, field: str, **ctx: Any) -> None:
    with pytest.raises(PayloadInvalid) as e:
        adapt("party.record", payload, AdaptContext(**ctx) if ctx else None)
    assert (e.value.code, e.value.details["field"]) == (code, field), e.value.to_dict()


@pytest.mark.parametrize(
    ("base", "change", "field"),
    [
        (MEETING, {"type": "picnic"}, "type"),
        ({k: v for k, v in MEETING.items() if k != "type"}, {}, "type"),
        (MEETING, {"meeting_type": "座谈会"}, "meeting.meeting_type"),
        (MEETING, {"attendees": []}, "meeting.attendees"),
        (DUES, {"amount_fen": 46.5}, "dues.amount_fen"),
        (DUES, {"amount_fen": 0}, "dues.amount_fen"),
        (DUES, {"amount_fen": True}, "dues.amount_fen"),
        (DUES, {"month": "2026-13"}, "dues.month"),
        (MEMBERSHIP, {"stage": "党员"}, "membership.stage"),
    ],
)
def test_schema_rejections(base: dict[str, Any], change: dict[str, Any], field: str) -> None:
    expect({**base, **change}, "PAYLOAD_INVALID", field)


def test_facts_name_no_member_in_clear() -> None:
    """Facts are kept in clear beside the encrypted payload: a member is a keyed digest of their id (the
    same in every record, so it keys their recorded place), the attendance lists and recorder are left out."""
    keyed = AdaptContext(pseudonym_key=PSEUDONYM_KEY)
    meeting = json.dumps(adapt("party.record", MEETING, keyed).facts, ensure_ascii=False)
    assert not any(m in meeting for m in (*MEETING["attendees"], *MEETING["absentees"], MEETING["recorder"]))
    member = MEMBERSHIP["member_id"]
    facts = adapt("party.record", MEMBERSHIP, keyed).facts
    assert "member_id" not in facts and member not in json.dumps(facts, ensure_ascii=False)
    assert facts["member_ref_hmac"] not in (sm3_hex(member.encode()), sm3_hex(f"member:{member}".encode()))
    dues = adapt("party.record", {**DUES, "member_id": member}, keyed).facts
    assert dues["member_ref_hmac"] == facts["member_ref_hmac"]
    other = adapt("party.record", MEMBERSHIP, AdaptContext(pseudonym_key=bytes(32))).facts
    assert other["member_ref_hmac"] != facts["member_ref_hmac"]  # another deployment, another digest
    # A prior from the gateway (keyed) of another member is refused like one in clear.
    prior = {"member_ref_hmac": dues["member_ref_hmac"], "stage": MEMBERSHIP["previous_stage"]}
    assert adapt("party.record", MEMBERSHIP, AdaptContext(prior=prior, pseudonym_key=PSEUDONYM_KEY)).facts
    expect(
        MEMBERSHIP,
        "PARTY_RULE_VIOLATION",
        "member_id",
        prior={**prior, "member_ref_hmac": other["member_ref_hmac"]},
        pseudonym_key=PSEUDONYM_KEY,
    )


def test_attendee_cannot_be_absent() -> None:
    expect({**MEETING, "absentees": ["M001"]}, "PARTY_RULE_VIOLATION", "absentees")


def test_dates_not_in_the_future() -> None:
    """Every date a party record declares (held, paid, effective) lies before the gateway's clock plus the
    skew (#23 finding 6): DATE_IN_FUTURE."""
    now = datetime(2026, 11, 1, tzinfo=UTC)
    for record, field in ((DUES, "paid_at"), (MEETING, "held_at"), (MEMBERSHIP, "effective_at")):
        expect(record, "DATE_IN_FUTURE", field, now=now)


@pytest.mark.parametrize("index", range(len(STAGES)))
def test_each_stage_follows_the_previous(index: int) -> None:
    previous = STAGES[index - 1] if index else None
    record = {**MEMBERSHIP, "stage": STAGES[index], "previous_stage": previous}
    prior = {"member_id": "A017", "stage": previous}
    assert adapt("party.record", record, AdaptContext(prior=prior)).facts["stage"] == STAGES[index]


@pytest.mark.parametrize(
    ("stage", "previous"),
    [("正式党员", "发展对象"), ("入党积极分子", None), ("入党申请人", "正式党员"), ("发展对象", "预备党员")],
)
def test_skipped_or_reversed_stage(stage: str, previous: str | None) -> None:
    expect(
        {**MEMBERSHIP, "stage": stage, "previous_stage": previous},
        "PARTY_STAGE_TRANSITION_INVALID",
        "previous_stage",
    )


def test_stage_against_recorded_stage() -> None:
    code = "PARTY_STAGE_TRANSITION_INVALID"
    expect(MEMBERSHIP, code, "previous_stage", prior={"member_id": "A017", "stage": "入党积极分子"})
    expect(MEMBERSHIP, "PARTY_RULE_VIOLATION", "member_id", prior={"member_id": "A018", "stage": "发展对象"})


def test_member_place_first_stage_and_transfer() -> None:
    """``member_step``: the rule the gateway applies to a member's recorded place in the whole network."""
    first = dict(adapt("party.record", {**MEMBERSHIP, "stage": STAGES[0], "previous_stage": None}).facts)
    at_a = member_step(first, None)
    assert at_a == {"branch_id": first["branch_id"], "stage": STAGES[0]}
    late = dict(adapt("party.record", {**MEMBERSHIP, "stage": STAGES[4], "previous_stage": STAGES[3]}).facts)
    with pytest.raises(PartyFirstStageInvalid):
        member_step(late, None)
    elsewhere = {**first, "branch_id": "zb-other"}
    with pytest.raises(PartyMemberNotAtBranch):
        member_step(elsewhere, at_a)
    transfer = {
        "type": "transfer",
        "branch_id": first["branch_id"],
        "member_id": MEMBERSHIP["member_id"],
        "stage": STAGES[0],
        "to_branch_id": "zb-other",
        "effective_at": "2026-11-20T16:00:00+08:00",
        "approved_by": "MTG-1",
    }
    facts = dict(adapt("party.record", transfer).facts)
    with pytest.raises(PartyMemberNotAtBranch):
        member_step(facts, None)
    with pytest.raises(PartyStageInvalid):
        member_step({**facts, "stage": STAGES[1]}, at_a)
    at_b = member_step(facts, at_a)
    assert at_b == {"branch_id": "zb-other", "stage": STAGES[0]}
    step = {**first, "branch_id": "zb-other", "stage": STAGES[1], "previous_stage": STAGES[0]}
    assert member_step(step, at_b) == {"branch_id": "zb-other", "stage": STAGES[1]}
    expect({**transfer, "to_branch_id": transfer["branch_id"]}, "PARTY_RULE_VIOLATION", "to_branch_id")
