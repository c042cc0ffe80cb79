"""``provenance verify``: one evidence bundle, or a whole export (JSON Lines), with a verdict per step."""

from __future__ import annotations

import contextlib
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from provenance.cli._app import JsonOutput, app, err, json_text, out, shown, token
from provenance.errors import FormatError, VerificationError
from provenance.files import FileUnreadable, read_bytes
from provenance.records import load_json
from provenance.verification.batch import count_lines, is_json_lines, verify_export, verify_line
from provenance.verification.trust import TrustStore
from provenance.verification.verify import STEP_TITLES, StepResult, Verifier, verdict

# How each status reads: "skipped" is a check that did not run (payload withheld, anchor offline).
_STATUS_WORDS = {"passed": "passed", "failed": "failed", "skipped": "not checked", "warning": "unpinned"}
_VERDICT_LINES = {
    "verified": "[green]verified[/green] with the pinned keys: record {record}",
    "consistent": (
        "[yellow]internally consistent, NOT verified[/yellow]: record {record} agrees with keys it carries "
        "itself, which shows integrity, not who signed it or which log holds it (pin keys with --trust)"
    ),
}


def print_steps(results: list[StepResult]) -> None:
    table = Table(show_header=True, header_style="bold")
    table.add_column("step")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    colours = {"passed": "green", "failed": "red", "skipped": "yellow", "warning": "yellow"}
    for r in results:
        table.add_row(
            STEP_TITLES.get(r.step, r.step),
            f"[{colours.get(r.status, 'white')}]{_STATUS_WORDS.get(r.status, r.status)}[/]",
            shown(r.detail),
        )
    out.print(table)


def _proofs(gateway: str | None, token_file: Path | None) -> Any:
    """The consistency proofs of the live anchor check, from the gateway when one is named."""
    if gateway is None:
        return None
    from provenance.client import GatewayProofs

    return GatewayProofs(gateway, token=token(token_file))


def bundle_verifier(
    store: TrustStore | None,
    *,
    rpc: str | None,
    gateway: str | None,
    token_file: Path | None,
    require_anchor: bool,
) -> Verifier:
    """The verifier of `verify` and `receipt verify`: pinned keys, and with --rpc the live anchor check."""
    checker = None
    if rpc:
        from provenance.chain.anchor import ChainAnchorChecker

        checker = ChainAnchorChecker.for_trust(
            rpc, store, proofs=_proofs(gateway, token_file), give_up_after_bound=True
        )
    return Verifier(trust=store, anchor_checker=checker, require_anchor=require_anchor)


def bundle_entry(verifier: Verifier, raw: bytes) -> dict[str, Any]:
    """One bundle's bytes verified as `provenance verify FILE` reports it (``--json``'s document)."""
    results: list[StepResult] = []
    failure = verify_line(verifier, 1, raw, report=results)  # text that is not JSON fails step "schema"
    entry: dict[str, Any] = {"ok": failure is None, "verdict": verdict(results)}
    if failure is None:
        entry["record"] = load_json(raw)["digest"]  # the digest step held: it is the record id
    else:
        entry |= {"failed_step": failure.step, "code": failure.code, "message": failure.message}
        if failure.record is not None:
            entry["record"] = failure.record
    entry["steps"] = [{"step": r.step, "status": r.status, "detail": r.detail} for r in results]
    return entry


RPC_OPTION = typer.Option("--rpc", help="Look anchors up on this chain's JSON-RPC (online mode).")

GATEWAY_OPTION = typer.Option(
    "--gateway", help="With --rpc: where to fetch consistency proofs between anchors."
)

TOKEN_OPTION = typer.Option("--token-file", help="API token for --gateway.")

UNANCHORED_OPTION = typer.Option("--allow-unanchored", help="Accept bundles not yet anchored on chain.")


class Form(StrEnum):
    """What a file to verify holds."""

    bundle = "bundle"
    export = "export"
    certificate = "certificate"


FORM_OPTION = typer.Option(
    "--as",
    help="Read FILE as one bundle (JSON), an export (JSON Lines, a bundle a line) or a certificate (PDF), "
    "instead of telling it from the file.",
)


