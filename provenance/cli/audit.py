"""``provenance audit``: the auditors' whole-log checks (the checks themselves: :mod:`provenance.audit`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from provenance.cli._app import (
    DEFAULT_MANIFEST,
    BundleGateway,
    ChainRpc,
    JsonOutput,
    NetworkManifest,
    bundle_pages,
    command_group,
    err,
    json_text,
    out,
    reaching,
    required_token,
    shown,
)
from provenance.client.transport import BoundedTransport
from provenance.verification.trust import TrustStore

audit_app = command_group("audit", "Auditors' whole-log checks.")


@audit_app.command("log")
def audit_log(
    rpc: ChainRpc,
    log_contract: Annotated[str, typer.Option("--log-contract", help="ProvenanceLog address.")],
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway URL serving consistency proofs.")],
    as_json: JsonOutput = False,
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
            err.print(f"[red]{lk.first.tree_size} → {lk.second.tree_size}[/red]: {shown(lk.reason)}")
    if bad:
        raise typer.Exit(1)


@audit_app.command("workflow")
def audit_workflow(
    rpc: ChainRpc,
    gateway: BundleGateway,
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
    manifest: NetworkManifest = DEFAULT_MANIFEST,
    as_json: JsonOutput = False,
) -> None:
    """Check every workflow event on chain against a signed record; exit 1 naming each event without one."""
    from rich.progress import Progress

    from provenance.audit import prepare_workflow_audit, workflow_contracts
    from provenance.chain.connect import connect
    from provenance.client import Client
    from provenance.manifest import Manifest

    api_token = required_token(token_file)
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
        typer.echo(json_text(doc))
    else:
        table = Table(title=f"{len(results)} workflow events, {len(bad)} without a matching signed record")
        for col in ("block", "event", "organisation", "record", "result"):
            table.add_column(col, overflow="fold")
        for r in results:
            ev, env = r.event, r.record
            table.add_row(
                str(ev.block_number),
                ev.event,  # event names are unique across the domain contracts
                shown(ev.org),
                shown(f"{env.kind} {env.subject}" if env else ev.digest[:12] + "…"),
                "[green]ok[/]" if r.ok else f"[red]{shown(r.check)}[/]",
            )
        out.print(table)
        for r in bad:
            ev = r.event
            # One line an event (no wrapping), so that a script can grep the events it cares about.
            line = f"[red]{ev.name}[/red] block {ev.block_number} tx {shown(ev.tx_hash)}: {shown(r.reason)}"
            err.print(line, soft_wrap=True, highlight=False)
    if bad:
        raise typer.Exit(1)


@audit_app.command("batches")
def audit_batches(
    rpc: ChainRpc,
    gateway: BundleGateway,
    token_file: Annotated[
        Path, typer.Option("--token-file", help="API token of an auditor or regulator (reads every batch).")
    ],
    trust: Annotated[
        Path, typer.Option("--trust", help="Pinned keys (`provenance orgs export`) the batches verify with.")
    ],
    manifest: NetworkManifest = DEFAULT_MANIFEST,
    as_json: JsonOutput = False,
) -> None:
    """Check every anchored batch root (EnvMonitoring.BatchAnchored) against a verified logged batch of the
    same station, period and count; exit 1 naming each anchor without one."""
    import httpx

    from provenance.audit_roots import check_roots, read_root_events
    from provenance.chain.connect import connect
    from provenance.manifest import Manifest
    from provenance.verification.verify import Verifier

    api_token = required_token(token_file)
    addresses = {str(k): str(v) for k, v in Manifest.load(manifest).contracts.items()}
    verifier = Verifier(trust=TrustStore.load(trust), require_anchor=False)
    with reaching(gateway=gateway, rpc=rpc):
        events = read_root_events(connect(rpc), addresses)
        headers = {"Authorization": f"Bearer {api_token}"}
        bounded = BoundedTransport()
        with httpx.Client(
            base_url=gateway.rstrip("/"), headers=headers, timeout=60, transport=bounded
        ) as http:

            def bundles() -> Iterator[object]:  # page by page: only the verified batch heads are kept
                for kind in sorted({e.spec.kind for e in events}):
                    for items, _ in bundle_pages(http, {"kind": kind, "payload": "true"}):
                        yield from items

            audit = check_roots(events, bundles(), verifier)
    bad = [r for r in audit.results if not r.ok]
    if as_json:
        doc = {
            "anchors": len(audit.results),
            "ok": len(audit.results) - len(bad),
            "failed": len(bad),
            "results": [r.to_dict() for r in audit.results],
            "unanchored": audit.unanchored,
            "bad_bundles": audit.bad_bundles,
        }
        typer.echo(json_text(doc))
    else:
        out.print(f"{len(audit.results)} anchored batch roots, {len(bad)} without a matching logged batch")
        if audit.unanchored:
            out.print(f"{len(audit.unanchored)} logged batches not anchored (yet)")
        for r in bad:
            ev = r.event
            err.print(
                f"[red]{ev.name}[/red] block {ev.block_number} tx {shown(ev.tx_hash)}: {shown(r.reason)}",
                soft_wrap=True,
            )
        for line in audit.bad_bundles:
            err.print(f"[red]batch bundle[/red] {shown(line)}", soft_wrap=True)
    if bad or audit.bad_bundles:
        raise typer.Exit(1)
