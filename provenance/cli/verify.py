"""``provenance verify``: one evidence bundle, or a whole export (JSON Lines), with a verdict per step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from provenance.cli._app import app, err, out, token
from provenance.errors import FormatError
from provenance.files import read_bytes
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


def _print_steps(results: list[StepResult]) -> None:
    table = Table(show_header=True, header_style="bold")
    table.add_column("step")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    colours = {"passed": "green", "failed": "red", "skipped": "yellow", "warning": "yellow"}
    for r in results:
        table.add_row(
            STEP_TITLES.get(r.step, r.step),
            f"[{colours.get(r.status, 'white')}]{_STATUS_WORDS.get(r.status, r.status)}[/]",
            r.detail,
        )
    out.print(table)


def _proofs(gateway: str | None, token_file: Path | None) -> Any:
    """The consistency proofs of the live anchor check, from the gateway when one is named."""
    if gateway is None:
        return None
    from provenance.client import GatewayProofs

    return GatewayProofs(gateway, token=token(token_file))


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="An evidence bundle (JSON) or an export (JSON Lines).")],
    trust: Annotated[
        Path | None, typer.Option("--trust", help="Trust file (`provenance orgs export`) pinning keys.")
    ] = None,
    allow_unanchored: Annotated[
        bool, typer.Option("--allow-unanchored", help="Accept bundles not yet anchored on chain.")
    ] = False,
    rpc: Annotated[
        str | None, typer.Option("--rpc", help="Look anchors up on this chain's JSON-RPC (online mode).")
    ] = None,
    gateway: Annotated[
        str | None,
        typer.Option("--gateway", help="With --rpc: where to fetch consistency proofs between anchors."),
    ] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="API token for --gateway.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Verify evidence: exit 0 when every step holds, 1 naming the failed step.

    Without --trust the keys come from the bundle itself: the verdict is then "consistent", never
    "verified". Offline the anchor is not looked up ("not checked"); --rpc looks it up, and with
    --gateway checks that the anchored checkpoint is on one history with the anchors around it.
    """
    store = TrustStore.load(trust) if trust else None
    checker = None
    if rpc:
        from provenance.chain.anchor import ChainAnchorChecker

        checker = ChainAnchorChecker.from_rpc(
            rpc,
            contract=store.provenance_log if store else None,
            chain_id=store.chain_id if store else None,
            proofs=_proofs(gateway, token_file),
        )
    verifier = Verifier(trust=store, anchor_checker=checker, require_anchor=not allow_unanchored)
    if is_json_lines(file):
        _verify_export(file, store, not allow_unanchored, as_json, rpc is not None)
        return
    raw = read_bytes(file, what="bundle file")
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
    if as_json:
        typer.echo(json.dumps(entry, ensure_ascii=False, indent=2))
    else:
        _print_steps(results)
        if entry["ok"]:
            out.print(_VERDICT_LINES[entry["verdict"]].format(record=entry.get("record")))
        else:
            step, code = entry["failed_step"], entry["code"]
            err.print(f"[red]NOT verified[/red]: step '{step}' failed [{code}]: {entry['message']}")
    if not entry["ok"]:
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
    if as_json:
        doc = {
            "total": summary.total,
            "verified": summary.verified,
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
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        out.print(f"{summary.verified} of {summary.total} bundles verified, {len(summary.failures)} failed")
        for f in summary.failures[:50]:
            err.print(f"  line {f.line}: step '{f.step}' [{f.code}]: {f.message}")
        if len(summary.failures) > 50:
            err.print(f"  … and {len(summary.failures) - 50} more (use --json for all)")
    if summary.failures:
        raise typer.Exit(1)
