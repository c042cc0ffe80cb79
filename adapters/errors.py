"""Errors the adapters raise: all :class:`provenance.errors.PayloadInvalid`, each with a stable code.

``details`` always names the offending part (``field`` for JSON/FHIR paths, ``part`` for HJ 212 packets)
so the gateway can answer ``{"error": {"code", "message", "details"}}`` without parsing the message.
"""

from __future__ import annotations

from provenance.errors import AccessCodeDigestMissing, PayloadInvalid

__all__ = [
    "AccessCodeDigestMissing",
    "AccessInFuture",
    "ConsentScopeExceeded",
    "DateInFuture",
    "EnvRuleViolation",
    "ExpiryNotInFuture",
    "ExpiryTooFar",
    "FhirInvalid",
    "Hj212CrcMismatch",
    "Hj212LengthMismatch",
    "Hj212Malformed",
    "KindUnknown",
    "PartyFirstStageInvalid",
    "PartyMemberNotAtBranch",
    "PartyRuleViolation",
    "PartyStageInvalid",
    "PayloadInvalid",
    "RxDispenseMismatch",
    "RxQuantityInvalid",
    "RxRuleViolation",
    "ShareRuleViolation",
    "SubjectMismatch",
]


class KindUnknown(PayloadInvalid):
    """No adapter is registered for the record kind."""

    code = "KIND_UNKNOWN"


class SubjectMismatch(PayloadInvalid):
    """The subject the caller declared differs from the one the payload names."""

    code = "SUBJECT_MISMATCH"


class ExpiryNotInFuture(PayloadInvalid):
    """A prescription's or consent's expiry that is not after now (nor after the chain's clock, which the
    gateway checks too): the contract would refuse it with ``ExpiryNotInFuture``."""

    code = "EXPIRY_NOT_IN_FUTURE"


class ExpiryTooFar(PayloadInvalid):
    """An expiry beyond the longest its contract allows from the chain's clock (a prescription 366 days, a
    consent 5 years): the contract would refuse it with ``ExpiryTooFar``."""

    code = "EXPIRY_TOO_FAR"


class DateInFuture(PayloadInvalid):
    """A date the payload declares as past (authored, handed over, requested, granted, held, paid…) that
    lies beyond now plus the allowed clock skew."""

    code = "DATE_IN_FUTURE"


# --- e-prescription ----------------------------------------------------------------------------------


class FhirInvalid(PayloadInvalid):
    """Not a valid FHIR R4 resource of the expected type, or a required element is missing."""

    code = "FHIR_INVALID"


class RxRuleViolation(PayloadInvalid):
    """A valid resource that breaks a prescription rule (status, intent, quantity, validity, repeats)."""

    code = "RX_RULE_VIOLATION"


class RxDispenseMismatch(RxRuleViolation):
    """A dispense that differs from its prescription: another medication (no code in common, or another
    text), another quantity unit, more than prescribed, another rx id or patient."""

    code = "RX_DISPENSE_MISMATCH"


class RxQuantityInvalid(RxRuleViolation):
    """A quantity outside the sane range: not a number, ≤ 0, above 10^6, or with more than 3 decimals."""

    code = "RX_QUANTITY_INVALID"


# --- data sharing ------------------------------------------------------------------------------------


class ShareRuleViolation(PayloadInvalid):
    """A sharing record inconsistent with itself or with the record it builds on."""

    code = "SHARE_RULE_VIOLATION"


class AccessInFuture(DateInFuture):
    """An access dated later than now plus the allowed clock skew (its own code, older than the rule)."""

    code = "ACCESS_IN_FUTURE"


class ConsentScopeExceeded(ShareRuleViolation):
    """An access outside its consent: other dataset or purpose, extra fields, or outside its window."""

    code = "CONSENT_SCOPE_EXCEEDED"


# --- environmental monitoring ------------------------------------------------------------------------


class Hj212Malformed(PayloadInvalid):
    """An HJ 212-2017 packet that does not follow the packet grammar; ``details["part"]`` names where."""

    code = "HJ212_MALFORMED"


class Hj212CrcMismatch(Hj212Malformed):
    """The packet's CRC16 does not match its data segment."""

    code = "HJ212_CRC_MISMATCH"


class Hj212LengthMismatch(Hj212Malformed):
    """The packet's 4-digit length does not match its data segment."""

    code = "HJ212_LENGTH_MISMATCH"


class EnvRuleViolation(PayloadInvalid):
    """A well-formed packet that is not an acceptable reading (not a data upload, dated in the future)."""

    code = "ENV_RULE_VIOLATION"


# --- party building ----------------------------------------------------------------------------------


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
