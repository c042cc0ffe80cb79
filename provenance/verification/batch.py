"""Verify large exports (JSON Lines of evidence bundles) on every core, streaming, with a summary."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenance.errors import FormatError, ListingMismatch, ProvenanceError, VerificationError
from provenance.files import FileUnreadable
from provenance.log.bundle import EvidenceBundle
from provenance.records import load_json
from provenance.verification.trust import TrustStore
from provenance.verification.verify import StepResult, Verifier, check_listed

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
    total: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def verified(self) -> int:
        return self.total - len(self.failures)


_worker_verifier: Verifier | None = None


def _init(trust: dict[str, Any] | None, require_anchor: bool) -> None:
    global _worker_verifier  # one verifier per worker process, built once
    store = TrustStore.from_dict(trust) if trust is not None else None
    _worker_verifier = Verifier(trust=store, require_anchor=require_anchor)


def check_bundle(
    verifier: Verifier,
    data: Any,
    *,
    line: int = 1,
    report: list[StepResult] | None = None,
    listed: tuple[Mapping[str, Any], str] | None = None,
) -> Failure | None:
    """Verify one parsed bundle; a failure names its step (``schema`` when it is not a valid bundle).

    ``listed``: the (history item, subject) the bundle was fetched for, checked first (step ``listing``).
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
                check_listed(bundle, *listed)
            except ListingMismatch as exc:
                if report is not None:
                    report.append(StepResult("listing", "failed", exc.message))
                raise
            if report is not None:
                report.append(StepResult("listing", "passed"))
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


def _verify_block(block: tuple[int, bytes]) -> tuple[int, list[Failure]]:
    """Verify the non-blank lines of a block of whole lines, the first of them numbered ``block[0]``."""
    verifier = _worker_verifier
    assert verifier is not None
    first, data = block
    count = 0
    fails = []
    for n, line in enumerate(data.split(b"\n"), first):
        if line.strip():
            count += 1
            if (f := verify_line(verifier, n, line)) is not None:
                fails.append(f)
    return count, fails


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
        line, rest = 1, b""
        while data := f.read(CHUNK_BYTES):
            data = rest + data if rest else data
            cut = data.rfind(b"\n") + 1
            block, rest = data[:cut], data[cut:]
            if block:
                yield line, block
                line += block.count(b"\n")
        if rest:
            yield line, rest


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
        results: Iterator[tuple[int, list[Failure]]] = map(_verify_block, _blocks(path))
        return _collect(results, summary, progress)
    with ProcessPoolExecutor(max_workers=n, initializer=_init, initargs=(trust_doc, require_anchor)) as pool:
        # map() over a generator would read the whole file first; bound what is in flight instead.
        return _collect(_bounded_map(pool, _blocks(path), 4 * n), summary, progress)


def _bounded_map(
    pool: ProcessPoolExecutor, blocks: Iterator[tuple[int, bytes]], window: int
) -> Iterator[tuple[int, list[Failure]]]:
    pending = []
    for block in blocks:
        pending.append(pool.submit(_verify_block, block))
        if len(pending) >= window:
            yield pending.pop(0).result()
    for fut in pending:
        yield fut.result()


def _collect(
    results: Iterator[tuple[int, list[Failure]]],
    summary: BatchSummary,
    progress: Callable[[int], None] | None,
) -> BatchSummary:
    for count, fails in results:
        summary.total += count
        summary.failures.extend(fails)
        if progress:
            progress(count)
    summary.failures.sort(key=lambda f: f.line)
    return summary


def is_json_lines(path: Path) -> bool:
    """True when the file holds one bundle per line (an export) rather than one JSON document."""
    try:
        with path.open("rb") as f:
            first = f.readline()
            while first and not first.strip():
                first = f.readline()
            try:
                load_json(first)
            except ProvenanceError:
                return False  # a pretty-printed single document spans lines
            return any(line.strip() for line in f)
    except OSError as exc:
        raise FileUnreadable(f"cannot read {path}: {exc.strerror}") from exc


def count_lines(path: Path) -> int:
    """Number of newline-terminated lines (for a progress bar's total)."""
    n = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            n += block.count(b"\n")
    return n
