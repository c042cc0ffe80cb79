"""The party-building domain's errors, each with its stable code."""

from __future__ import annotations

from provenance.errors import PayloadInvalid


class PartyRuleViolation(PayloadInvalid):
    """A party record that breaks a domain rule."""

    code = "PARTY_RULE_VIOLATION"


class PartyStageInvalid(PartyRuleViolation):
    """A membership stage change that skips or reverses the 入党 sequence."""

    code = "PARTY_STAGE_TRANSITION_INVALID"


class PartyFirstStageInvalid(PartyStageInvalid):
    """A member with no recorded stage anywhere starts at 入党申请人 (a transfer brings a recorded stage)."""

    code = "PARTY_FIRST_STAGE_INVALID"


class PartyMemberNotAtBranch(PartyRuleViolation):
    """A membership or transfer record for a member whose recorded stage is at another branch (without a
    transfer to this one), or nowhere (a transfer)."""

    code = "PARTY_MEMBER_NOT_AT_BRANCH"


class PartyDuesMonthInvalid(PartyRuleViolation):
    """Dues for a month that has not begun yet (in the deployment's time zone)."""

    code = "PARTY_DUES_MONTH_INVALID"


class PartyDuesDuplicate(PartyRuleViolation):
    """A second dues record of one member for one month (whichever branch records it)."""

    code = "PARTY_DUES_DUPLICATE"
    http_status = 409
