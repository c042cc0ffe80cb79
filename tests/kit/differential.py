"""The two sides of the differential tests: what `provenance verify` says about a bundle's bytes and what the
/verify page says about the same bytes, each as (verdict, failed step, the steps that ran with their status).

The page is driven through its export view (one bundle per line, one row each), so that hundreds of bundles
take one page load; each row carries ``data-verdict``, ``data-failed-step`` and ``data-steps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provenance.verification.batch import verify_line
from provenance.verification.trust import TrustStore
from provenance.verification.verify import StepResult, Verifier, verdict
from tests.kit.webui import BUNDLES, PageProbe


@dataclass(frozen=True)
class Outcome:
    verdict: str  # verified | consistent | failed
    failed_step: str  # "" when none
    steps: str  # "digest:passed,payload:skipped,…": the steps that ran

    def __str__(self) -> str:
        return f"{self.verdict} {self.failed_step or '-'} [{self.steps}]"


def python_outcome(line: bytes, trust: TrustStore | None) -> Outcome:
    """`provenance verify [--trust]` on one bundle's bytes (the CLI's own path, batch.verify_line)."""
    report: list[StepResult] = []
    failure = verify_line(Verifier(trust=trust), 1, line, report=report)
    return Outcome(
        verdict(report),
        failure.step if failure else "",
        ",".join(f"{r.step}:{r.status}" for r in report),
    )


def one_line(raw: bytes) -> bytes:
    """A pretty-printed JSON text on one line, byte for byte otherwise (strings never span lines)."""
    return b"".join(part.strip(b" \r") for part in raw.split(b"\n"))


def golden_line(name: str) -> bytes:
    return one_line((BUNDLES / name).read_bytes())


def page_outcomes(
    probe: PageProbe, lines: list[bytes], tmp: Path, *, trust_file: Path | None
) -> list[Outcome]:
    """The page's outcome for each line, all in one export file, with ``trust_file`` loaded first."""
    assert all(b"\n" not in line and line.strip() for line in lines)
    # An export is two lines or more whose first is JSON (provenance/verification/batch.py is_json_lines): a
    # valid bundle goes first, its row dropped below, so that any line may follow.
    padded = [golden_line("valid.json"), *lines]
    export = tmp / "bundles.jsonl"
    export.write_bytes(b"".join(line + b"\n" for line in padded))
    probe.open()
    page = probe.page
    if trust_file is not None:
        page.set_input_files("#trust", str(trust_file))
        page.locator("#trust-clear:not([hidden])").wait_for()
    page.set_input_files("#file", str(export))
    rows = page.locator(".export-result tbody tr")
    rows.first.wait_for()
    got = page.eval_on_selector_all(
        ".export-result tbody tr",
        "rows => rows.map(r => [r.dataset.verdict, r.dataset.failedStep, r.dataset.steps])",
    )
    assert len(got) == len(padded), "one row per line"
    return [Outcome(v or "", f or "", s or "") for v, f, s in got[1:]]


def disagreements(expected: list[Outcome], got: list[Outcome], labels: list[str]) -> list[str]:
    return [
        f"{label}: python {e} | page {g}" for label, e, g in zip(labels, expected, got, strict=True) if e != g
    ]
