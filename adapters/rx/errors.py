"""The prescription domain's workflow errors, each with its stable code (payload faults:
``adapters.errors``)."""

from __future__ import annotations

from adapters.errors import DateBeforeSubject
from provenance.errors import Conflict, NotFound, NotPermitted, PayloadInvalid

# The codes' form rules live in provenance.trace_code (the CLI normalises before a look-up).
from provenance.errors import TraceCodeAmbiguous as TraceCodeAmbiguous
from provenance.errors import TraceCodeInvalid as TraceCodeInvalid


class RxExists(Conflict):
    code = "RX_EXISTS"


class RxUnknown(NotFound):
    code = "RX_UNKNOWN"


class RxAlreadyDispensed(Conflict):
    code = "RX_ALREADY_DISPENSED"


class RxRevoked(Conflict):
    code = "RX_REVOKED"


class RxExpired(Conflict):
    code = "RX_EXPIRED"


class RxNotIssuer(NotPermitted):
    code = "RX_NOT_ISSUER"


class RxNotRecorded(Conflict):
    """The chain holds the prescription but this gateway holds no signed ``rx.issue`` record of it (put there
    by a raw transaction, or through another gateway): a dispense cannot be checked against its content."""

    code = "RX_NOT_RECORDED"


class RxNotReviewed(Conflict):
    """A dispense before a licensed pharmacist approved the prescription (审方), where review is required."""

    code = "RX_NOT_REVIEWED"


class RxReviewRejected(Conflict):
    """A dispense of a prescription a pharmacist's review rejected: never dispensable."""

    code = "RX_REVIEW_REJECTED"


class RxNotReviewable(Conflict):
    """A review of a prescription no longer open: revoked, expired or dispensed."""

    code = "RX_NOT_REVIEWABLE"


class RxAlreadyReviewed(Conflict):
    """A second review: the first one decides (a rejected prescription is revoked and issued again)."""

    code = "RX_ALREADY_REVIEWED"


class RxNotDispensed(Conflict):
    """A settlement of a prescription not dispensed (yet), or of another dispense than the one recorded."""

    code = "RX_NOT_DISPENSED"


class RxAlreadySettled(Conflict):
    code = "RX_ALREADY_SETTLED"


class RxSettlementIdReused(Conflict):
    """A settlement id its insurer already gave another settlement (of another prescription)."""

    code = "RX_SETTLEMENT_ID_REUSED"


class TraceCodeReused(Conflict):
    """A drug traceability code (药品追溯码) already handed over in a dispense anywhere in the network."""

    code = "TRACE_CODE_REUSED"

    @classmethod
    def of(cls, code: str, **details: str) -> TraceCodeReused:
        """The refusal of box ``code`` (normal form). It names the code, never the earlier dispense: that is
        for that dispense's readers (the code look-up, ``routes.trace_code``); a pharmacy is not one."""
        return cls(
            f"the box with traceability code {code} was already dispensed", details={**details, "code": code}
        )


# --- payload faults ------------------------------------------------------------------------------------


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


class RxQuantityNotWhole(RxQuantityInvalid):
    """A prescription in package units for a fraction of a package (0.5 盒): no dispense hands over half
    a box, each box carries its own code."""

    code = "RX_QUANTITY_NOT_WHOLE"


class RxAmountInvalid(RxRuleViolation):
    """A settlement amount that is not a decimal string in yuan with two places."""

    code = "RX_AMOUNT_INVALID"


class TraceCodeExpired(TraceCodeInvalid):
    """A box whose GS1 (17) expiry date is before the day it was handed over."""

    code = "TRACE_CODE_EXPIRED"


class TraceCodeDoseUnits(TraceCodeInvalid):
    """Traceability codes on a dispense in dose units (片, ml …): a code names a package, and a quantity
    in doses cannot bound how many were handed over."""

    code = "TRACE_CODE_DOSE_UNITS"


class RxUnitInvalid(RxQuantityInvalid):
    """A quantity's unit (text or code) with invisible or control characters (盒 + U+200B): it would read
    as one unit and compare as another."""

    code = "RX_UNIT_INVALID"


class RxHandedOverBeforeIssue(RxRuleViolation, DateBeforeSubject):
    """A dispense handed over before the prescription was written (``authoredOn``)."""

    code = "RX_HANDED_OVER_BEFORE_ISSUE"


class RxSettledBeforeDispense(RxRuleViolation, DateBeforeSubject):
    """A settlement dated before the dispense it settles was handed over."""

    code = "RX_SETTLED_BEFORE_DISPENSE"


class RxHandedOverTooEarly(RxRuleViolation):
    """A dispense whose ``whenHandedOver`` lies further before the gateway's clock than the window a late
    upload is allowed (:data:`adapters._common.MAX_BACKDATE`): a backdated hand-over passed boxes that
    had expired by the time they were recorded."""

    code = "RX_HANDED_OVER_TOO_EARLY"


class RxBatchExpired(RxRuleViolation):
    """A dispense's contained Medication whose ``batch.expirationDate`` is before the hand-over (or before
    the day the gateway records it), like a box's GS1 (17) expiry (``TRACE_CODE_EXPIRED``)."""

    code = "RX_BATCH_EXPIRED"


class RxDispenseTooLarge(RxRuleViolation):
    """A dispense with more items in an array, or characters in a text, than docs/formats.md bounds (a few
    notes and instructions, sentences): ``details.field`` names it, ``details.limit`` the bound."""

    code = "RX_DISPENSE_TOO_LARGE"
