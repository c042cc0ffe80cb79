"""JSON-RPC parameter parsing: quantities, byte strings, addresses, hashes, each bounded, each refused with
``-32602`` and the client's value quoted short."""

from __future__ import annotations

import contextlib
from typing import Any

from chain_node.errors import Code, RpcError, show

UINT256_END = 1 << 256
U64_END = 1 << 64


def param(params: list[Any], i: int, default: Any = ...) -> Any:
    """Positional parameter ``i``, or ``default``; -32602 when it is missing and has none."""
    if i < len(params):
        return params[i]
    if default is ...:
        raise RpcError(Code.INVALID_PARAMS, f"missing parameter {i}")
    return default


def p_quantity(v: Any, what: str = "quantity", end: int = UINT256_END) -> int:
    """A 0x-hex quantity below ``end`` (ints tolerated)."""
    n: int | None = None
    if isinstance(v, int) and not isinstance(v, bool):
        n = v
    elif isinstance(v, str) and v.startswith("0x") and len(v) <= 2 + (end.bit_length() + 3) // 4:
        with contextlib.suppress(ValueError):
            n = int(v, 16)
    if n is None or not 0 <= n < end:
        raise RpcError(Code.INVALID_PARAMS, f"invalid {what}: {show(v)}")
    return n


def p_data(v: Any, what: str = "data", size: int | None = None) -> bytes:
    """0x-hex bytes, optionally of a fixed size."""
    if isinstance(v, str) and v.startswith("0x"):
        try:
            b = bytes.fromhex(v[2:])
        except ValueError:
            b = None
        if b is not None and (size is None or len(b) == size):
            return b
    raise RpcError(Code.INVALID_PARAMS, f"invalid {what}: {show(v)}")


def p_address(v: Any) -> bytes:
    """A 20-byte address."""
    return p_data(v, "address", 20)


def p_hash(v: Any) -> bytes:
    """A 32-byte hash."""
    return p_data(v, "hash", 32)
