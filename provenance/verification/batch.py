"""Verify large exports (JSON Lines of evidence bundles) on every core, streaming, with a summary.

Each line goes first through a fast path that can only say "holds" (with its verdict): orjson reads the
line when that provably gives what ``load_json`` would, the bundle is built and checked by the one
:class:`Verifier`, whose Merkle hasher remembers the nodes earlier proofs computed (the tree over the
export's leaves is hashed about once, not once per proof) and which checks each distinct checkpoint note
once. Any doubt or failure sends the line down the reference path (``verify_line``), which reports it
exactly as for a single bundle: the failed step, its code and message.

Processes, not threads: Botan's SM2 calls release the GIL, but half of a bundle's CPU is Python (parsing,
the schema, canonical JSON), which threads would serialise.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from provenance.crypto.sm3 import sm3_hex
from provenance.errors import FormatError, ListingMismatch, ProvenanceError, VerificationError
from provenance.files import FileUnreadable
from provenance.limits import json_brackets_close
from provenance.log.bundle import BundleReader, EvidenceBundle, bundle_schema
from provenance.log.merkle import MemoTreeHasher
from provenance.records import _no_constants, canonical_bytes, exact_float, load_json
from provenance.verification.trust import TrustStore
from provenance.verification.verify import StepResult, Verdict, Verifier, check_listed, verdict

# What JSON calls whitespace (RFC 8259): a line of only these is blank. bytes.strip() also strips vertical tab
# and form feed, which would have skipped a line that fails alone ("not valid JSON").
JSON_SPACE = b" \t\r\n"

# Workers get whole lines in blocks of about this size (~500 bundles, ~0.2 s of CPU): small enough that the
# last block does not leave the other workers idle for long, large enough that sending it costs nothing.
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Failure:
    line: int
    step: str
    code: str
    message: str
    record: str | None = None


@dataclass(slots=True)
class BatchSummary:
    """Counts by verdict (``provenance.verify.verdict``): verified with pinned keys, only consistent (every
    step held against keys the bundles carry themselves), failed."""

    total: int = 0
    consistent: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def verified(self) -> int:
        return self.total - self.consistent - len(self.failures)


_worker_verifier: Verifier | None = None
_worker_reader: BundleReader | None = None


def _init(trust: dict[str, Any] | None, require_anchor: bool) -> None:
    global _worker_verifier, _worker_reader  # one of each per worker process, built once
    store = TrustStore.from_dict(trust) if trust is not None else None
    _worker_verifier = Verifier(trust=store, require_anchor=require_anchor, tree_hasher=MemoTreeHasher())
    _worker_reader = BundleReader()


def fast_verdict(verifier: Verifier, line: bytes, reader: BundleReader | None = None) -> Verdict | None:
    """The verdict of a line that holds, or ``None``: it failed, or is not read here (then ``verify_line``).

    orjson's reading equals ``load_json``'s when the line is orjson's own compact output of what it read
    (so no key twice, no escape written another way, valid UTF-8 without a byte order mark, and nesting
    orjson writes back: at most 254 levels, within ``load_json``'s limit), and every float of the payload
    passes ``exact_float`` on the text orjson wrote for it (orjson writes the shortest text that reads back
    to its value, so Python reads the same double; a float anywhere else fails the schema, which wants
    integers there): what `provenance export` writes. The payload's floats are gathered by the walk that
    canonicalises it for its digest. ``reader`` builds the bundle when it can (the values an export repeats
    checked once), else ``EvidenceBundle.from_dict`` does.
    """
    try:
        data = orjson.loads(line)
        same = orjson.dumps(data) == line
    except (orjson.JSONDecodeError, TypeError):  # orjson reads nesting it will not write (a TypeError)
        return None
    if not same or type(data) is not dict:
        return None
    digest = None
    if "payload" in data:
        floats: list[float] = []
        try:
            digest = sm3_hex(canonical_bytes(data["payload"], floats=floats))
            for f in floats:
                exact_float(orjson.dumps(f).decode("ascii"))
        except Exception:  # a payload that cannot be canonicalised, a float not exact: the reference says
            return None
    try:
        bundle = reader.read(data) if reader is not None else None
        return verifier.verify_consistent(bundle or EvidenceBundle.from_dict(data), payload_digest=digest)
    except Exception:  # whatever failed, the reference path names it
        return None


def check_bundle(
    verifier: Verifier,
    data: Any,
    *,
    line: int = 1,
    report: list[StepResult] | None = None,
    listed: tuple[Mapping[str, Any], str] | None = None,
    duplicate: bool = False,
    consistent_ok: bool = True,
) -> Failure | None:
    """Verify one parsed bundle; a failure names its step (``schema`` when it is not a valid bundle).

    ``listed``: the (history item, subject) the bundle was fetched for, checked first (step ``listing``;
    ``duplicate``: the listing named that record before). ``consistent_ok``: a bundle that holds only against
    keys it carries itself passes (its report's verdict says "consistent"); else it fails (KEYS_NOT_PINNED).
    """
    record = None
    try:
        try:
            bundle = EvidenceBundle.from_dict(data)
        except ProvenanceError:
            raise
        except Exception as bug:  # a verifier never crashes: input it cannot read fails step "schema"
            raise FormatError(f"the bundle cannot be read: {type(bug).__name__}: {bug}") from bug
        record = bundle.digest
        if listed is not None:
            try:
                check_listed(bundle, *listed, duplicate=duplicate)
            except ListingMismatch as exc:
                if report is not None:
                    report.append(StepResult("listing", "failed", exc.message))
                raise
            if report is not None:
                report.append(StepResult("listing", "passed"))
        if consistent_ok:
            verifier.verify_consistent(bundle, report=report)
        else:
            verifier.verify(bundle, report=report)
    except VerificationError as exc:
        return Failure(line, exc.step, exc.code, exc.message, record)
    except ProvenanceError as exc:
        if report is not None:
            report.append(StepResult("schema", "failed", exc.message))
        return Failure(line, "schema", exc.code, exc.message, record)
    return None


def verify_line(
    verifier: Verifier, line_no: int, line: str | bytes, *, report: list[StepResult] | None = None
) -> Failure | None:
    """Verify one bundle's JSON text (a file, a line of an export); text that is not JSON fails ``schema``."""
    try:
        data = load_json(line, what=f"line {line_no}")
    except ProvenanceError as exc:
        if report is not None:
            report.append(StepResult("schema", "failed", exc.message))
        return Failure(line_no, "schema", exc.code, exc.message)
    return check_bundle(verifier, data, line=line_no, report=report)


def _verify_block(block: tuple[int, bytes]) -> tuple[int, int, list[Failure]]:
    """Verify the non-blank lines of a block of whole lines, the first of them numbered ``block[0]``:
    (lines, of them only consistent, failures)."""
    verifier = _worker_verifier
    assert verifier is not None
    first, data = block
    count = consistent = 0
    fails = []
    for n, line in enumerate(data.split(b"\n"), first):
        if line.strip(JSON_SPACE):
            count += 1
            fast = fast_verdict(verifier, line, _worker_reader)
            if fast is None:
                report: list[StepResult] = []
                if (f := verify_line(verifier, n, line, report=report)) is not None:
                    fails.append(f)
                    continue
                fast = verdict(report)
            if fast == "consistent":
                consistent += 1
    return count, consistent, fails


def _blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    """The file as (number of the first line, bytes of whole lines) blocks, read as they are needed.

    Bytes, not text: the parent only finds line ends, each worker parses its own lines (as
    ``provenance verify`` parses a single bundle file), and nothing is decoded twice or pickled as str.
    """
    try:
        f = path.open("rb")
    except OSError as exc:
        raise FileUnreadable(f"cannot read {path}: {exc.strerror}") from exc
    with f:
        # The pieces of a line not ended yet, joined once it ends: adding each read to them made a line of
        # n bytes without a newline cost n**2 / CHUNK_BYTES bytes copied (the eighth attack: 256 MiB, 24 s).
        line, pending = 1, list[bytes]()
        while data := f.read(CHUNK_BYTES):
            cut = data.rfind(b"\n") + 1
            if not cut:
                pending.append(data)
                continue
            block = b"".join((*pending, data[:cut])) if pending else data[:cut]
            pending = [data[cut:]] if cut < len(data) else []
            yield line, block
            line += block.count(b"\n")
        if pending:
            yield line, b"".join(pending)


def verify_export(
    path: Path,
    *,
    trust: TrustStore | None,
    require_anchor: bool = True,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> BatchSummary:
    """Verify every bundle of a JSON Lines export, on ``workers`` processes (default: every core)."""
    summary = BatchSummary()
    n = workers or os.cpu_count() or 1
    trust_doc = trust.to_dict() if trust is not None else None
    if n == 1:
        _init(trust_doc, require_anchor)
        results: Iterator[tuple[int, int, list[Failure]]] = map(_verify_block, _blocks(path))
        return _collect(results, summary, progress)
    with ProcessPoolExecutor(max_workers=n, initializer=_init, initargs=(trust_doc, require_anchor)) as pool:
        # map() over a generator would read the whole file first; bound what is in flight instead.
        return _collect(_bounded_map(pool, _blocks(path), 4 * n), summary, progress)


def _bounded_map(
    pool: ProcessPoolExecutor, blocks: Iterator[tuple[int, bytes]], window: int
) -> Iterator[tuple[int, int, list[Failure]]]:
    pending = []
    for block in blocks:
        pending.append(pool.submit(_verify_block, block))
        if len(pending) >= window:
            yield pending.pop(0).result()
    for fut in pending:
        yield fut.result()


def _collect(
    results: Iterator[tuple[int, int, list[Failure]]],
    summary: BatchSummary,
    progress: Callable[[int], None] | None,
) -> BatchSummary:
    for count, consistent, fails in results:
        summary.total += count
        summary.consistent += consistent
        summary.failures.extend(fails)
        if progress:
            progress(count)
    summary.failures.sort(key=lambda f: f.line)
    return summary


def is_json_lines(path: Path) -> bool:
    """True when the file holds one bundle per line (an export) rather than one JSON document: it has two
    non-blank lines or more, and the first or the second of them is a JSON value by itself, or a later one
    starts a bundle (``starts_a_bundle``).

    A document printed over several lines has neither: its first line opens it, its second is a member or an
    opening, and no line of it starts an object with its members. Lines are read leniently (as the page's
    ``JSON.parse``: a key twice, any number, deep nesting are still a value), and one bad line is not enough:
    a first line that fails even that (a byte order mark, a NUL, invalid UTF-8, a cut-off bundle) is one
    failed line of the export, not a reason to read the whole file as one bundle, which would leave the other
    lines unverified and uncounted. Nor are two: JSON allows a line break between any two tokens, so a
    document whose first lines open a signed payload can hold whole bundles on lines of their own (the
    eighth attack: read as one document, the file was one bundle "verified", its lines never checked).
    """
    try:
        with path.open("rb") as f:
            lines: list[bytes] = []
            while len(lines) < 2 and (line := f.readline()):
                if line.strip(JSON_SPACE):
                    lines.append(line)
            if len(lines) < 2:
                return False
            if _a_json_value(lines[0]) or _a_json_value(lines[1]):
                return True
            return any(starts_a_bundle(line) for line in f)
    except OSError as exc:
        raise FileUnreadable(f"cannot read {path}: {exc.strerror}") from exc


@functools.cache
def _bundle_members() -> tuple[bytes, ...]:
    """The members every bundle has (the schema's ``required``), quoted as a line names them."""
    return tuple(f'"{m}"'.encode() for m in bundle_schema()["required"])


# A member's name may be written with escapes (``"media\\u005ftype"`` reads as ``"media_type"``, the ninth
# attack); a name is ASCII, so these are the only escapes that can spell one.
_ASCII_ESCAPE = re.compile(rb"\\u00([0-7][0-9A-Fa-f])")


def starts_a_bundle(line: bytes) -> bool:
    """Whether ``line`` opens an object and names every member a bundle has (its escapes of ASCII characters
    read): an export's line, valid or not, never a line of a document printed over lines, where an object's
    members start lines of their own, nor an object a formatter kept on one line (it is no bundle). The page
    applies the same test; so does the certificate reader, to a PDF's lines."""
    if not line.lstrip(JSON_SPACE).startswith(b"{"):
        return False
    if b"\\u" in line:
        line = _ASCII_ESCAPE.sub(lambda m: bytes((int(m[1], 16),)), line)
    return all(name in line for name in _bundle_members())


def _a_json_value(line: bytes) -> bool:
    """Whether ``line`` is a JSON value by itself, as the page's ``JSON.parse`` reads one: UTF-8 text, no
    byte order mark, no NaN or Infinity, integers of any length, nesting of any depth."""
    try:
        json.loads(line.decode("utf-8"), parse_constant=_no_constants, parse_int=len)
    except RecursionError:  # nested past Python's stack (~6,000 levels), which JSON.parse reads when closed
        return json_brackets_close(line)
    except ValueError:  # UnicodeDecodeError too
        return False
    return True


def count_lines(path: Path) -> int:
    """Number of newline-terminated lines (for a progress bar's total)."""
    n = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            n += block.count(b"\n")
    return n
