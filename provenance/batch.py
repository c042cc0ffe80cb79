"""Verify large exports (JSON Lines of evidence bundles) on every core, streaming, with a summary."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from provenance._internal.files import FileUnreadable
from provenance.bundle import EvidenceBundle
from provenance.errors import ProvenanceError, VerificationError
from provenance.records import load_json
from provenance.trust import TrustStore
from provenance.verify import StepResult, Verifier

CHUNK_LINES = 2000


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
    verifier: Verifier, data: Any, *, line: int = 1, report: list[StepResult] | None = None
) -> Failure | None:
    """Verify one parsed bundle; a failure names its step (``schema`` when it is not a valid bundle)."""
    record = None
    try:
        bundle = EvidenceBundle.from_dict(data)
        record = bundle.digest
        verifier.verify(bundle, report=report)
    except VerificationError as exc:
        return Failure(line, exc.step, exc.code, exc.message, record)
    except ProvenanceError as exc:
        if report is not None:
            report.append(StepResult("schema", "failed", exc.message))
        return Failure(line, "schema", exc.code, exc.message, record)
    return None


def verify_line(verifier: Verifier, line_no: int, line: str) -> Failure | None:
    """Verify one JSON line of an export (unparsable JSON fails the ``schema`` step)."""
    try:
        data = load_json(line, what=f"line {line_no}")
    except ProvenanceError as exc:
        return Failure(line_no, "schema", exc.code, exc.message)
    return check_bundle(verifier, data, line=line_no)


def _verify_chunk(chunk: list[tuple[int, str]]) -> tuple[int, list[Failure]]:
    assert _worker_verifier is not None
    fails = [f for n, line in chunk if (f := verify_line(_worker_verifier, n, line)) is not None]
    return len(chunk), fails


def _chunks(path: Path) -> Iterator[list[tuple[int, str]]]:
    try:
        f = path.open("r", encoding="utf-8")
    except OSError as exc:
        raise FileUnreadable(f"cannot read {path}: {exc.strerror}") from exc
    with f:
        numbered = ((n, line) for n, line in enumerate(f, 1) if line.strip())
        while chunk := list(islice(numbered, CHUNK_LINES)):
            yield chunk


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
        results: Iterator[tuple[int, list[Failure]]] = map(_verify_chunk, _chunks(path))
        return _collect(results, summary, progress)
    with ProcessPoolExecutor(max_workers=n, initializer=_init, initargs=(trust_doc, require_anchor)) as pool:
        # map() over a generator would read the whole file first; bound what is in flight instead.
        return _collect(_bounded_map(pool, _chunks(path), 4 * n), summary, progress)


def _bounded_map(
    pool: ProcessPoolExecutor, chunks: Iterator[list[tuple[int, str]]], window: int
) -> Iterator[tuple[int, list[Failure]]]:
    pending = []
    for chunk in chunks:
        pending.append(pool.submit(_verify_chunk, chunk))
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
