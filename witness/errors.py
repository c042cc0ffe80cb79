"""The witness's error codes (C2SP tlog-witness fixes the HTTP status of each refusal)."""

from __future__ import annotations

from provenance.errors import ConsistencyInvalid, NotFound, NotPermitted, ProvenanceError


class LogUnknown(NotFound, code="LOG_UNKNOWN"):
    """404: the checkpoint's origin is not a log this witness pins a key for."""


class LogSignatureInvalid(NotPermitted, code="LOG_SIGNATURE_INVALID"):
    """403: no signature on the checkpoint verifies with the log key pinned for its origin."""


class SizeConflict(ProvenanceError, code="SIZE_CONFLICT", http_status=409):
    """409: ``old`` is not the size last cosigned, or that size was cosigned with another root.

    Answered as ``text/x.tlog.size``: the size the witness holds, so that the client can send a proof from it.
    """

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message, details={"size": size})
        self.size = size


class ProofRefused(ConsistencyInvalid, http_status=422):
    """422: the consistency proof does not lead from the last cosigned checkpoint to this one."""
