"""Limits against hostile input, for every reader of untrusted JSON (the SDK, the gateway, the node).

The recursion limit itself is held by ``provenance._internal.stack`` (imported first by the package); this
module is the public side: the depth scan run before a decoder sees the input, and the thread stack size
that holds the recursion limit.
"""

from __future__ import annotations

from provenance._internal.stack import RECURSION_LIMIT, THREAD_STACK_BYTES

__all__ = ["RECURSION_LIMIT", "THREAD_STACK_BYTES", "json_depth_exceeds"]

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
    for b in body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _DROP):
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
