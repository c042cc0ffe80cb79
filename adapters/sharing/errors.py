"""The data-sharing domain's workflow errors, each with its stable code (payload faults:
``adapters.errors``)."""

from __future__ import annotations

from adapters.errors import DateInFuture
from provenance.errors import Conflict, NotFound, NotPermitted, PayloadInvalid


class AccessorMismatch(NotPermitted):
    """A ``share.access`` whose ``accessor`` is not the submitting organisation (nor ``<org>:<account>``)."""

    code = "ACCESSOR_MISMATCH"


class DatasetUnknown(NotFound):
    code = "DATASET_UNKNOWN"


class ShareRequestExists(Conflict):
    code = "SHARE_REQUEST_EXISTS"


class ShareRequestUnknown(NotFound):
    code = "SHARE_REQUEST_UNKNOWN"


class NotDatasetOwner(NotPermitted):
    code = "NOT_DATASET_OWNER"


class ShareNotPending(Conflict):
    code = "SHARE_NOT_PENDING"


class ConsentMissing(Conflict):
    code = "CONSENT_MISSING"


class ConsentRevoked(Conflict):
    code = "CONSENT_REVOKED"


class ConsentExpired(Conflict):
    code = "CONSENT_EXPIRED"


# --- payload faults ------------------------------------------------------------------------------------


class ShareRuleViolation(PayloadInvalid):
    """A sharing record inconsistent with itself or with the record it builds on."""

    code = "SHARE_RULE_VIOLATION"


class AccessInFuture(DateInFuture):
    """An access dated later than now plus the allowed clock skew (its own code, older than the rule)."""

    code = "ACCESS_IN_FUTURE"


class ConsentScopeExceeded(ShareRuleViolation):
    """An access outside its consent: other dataset or purpose, extra fields, or outside its window."""

    code = "CONSENT_SCOPE_EXCEEDED"
