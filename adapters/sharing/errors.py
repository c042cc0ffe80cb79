"""The data-sharing domain's workflow errors, each with its stable code (payload faults:
``adapters.errors``)."""

from __future__ import annotations

from provenance.errors import Conflict, NotFound, NotPermitted


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