@app.command()
def verify(
    file: Annotated[
        Path,
        typer.Argument(
            help="An evidence bundle (JSON), an export (JSON Lines) or a certificate (PDF, "
            "`provenance certificate`)."
        ),
    ],
    trust: Annotated[
        Path | None, typer.Option("--trust", help="Trust file (`provenance orgs export`) pinning keys.")
    ] = None,
    allow_unanchored: Annotated[bool, UNANCHORED_OPTION] = False,
    rpc: Annotated[str | None, RPC_OPTION] = None,
    gateway: Annotated[str | None, GATEWAY_OPTION] = None,
    token_file: Annotated[Path | None, TOKEN_OPTION] = None,
    form: Annotated[Form | None, FORM_OPTION] = None,
    as_json: JsonOutput = False,
) -> None:
    """Verify evidence: exit 0 when every step holds, 1 naming the failed step.

    Without --trust the keys come from the bundle itself: the verdict is then "consistent", never
    "verified". Offline the anchor is not looked up ("not checked"); --rpc looks it up, and with
    --gateway checks that the anchored checkpoint is on one history with the anchors around it. An export
    (JSON Lines) is summed up by verdict: verified, only consistent, failed (exit 1 when any failed). A
    certificate (PDF) has each page's embedded bundle verified, then step "certificate": the page's text is
    what the renderer prints from that bundle and the embedded rendering inputs, its steps printed passed
    are ones the bundle supports, and with --trust the organisation name is the trust file's. The form is
    told from the file (a PDF; JSON Lines; else one bundle); --as names it instead, which a script that knows
    what it holds should do (a file can be written to read as either).
    """
    store = TrustStore.load(trust) if trust else None
    with _regular(file) as file:
        if form is None:
            form = Form.certificate if _is_pdf(file) else Form.export if is_json_lines(file) else Form.bundle
        if form is Form.certificate:  # `provenance certificate`'s PDF: its embedded bundles
            raw = read_bytes(file, what="certificate file")
            _verify_certificate(raw, store, rpc, gateway, token_file, not allow_unanchored, as_json)
            return
        if form is Form.export:
            _verify_export(file, store, not allow_unanchored, as_json, rpc is not None)
            return
        verifier = bundle_verifier(
            store, rpc=rpc, gateway=gateway, token_file=token_file, require_anchor=not allow_unanchored
        )
        entry = bundle_entry(verifier, read_bytes(file, what="bundle file"))
        if as_json:
            typer.echo(json_text(entry))
        else:
            _print_entry(entry)
        if not entry["ok"]:
            raise typer.Exit(1)


@contextlib.contextmanager
def _regular(file: Path) -> Iterator[Path]:
    """``file`` when it is a regular file, else (a pipe, ``/dev/stdin``, a process substitution) its bytes
    read once into a temporary file. Each step opens the file again (its form, its lines' count, the
    verification), and a pipe gives its bytes to the first reader only (the tenth attack: the checks before
    the verification read every bundle, which then verified none and exited 0)."""
    try:
        regular = stat.S_ISREG(file.stat().st_mode)
    except OSError:
        regular = True  # the readers name the problem
    if regular:
        yield file
        return
    with tempfile.TemporaryDirectory(prefix="provenance-verify-") as tmp:
        copy = Path(tmp) / "input"
        try:
            with file.open("rb") as src, copy.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except OSError as exc:
            raise FileUnreadable(f"cannot read {file}: {exc.strerror}") from exc
        yield copy


def _is_pdf(file: Path) -> bool:
    try:
        with file.open("rb") as f:
            return f.read(5) == b"%PDF-"
    except OSError:
        return False  # read_bytes names the problem


def _print_entry(entry: dict[str, Any]) -> None:
    print_steps([StepResult(s["step"], s["status"], s["detail"]) for s in entry["steps"]])
    if entry["ok"]:
        out.print(_VERDICT_LINES[entry["verdict"]].format(record=shown(entry.get("record"))))
    else:
        step, code = entry["failed_step"], entry["code"]
        err.print(f"[red]NOT verified[/red]: step '{step}' failed [{code}]: {shown(entry['message'])}")


