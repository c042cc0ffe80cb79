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


class AccessPeriodSettled(Conflict):
    """A ``share.access`` dated inside a period of its request already settled or pending settlement: no
    settlement would ever bill it (that period's meter would no longer match the log)."""

    code = "ACCESS_PERIOD_SETTLED"


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


# --- a dataset's life: collected, stored, opened, derived, settled (adapters/sharing/lifecycle.py) -----


class DatasetExists(Conflict):
    """A ``data.collected`` or ``data.derived`` naming a dataset already known (here or on chain)."""

    code = "DATASET_EXISTS"


class DatasetNotStored(Conflict):
    """A ``data.opened`` of a dataset with no ``data.stored``: its classification is not known yet."""

    code = "DATASET_NOT_STORED"


class DataClassForbids(NotPermitted):
    """An opening its classification forbids: core data never, important data only to named parties."""

    code = "DATA_CLASS_FORBIDS"


class ClassBelowInputs(DataClassForbids):
    """A ``data.stored`` of a derived dataset below the highest classification of its inputs."""

    code = "DATA_CLASS_BELOW_INPUTS"


class DatasetConsentBound(Conflict):
    """A ``data.opened`` of a dataset derived from data used under a consent: it stays under that consent."""

    code = "DATASET_CONSENT_BOUND"


class DerivedInputClosed(NotPermitted):
    """A ``data.opened`` of a derived dataset with an input neither public nor its owner's to open."""

    code = "DERIVED_INPUT_CLOSED"


class ConsentPurposeBound(NotPermitted):
    """A ``data.derived`` from a dataset derived under a consent, for another purpose than that consent's or
    without naming it (the input's ``request_id``)."""

    code = "CONSENT_PURPOSE_BOUND"


class InputUnknown(NotFound):
    """A ``data.derived`` naming an input dataset nobody collected or registered."""

    code = "DERIVED_INPUT_UNKNOWN"


class InputNotCovered(NotPermitted):
    """A ``data.derived`` input neither open to the analyst, nor its own, nor under a consent of the
    analyst's for that dataset whose purpose is the analysis's."""

    code = "INPUT_NOT_COVERED"


class DerivedOutsideConsent(InputNotCovered):
    """A ``data.derived`` whose ``derived_at`` lies before the named consent was granted or after it
    expires: the consent did not cover the input then."""

    code = "DERIVED_OUTSIDE_CONSENT"


class SettlementExists(Conflict):
    code = "SETTLEMENT_EXISTS"


class SettlementUnknown(NotFound):
    code = "SETTLEMENT_UNKNOWN"


class SettlementNotPending(Conflict):
    """A countersignature of a settlement already countersigned."""

    code = "SETTLEMENT_NOT_PENDING"


class SettlementPartyMismatch(NotPermitted):
    """A settlement signed by neither side of its request, or countersigned by its proposer or a third
    party, or naming sides other than the request's dataset owner and requester."""

    code = "SETTLEMENT_PARTY_MISMATCH"


class SettlementNotProvider(NotPermitted):
    """A ``data.settled`` proposed by the request's requester: the dataset's owner bills (proposes), the
    requester countersigns."""

    code = "SETTLEMENT_NOT_PROVIDER"


class SettlementMeterMismatch(Conflict):
    """A settlement whose ``access_count`` is not the number of accesses recorded in its period."""

    code = "SETTLEMENT_METER_MISMATCH"


class SettlementAmountMismatch(ShareRuleViolation):
    """A settlement whose ``amount`` is not ``access_count × unit_price``, or a countersignature naming
    other terms than the settlement's."""

    code = "SETTLEMENT_AMOUNT_MISMATCH"


class SettlementTermsMismatch(Conflict):
    """A countersignature naming another settlement record than the pending one (other terms)."""

    code = "SETTLEMENT_TERMS_MISMATCH"
