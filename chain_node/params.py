"""JSON-RPC parameter parsing: quantities, byte strings, addresses, hashes, each bounded, each refused with
``-32602`` and the client's value quoted short."""

from __future__ import annotations

import re
from typing import Any

from chain_node.errors import Code, RpcError, show

UINT256_END = 1 << 256
U64_END = 1 << 64
# fullmatch, not int(v, 16) / bytes.fromhex alone: those also take "0x1\n", " 0x1", "0x_1", "0xab cd".
_QUANTITY = re.compile(r"0x[0-9a-fA-F]+")
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")


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
    elif isinstance(v, str) and len(v) <= 2 + (end.bit_length() + 3) // 4 and _QUANTITY.fullmatch(v):
        n = int(v, 16)
    if n is None or not 0 <= n < end:
        raise RpcError(Code.INVALID_PARAMS, f"invalid {what}: {show(v)}")
    return n


def p_data(v: Any, what: str = "data", size: int | None = None) -> bytes:
    """0x-hex bytes, optionally of a fixed size."""
    if isinstance(v, str) and _DATA.fullmatch(v):
        b = bytes.fromhex(v[2:])
        if size is None or len(b) == size:
            return b
    raise RpcError(Code.INVALID_PARAMS, f"invalid {what}: {show(v)}")


def p_address(v: Any) -> bytes:
    """A 20-byte address."""
    return p_data(v, "address", 20)


def p_hash(v: Any) -> bytes:
    """A 32-byte hash."""
    return p_data(v, "hash", 32)
