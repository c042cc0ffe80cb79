"""The gateway's own error codes, and the one handler that maps every project error to HTTP.

Body shape everywhere: ``{"error": {"code", "message", "details"}}``. Codes are stable: clients match on them.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from provenance.errors import (
    AccessCodeInvalid,
    AccessCodeRequired,
    Conflict,
    LedgerError,
    NotFound,
    NotPermitted,
    OrgMismatch,
    ProvenanceError,
    RoleForbidden,
)

__all__ = [
    "AccessCodeInvalid",
    "AccessCodeRequired",
    "Conflict",
    "OrgMismatch",
    "RoleForbidden",
]  # (re-exported)

log = logging.getLogger("gateway")


class AuthRequired(ProvenanceError, code="AUTH_REQUIRED", http_status=401):
    pass


class TokenInvalid(ProvenanceError, code="TOKEN_INVALID", http_status=401):
    pass


class OrgUnknown(NotPermitted, code="ORG_UNKNOWN"):
    """The organisation is not registered (or not active) in OrgRegistry."""


class TxAccountMissing(NotPermitted, code="TX_ACCOUNT_MISSING"):
    """A workflow record of an organisation the gateway holds no transaction account for: its contract call
    could never be sent (an organisation registered in OrgRegistry after the gateway's manifest was made)."""


class KeyRevoked(ProvenanceError, code="KEY_REVOKED"):
    """The signature verifies only with a key that was revoked before the record's time."""


class KeyNotValid(ProvenanceError, code="KEY_NOT_VALID"):
    """The signature verifies only with a key outside its validity window at the record's time."""


class TimestampInvalid(ProvenanceError, code="TIMESTAMP_INVALID"):
    pass


class Replayed(ProvenanceError, code="REPLAYED", http_status=409):
    """Another record of the same organisation already used this nonce."""


class PrevUnknown(Conflict, code="PREV_UNKNOWN"):
    """A record whose ``prev`` names no accepted record of its subject (docs/formats.md: the digest of one
    of the subject's earlier records)."""


class IdempotencyConflict(ProvenanceError, code="IDEMPOTENCY_KEY_REUSED", http_status=409):
    pass


class StateConflict(Conflict, code="STATE_CONFLICT"):
    """A workflow state changed between the record's checks and its write by another writer the locks do
    not cover: nothing was kept; the same request decides again."""


class RecordNotFound(NotFound, code="RECORD_NOT_FOUND"):
    pass


class NotYetLogged(Conflict, code="NOT_YET_LOGGED"):
    """The record is accepted but not yet in a signed checkpoint: retry shortly."""


class PayloadPurged(ProvenanceError, code="PAYLOAD_PURGED", http_status=410):
    pass


class PayloadForbidden(NotPermitted, code="PAYLOAD_FORBIDDEN"):
    pass


class PayloadCorrupt(ProvenanceError, code="PAYLOAD_CORRUPT", http_status=500):
    """The stored payload fails authentication or no longer hashes to its digest (tampered storage)."""


class DataKeyUnavailable(ProvenanceError, code="DATA_KEY_UNAVAILABLE", http_status=500):
    """A record's data key cannot be unwrapped: the gateway's key-encryption key is not the one that
    wrapped it (started with another KEK file), or the KEK file cannot be used (then the gateway does not
    start). A misconfiguration of the gateway, not of the request; the message names the key ids or file."""


class InstanceRunning(ProvenanceError, code="GATEWAY_ALREADY_RUNNING", http_status=500):
    """A second gateway started on a SQLite database another gateway process serves: SQLite is
    single-instance (high availability needs PostgreSQL). A start-up refusal, never an HTTP answer."""


class LogConflictsWithAnchor(ProvenanceError, code="LOG_CONFLICTS_WITH_ANCHOR", http_status=500):
    """The gateway's log (after a restore) conflicts with ProvenanceLog's latest anchor: its root at the
    anchored size is not the chain's, so it refuses to start (a log merely behind the chain starts and
    reports the missing size). A start-up refusal, never an HTTP answer."""


class BackupInvalid(ProvenanceError, code="BACKUP_INVALID", http_status=500):
    """``python -m gateway restore`` refuses a folder that is not a complete gateway backup, or a target
    database that is not empty."""


class BodyTooDeep(ProvenanceError, code="BODY_TOO_DEEP"):
    pass


class JsonInvalid(ProvenanceError, code="JSON_INVALID"):
    pass


class NulInRequest(ProvenanceError, code="NUL_IN_REQUEST"):
    """A path or query holding a NUL character: no id, subject or parameter has one (PostgreSQL's text
    cannot hold it: such a look-up was a 500 there, a 404 on SQLite)."""


class RequestInvalid(ProvenanceError, code="REQUEST_INVALID", http_status=422):
    pass


class RetryLater(ProvenanceError, code="UNAVAILABLE", http_status=503):
    """503 (or 507) with ``Retry-After``: the request may succeed unchanged after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class Backpressure(RetryLater, code="BACKLOG_FULL"):
    """Too many records wait for the log or the chain; the client retries after ``retry_after`` s."""


class ChainUnavailable(RetryLater, code="CHAIN_UNAVAILABLE"):
    """A check needs the chain (OrgRegistry, a domain contract) and it cannot be reached."""


class StorageWriteFailed(RetryLater, code="STORAGE_WRITE_FAILED"):
    """The gateway's database refused or failed a write (permission revoked, read-only, I/O error).

    The transaction rolled back, so nothing of it was kept; the same request succeeds once the database
    takes writes again, which needs the gateway's operator.
    """


class StorageFull(StorageWriteFailed, code="STORAGE_FULL", http_status=507):
    """The gateway's database has no room left (disk full, file size limit, quota): nothing was kept."""


class ErrorInfo(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. RX_ALREADY_DISPENSED")
    message: str
    details: dict[str, Any]


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    error: ErrorInfo


_ERROR_STATUSES = {
    400: "invalid record, payload, signature or body (see error.code)",
    401: "no or invalid API token",
    403: "organisation, role or payload access not permitted",
    404: "no such record, prescription, checkpoint or route",
    405: "method not allowed",
    408: "the request body did not arrive within the body time-out (BODY_TIMEOUT)",
    409: "conflicts with the recorded state (replay, already dispensed, not yet logged...)",
    410: "payload purged",
    413: "request body too large",
    422: "request parameters or body fail validation",
    500: "internal error, a stored payload fails authentication, or its data key cannot be unwrapped "
    "(the gateway's key-encryption key)",
    503: "backlog full, chain unavailable or database write refused: retry after Retry-After seconds",
    507: "the gateway's database disk is full, nothing was kept: retry after Retry-After seconds",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` documenting the error body for ``statuses`` (all of them by default)."""
    chosen = statuses or tuple(_ERROR_STATUSES)
    return {code: {"model": ErrorResponse, "description": _ERROR_STATUSES[code]} for code in chosen}


def error_body(exc: ProvenanceError) -> dict[str, Any]:
    """The wire body of a project error (``step`` of verification errors goes into details)."""
    d = exc.to_dict()
    details = dict(d.get("details") or {})
    if "step" in d:
        details.setdefault("step", d["step"])
    return {"error": {"code": d["code"], "message": _text(d["message"]), "details": _jsonable(details)}}


def _text(value: str) -> str:
    """Text an error echoes from the request (a key, a field's value) as UTF-8 can carry it: a lone
    surrogate (``"\\ud800"`` in JSON decodes to one) becomes its escape; it made serialisers fail (500)."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {_text(str(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def error_response(exc: ProvenanceError) -> JSONResponse:
    """The HTTP response of a project error."""
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RetryLater) else None
    return JSONResponse(error_body(exc), status_code=exc.http_status, headers=headers)


def project_error_response(exc: ProvenanceError, *, method: str, path: str, retry_after: int) -> JSONResponse:
    """The answer to a project error raised while serving ``method`` ``path``: the one handler's, which the
    lean routes (``gateway.api.front``) answer with too."""
    if type(exc) is LedgerError:
        # The node is down or unreachable (a contract's refusal is a subclass, kept as it is): the same
        # request succeeds once it is back, so say when to retry rather than 502.
        exc = ChainUnavailable(exc.message, retry_after=retry_after, details=exc.details)
    if exc.http_status >= 500:
        log.warning("%s %s -> %s: %s", method, path, exc.code, exc.message)
    return error_response(exc)


def install(app: FastAPI, *, retry_after: int = 2) -> None:
    """Register the one exception handler (plus the translations of FastAPI's and Starlette's own)."""

    async def on_project_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProvenanceError)
        return project_error_response(
            exc, method=request.method, path=request.url.path, retry_after=retry_after
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "type": e.get("type"), "message": e.get("msg")}
            for e in exc.errors()[:20]
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return error_response(JsonInvalid("request body is not valid JSON", details={"errors": errors}))
        first = errors[0] if errors else {"loc": [], "message": "invalid"}
        message = f"request is invalid at {'/'.join(first['loc']) or '(body)'}: {first['message']}"
        return error_response(RequestInvalid(message, details={"errors": errors}))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 401: "AUTH_REQUIRED", 413: "BODY_TOO_LARGE"}
        code = codes.get(exc.status_code, "HTTP_ERROR")
        body = {"error": {"code": code, "message": _text(str(exc.detail)), "details": {}}}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {"error": {"code": "INTERNAL", "message": "internal error", "details": {}}}
        # Starlette raises the exception again once this is sent, and uvicorn then closes the connection: say
        # so, or a keep-alive client sends its next request into a closed socket.
        return JSONResponse(body, status_code=500, headers={"Connection": "close"})

    app.add_exception_handler(ProvenanceError, on_project_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
