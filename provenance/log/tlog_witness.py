"""The C2SP tlog-witness ``add-checkpoint`` call: its request body, and a client that submits one.

Request body (``POST <witness>/add-checkpoint``)::

    old <size the witness last cosigned>
    <base64 consistency proof hash>        zero to 63 lines, RFC 6962 §2.1.2 from old size to the new size
                                           blank line
    <the checkpoint note, with its signatures>

Answers: 200 with the witness's cosignature lines; 409 (``text/x.tlog.size``: the size it last cosigned,
newline) when ``old`` is not that size or the same size has another root; 422 when the proof does not
verify; 403 when no signature verifies with the log key it trusts; 404 for a log it does not know; 400
for a malformed request. The server side is the ``witness`` package.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from provenance.errors import CheckpointInvalid, FormatError
from provenance.log.checkpoint import (
    MAX_NOTE_BYTES,
    NoteSignature,
    canonical_b64decode,
    parse_signature_lines,
)
from provenance.log.merkle import HASH_SIZE

SIZE_MEDIA_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
MAX_REQUEST_BYTES = MAX_NOTE_BYTES + 64 * 64
MAX_SIZE = (1 << 64) - 1

_OLD = re.compile(r"old (0|[1-9][0-9]{0,19})")
_SIZE = re.compile(r"(0|[1-9][0-9]{0,19})\n")


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    """A parsed ``add-checkpoint`` request: the size the client believes the witness holds, the proof
    from there to the checkpoint, and the checkpoint note (unverified)."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str


def encode_add_checkpoint(old_size: int, proof: Sequence[bytes], note: str) -> bytes:
    """The request body of ``add-checkpoint``."""
    lines = [f"old {old_size}", *(base64.b64encode(h).decode("ascii") for h in proof)]
    return ("".join(f"{line}\n" for line in lines) + "\n" + note).encode("utf-8")


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse an ``add-checkpoint`` request body strictly; raises FormatError (a 400 answer)."""
    if len(body) > MAX_REQUEST_BYTES:
        raise FormatError(f"request is {len(body)} bytes, more than {MAX_REQUEST_BYTES}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError("request is not UTF-8") from e
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise FormatError("request has no blank line between the old size and proof, and the checkpoint")
    lines = head.split("\n")
    old = _OLD.fullmatch(lines[0])
    if old is None or int(old.group(1)) > MAX_SIZE:
        raise FormatError(f"first line {lines[0][:40]!r} is not 'old <size>' (decimal, no leading zeros)")
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise FormatError(f"request has {len(proof_lines)} proof lines, at most {MAX_PROOF_LINES}")
    proof = []
    for i, line in enumerate(proof_lines, start=1):
        try:
            h = canonical_b64decode(line, f"consistency proof line {i}")
        except CheckpointInvalid as e:
            raise FormatError(e.message) from e
        if len(h) != HASH_SIZE:
            raise FormatError(f"consistency proof line {i} is {len(h)} bytes, expected {HASH_SIZE}")
        proof.append(h)
    return AddCheckpoint(old_size=int(old.group(1)), proof=tuple(proof), note=note)


def encode_size(size: int) -> bytes:
    """A ``text/x.tlog.size`` body: the decimal size and a newline."""
    return f"{size}\n".encode("ascii")


def parse_size(body: bytes) -> int:
    """The size of a ``text/x.tlog.size`` body; raises FormatError."""
    m = _SIZE.fullmatch(body.decode("ascii", "replace"))
    if m is None or int(m.group(1)) > MAX_SIZE:
        raise FormatError(f"witness answered 409 with {body[:40]!r}, not a tree size and a newline")
    return int(m.group(1))


# --- the client side ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cosigned:
    """200: the witness's signature lines (unverified; check them against the witness key)."""

    lines: str
    signatures: tuple[NoteSignature, ...]


@dataclass(frozen=True, slots=True)
class Conflict:
    """409: the witness last cosigned ``size`` (send a proof from there, or it saw another root)."""

    size: int


@dataclass(frozen=True, slots=True)
class Refused:
    """Any other answer: the status and the start of the body, for the operator's log."""

    status: int
    reason: str


Answer = Cosigned | Conflict | Refused


async def add_checkpoint(
    client: httpx.AsyncClient, url: str, old_size: int, proof: Sequence[bytes], note: str
) -> Answer:
    """Submit a checkpoint to the witness at ``url`` (its submission prefix); transport errors propagate."""
    resp = await client.post(
        url.rstrip("/") + "/add-checkpoint",
        content=encode_add_checkpoint(old_size, proof, note),
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    return read_answer(resp.status_code, resp.content)


def read_answer(status: int, body: bytes) -> Answer:
    """Interpret a witness's answer to ``add-checkpoint``."""
    if status == 200:
        try:
            text = body.decode("utf-8")
            return Cosigned(lines=text, signatures=parse_signature_lines(text))
        except (UnicodeDecodeError, CheckpointInvalid) as e:
            return Refused(status=status, reason=f"malformed cosignature lines: {e}")
    if status == 409:
        try:
            return Conflict(size=parse_size(body))
        except FormatError as e:
            return Refused(status=status, reason=e.message)
    return Refused(status=status, reason=body[:300].decode("utf-8", "replace"))
