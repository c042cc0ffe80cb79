"""The prescription domain's workflow errors, each with its stable code (payload faults:
``adapters.errors``)."""

from __future__ import annotations

from provenance.errors import Conflict, NotFound, NotPermitted, PayloadInvalid


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
