"""``provenance audit``: the auditors' whole-log checks (the checks themselves: :mod:`provenance.audit`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from provenance.cli._app import app, err, out, reaching, token
from provenance.errors import FormatError
from provenance.verification.trust import TrustStore

audit_app = typer.Typer(help="Auditors' whole-log checks.")
app.add_typer(audit_app, name="audit")


@audit_app.command("log")
def audit_log(
    rpc: Annotated[str, typer.Option("--rpc", help="Chain JSON-RPC URL.")],
    log_contract: Annotated[str, typer.Option("--log-contract", help="ProvenanceLog address.")],
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway URL serving consistency proofs.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check that every anchored checkpoint extends the previous one; exit 1 on any fork or gap."""
    from rich.progress import Progress

    from provenance.audit import check_links
    from provenance.chain.connect import connect
    from provenance.chain.events import read_anchors
    from provenance.client import GatewayProofs

    with reaching(gateway=gateway, rpc=rpc):
        anchors = read_anchors(connect(rpc), log_contract)
        proofs = GatewayProofs(gateway)
        with Progress(console=err, transient=True, disable=as_json) as bar:
            task = bar.add_task("consistency", total=max(len(anchors) - 1, 0))
            links = check_links(anchors, proofs.consistency_proof, progress=lambda: bar.advance(task))
        proofs.close()
    bad = [lk for lk in links if not lk.ok]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "anchors": len(anchors),
                    "links_checked": len(links),
                    "failures": [
                        {"from": lk.first.tree_size, "to": lk.second.tree_size, "reason": lk.reason}
                        for lk in bad
                    ],
                },
                indent=2,
            )
        )
    else:
        out.print(
            f"{len(anchors)} anchored checkpoints, {len(links) - len(bad)} of {len(links)} links consistent"
        )
        for lk in bad:
            err.print(f"[red]{lk.first.tree_size} → {lk.second.tree_size}[/red]: {lk.reason}")
    if bad:
        raise typer.Exit(1)


@audit_app.command("workflow")
def audit_workflow(
    rpc: Annotated[str, typer.Option("--rpc", help="Chain JSON-RPC URL.")],
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway URL serving evidence bundles.")],
    token_file: Annotated[
        Path,
        typer.Option(
            "--token-file",
            help="API token of an auditor or regulator (other readers do not see others' records).",
        ),
    ],
    trust: Annotated[
        Path | None,
        typer.Option(
            "--trust", help="Pinned keys (`provenance orgs export`; default: read from OrgRegistry)."
        ),
    ] = None,
    manifest: Annotated[
        Path, typer.Option("--manifest", help="Network manifest naming the contracts.")
    ] = Path(".devnet/manifest.json"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check every workflow event on chain against a signed record; exit 1 naming each event without one."""
    from rich.progress import Progress

    from provenance.audit import prepare_workflow_audit, workflow_contracts
    from provenance.chain.connect import connect
    from provenance.client import Client
    from provenance.manifest import Manifest

    api_token = token(token_file)
    if not api_token:
        raise FormatError(f"token file is empty: {token_file}")
    contracts = workflow_contracts(Manifest.load(manifest))
    pinned = TrustStore.load(trust) if trust else None
    with (
        reaching(gateway=gateway, rpc=rpc),
        Client(base_url=gateway, token=api_token) as client,
        Progress(console=err, transient=True, disable=as_json) as bar,
    ):
        audit = prepare_workflow_audit(connect(rpc), contracts, client, trust=pinned)
        task = bar.add_task("workflow events", total=len(audit.events))
        results = audit.run(
            lambda digest: client.bundle_document(digest, payload=False), progress=lambda: bar.advance(task)
        )
    bad = [r for r in results if not r.ok]
    if as_json:
        doc = {
            "events": len(results),
            "ok": len(results) - len(bad),
            "failed": len(bad),
            "keys": audit.keys,
            "results": [r.to_dict() for r in results],
        }
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"{len(results)} workflow events, {len(bad)} without a matching signed record")
        for col in ("block", "event", "organisation", "record", "result"):
            table.add_column(col, overflow="fold")
        for r in results:
            ev, env = r.event, r.record
            table.add_row(
                str(ev.block_number),
                ev.event,  # event names are unique across the domain contracts
                ev.org,
                f"{env.kind} {env.subject}" if env else ev.digest[:12] + "…",
                "[green]ok[/]" if r.ok else f"[red]{r.check}[/]",
            )
        out.print(table)
        for r in bad:
            ev = r.event
            # One line an event (no wrapping), so that a script can grep the events it cares about.
            line = f"[red]{ev.name}[/red] block {ev.block_number} tx {ev.tx_hash}: {r.reason}"
            err.print(line, soft_wrap=True, highlight=False)
    if bad:
        raise typer.Exit(1)
