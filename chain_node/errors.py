"""The node's JSON-RPC error codes: one table, and the one mapping from project errors to it."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from provenance.errors import LedgerError, NotFound, NotPermitted, ProvenanceError


class Code(IntEnum):
    """JSON-RPC error codes (JSON-RPC 2.0 and EIP-1474 where they exist; ours documented here)."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    # geth's code for a revert: message "execution reverted: <reason>", the return data in ``data``;
    # web3.py turns it into ContractLogicError (with the reason) or ContractCustomError (with the data).
    EXECUTION_REVERTED = 3
    # geth's code for other execution failures and for transactions the pool refuses (nonce, funds, fee)
    EXECUTION_ERROR = -32000
    RESOURCE_NOT_FOUND = -32001
    SENDER_NOT_PERMITTED = -32003
    LIMIT_EXCEEDED = -32005
    CREATE_NOT_PERMITTED = -32010


MESSAGES: dict[Code, str] = {
    Code.PARSE_ERROR: "parse error",
    Code.INVALID_REQUEST: "invalid request",
    Code.METHOD_NOT_FOUND: "method not found",
    Code.INVALID_PARAMS: "invalid params",
    Code.INTERNAL_ERROR: "internal error",
    Code.EXECUTION_REVERTED: "execution reverted",
    Code.EXECUTION_ERROR: "execution error",
    Code.RESOURCE_NOT_FOUND: "resource not found",
    Code.SENDER_NOT_PERMITTED: "sender not permitted",
    Code.LIMIT_EXCEEDED: "limit exceeded",
    Code.CREATE_NOT_PERMITTED: "contract creation not permitted",
}


SHOW_CHARS = 80  # of a client's value quoted in an error message
MAX_MESSAGE = 1000


def show(v: Any) -> str:
    """A client's value as an error message quotes it: its repr, cut short (it may be megabytes)."""
    r = repr(v)
    return r if len(r) <= SHOW_CHARS else r[:SHOW_CHARS] + f"… ({len(r)} chars)"


class RpcError(Exception):
    """An error to return as a JSON-RPC error object."""

    def __init__(self, code: Code, message: str | None = None, data: Any = None) -> None:
        super().__init__(message or MESSAGES[code])
        self.code = code
        self.message = message or MESSAGES[code]
        self.data = data

    def to_json(self) -> dict[str, Any]:
        """The ``error`` member of a response."""
        msg = self.message if len(self.message) <= MAX_MESSAGE else self.message[:MAX_MESSAGE] + "…"
        err: dict[str, Any] = {"code": int(self.code), "message": msg}
        if self.data is not None:
            err["data"] = self.data
        return err


class CreateNotPermitted(NotPermitted, code="CREATE_NOT_PERMITTED"):
    pass


_PROJECT_ERRORS: list[tuple[type[ProvenanceError], Code]] = [
    (CreateNotPermitted, Code.CREATE_NOT_PERMITTED),
    (NotPermitted, Code.SENDER_NOT_PERMITTED),
    (NotFound, Code.RESOURCE_NOT_FOUND),
    (LedgerError, Code.EXECUTION_ERROR),
]


def to_rpc_error(exc: BaseException) -> RpcError:
    """Map any exception to the RpcError the client sees (unknown ones become internal errors)."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, ProvenanceError):
        for cls, code in _PROJECT_ERRORS:
            if isinstance(exc, cls):
                return RpcError(code, exc.message, {"code": exc.code, **exc.details})
        return RpcError(Code.EXECUTION_ERROR, exc.message, {"code": exc.code})
    return RpcError(Code.INTERNAL_ERROR, f"internal error: {type(exc).__name__}")
