"""Limits against hostile input, for every reader of untrusted JSON (the SDK, the gateway, the node).

The recursion limit itself is held by ``provenance._internal.stack`` (imported first by the package); this
module is the public side: the depth scan run before a decoder sees the input, and the thread stack size
that holds the recursion limit.
"""

from __future__ import annotations

from provenance._internal.stack import RECURSION_LIMIT, THREAD_STACK_BYTES

__all__ = ["RECURSION_LIMIT", "THREAD_STACK_BYTES", "json_brackets_close", "json_depth_exceeds"]

# After escapes are removed, only quotes and brackets matter for nesting.
_DROP = bytes(b for b in range(256) if b not in b'"[]{}')


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays/objects deeper than ``limit`` (brackets inside strings ignored).

    Cheap enough to run on every request before the decoder sees it: escaped backslashes, then escaped
    quotes are removed (a run of backslashes pairs up from the left, as a JSON string reads it), every
    byte but quotes and brackets is dropped (all C-level), and only those are scanned. Dropping each
    backslash on its own instead would let ``"\\n"`` swallow its closing quote and hide any nesting after
    it. Invalid JSON is left to the decoder.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    in_string = False
    for b in _structure(body):
        if b == 0x22:  # quote
            in_string = not in_string
        elif in_string:
            continue
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def json_brackets_close(body: bytes) -> bool:
    """Whether every bracket of JSON text outside strings is closed, in order, by one of its kind (and no
    string is left open): what a text nested past a recursive parser's reach needs to be a value at all."""
    opened: list[int] = []
    in_string = False
    for b in _structure(body):
        if b == 0x22:
            in_string = not in_string
        elif in_string:
            continue
        elif b in (0x5B, 0x7B):
            opened.append(b + 2)  # "]" is "[" + 2, "}" is "{" + 2
        elif not opened or opened.pop() != b:
            return False
    return not opened and not in_string


def _structure(body: bytes) -> bytes:
    """The quotes and brackets of JSON text that delimit strings and nesting: escaped backslashes, then
    escaped quotes removed, every other byte dropped (all C-level)."""
    return body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _DROP)