def _verify_certificate(
    raw: bytes,
    store: TrustStore | None,
    rpc: str | None,
    gateway: str | None,
    token_file: Path | None,
    require_anchor: bool,
    as_json: bool,
) -> None:
    """A 存证证明 PDF: each page's embedded bundle verified as a bundle file, then step ``certificate``:
    the page prints that bundle's values in Courier (``check_printed``), its claims at issue hold against
    the bundle (``check_claims``), its whole text is what the renderer prints from the embedded evidence
    (``check_text``) and so is everything it draws (``drawing_faults``)."""
    from provenance.certificate_check import (
        check_claims,
        check_printed,
        check_text,
        drawing_faults,
        parse_rendering,
        read_certificate,
        rendered_again,
    )
    from provenance.log.bundle import EvidenceBundle

    verifier = bundle_verifier(
        store, rpc=rpc, gateway=gateway, token_file=token_file, require_anchor=require_anchor
    )
    pages = read_certificate(raw)
    rendering = parse_rendering(pages[0].rendering, len(pages))
    entries = []
    expected: list[tuple[str, list[tuple[str, str]]]] = []
    drawing: Sequence[VerificationError | None] = []
    for page in pages:
        entry = bundle_entry(verifier, page.bundle) | {"page": page.page, "attachment": page.attachment}
        if entry["ok"]:
            try:
                bundle = EvidenceBundle.from_json(page.bundle)
                check_printed(bundle, page)
                issued = rendering.pages[page.page - 1]
                org = bundle.signed.envelope.org
                check_claims(page, org, issued, entry["steps"], bundle.anchor is not None, store)
                # Rendered once for all pages (the footer counts them), when every bundle verified.
                if not expected:
                    pdf, expected = rendered_again(pages, rendering)
                    drawing = drawing_faults(raw, pdf, len(pages))
                check_text(page, *expected[page.page - 1])
                if (fault := drawing[page.page - 1]) is not None:
                    raise fault
                entry["steps"].append({"step": "certificate", "status": "passed", "detail": ""})
            except VerificationError as exc:
                entry["steps"].append({"step": "certificate", "status": "failed", "detail": exc.message})
                entry |= {"ok": False, "verdict": "failed", "failed_step": exc.step}
                entry |= {"code": exc.code, "message": exc.message}
                if "field" in exc.details:  # CERTIFICATE_MISMATCH names what the page misstates
                    entry["field"] = exc.details["field"]
        entries.append(entry)
    ok = all(e["ok"] for e in entries)
    if as_json:
        typer.echo(json_text({"ok": ok, "pages": entries}))
    else:
        for e in entries:
            out.print(f"page {e['page']} ({shown(e['attachment'])}):")
            _print_entry(e)
    if not ok:
        raise typer.Exit(1)


def _verify_export(
    file: Path, store: TrustStore | None, require_anchor: bool, as_json: bool, online: bool
) -> None:
    if online:
        # Live anchor lookups would put one RPC round trip per bundle on every worker: refuse, clearly.
        raise FormatError("--rpc checks single bundles; for exports use `provenance audit log` for anchors")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    total = count_lines(file)
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, disable=as_json) as bar:
        task = bar.add_task("verifying", total=total)
        summary = verify_export(
            file, trust=store, require_anchor=require_anchor, progress=lambda n: bar.advance(task, n)
        )
    if not summary.total:  # nothing verified is no verdict: an empty file, or one of blank lines
        raise FormatError("the export holds no bundle: nothing was verified")
    if as_json:
        doc = {
            "total": summary.total,
            "verified": summary.verified,
            "consistent": summary.consistent,
            "failed": len(summary.failures),
            "failures": [
                {
                    "line": f.line,
                    "record": f.record,
                    "failed_step": f.step,
                    "code": f.code,
                    "message": f.message,
                }
                for f in summary.failures
            ],
        }
        typer.echo(json_text(doc))
    else:
        # The page's words: "verified" only with pinned keys; the rest held against the bundles' own keys.
        out.print(
            f"{summary.verified} of {summary.total} bundles verified with the pinned keys, "
            f"{summary.consistent} only consistent (keys from the bundles themselves, not attributed), "
            f"{len(summary.failures)} failed"
        )
        if summary.consistent:
            err.print(
                "[yellow]warning[/yellow]: a consistent bundle agrees with keys it carries itself, which "
                "anyone can make: pin the keys with --trust (`provenance orgs export`)"
            )
        for f in summary.failures[:50]:
            err.print(f"  line {f.line}: step '{f.step}' [{f.code}]: {shown(f.message)}")
        if len(summary.failures) > 50:
            err.print(f"  … and {len(summary.failures) - 50} more (use --json for all)")
    if summary.failures:
        raise typer.Exit(1)
