"""Errors the adapters raise: all :class:`provenance.errors.PayloadInvalid`, each with a stable code.

``details`` always names the offending part (``field`` for JSON/FHIR paths, ``part`` for HJ 212 packets)
so the gateway can answer ``{"error": {"code", "message", "details"}}`` without parsing the message.
"""

from __future__ import annotations

from provenance.errors import AccessCodeDigestMissing, PayloadInvalid

__all__ = [
    "AccessCodeDigestMissing",
    "DateBeforeSubject",
    "DateInFuture",
    "ExpiryNotInFuture",
    "ExpiryTooFar",
    "Hj212CrcMismatch",
    "Hj212LengthMismatch",
    "Hj212Malformed",
    "KindUnknown",
    "PayloadInvalid",
    "QueryInvalid",
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


class DateBeforeSubject(PayloadInvalid):
    """A date the payload declares (reviewed, handed over, revoked, settled, effective, paid, granted…)
    that lies before the subject's earlier accepted records (``adapters.dated``: a prescription's, a
    party member's, a data-sharing request's, a dataset's)."""

    code = "DATE_BEFORE_SUBJECT"


# --- HJ 212-2017 packets (the codec the environmental domain uses) -----------------------------------


class Hj212Malformed(PayloadInvalid):
    """An HJ 212-2017 packet that does not follow the packet grammar; ``details["part"]`` names where."""

    code = "HJ212_MALFORMED"


class Hj212CrcMismatch(Hj212Malformed):
    """The packet's CRC16 does not match its data segment."""

    code = "HJ212_CRC_MISMATCH"


class Hj212LengthMismatch(Hj212Malformed):
    """The packet's 4-digit length does not match its data segment."""

    code = "HJ212_LENGTH_MISMATCH"


class QueryInvalid(PayloadInvalid):
    """A domain read's query that is malformed (a page's instant, cursor or limit; a panel's key or
    cursor)."""

    code = "REQUEST_INVALID"
    http_status = 422
