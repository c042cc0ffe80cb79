"""``provenance trace`` (a subject's history, verified), ``provenance lineage`` (a dataset's upstream and
downstream datasets, JSON or W3C PROV-JSON), ``provenance export`` (bundles as JSON Lines)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from provenance.cli._app import app, err, gateway_trust, out, token
from provenance.errors import FormatError, NotFound
from provenance.records import load_json
from provenance.verification.batch import check_bundle
from provenance.verification.trust import TrustStore
from provenance.verification.verify import StepResult, Verifier, verdict


@app.command()
def trace(
    subject: Annotated[str, typer.Argument(help="rx:…, dataset:…, station:… or branch:…")],
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway URL.")] = "http://127.0.0.1:8000",
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="API token of the reader: the records it may see are traced."),
    ] = None,
    trust: Annotated[
        Path | None, typer.Option("--trust", help="Pinned keys (default: the gateway's /api/v1/orgs).")
    ] = None,
    rpc: Annotated[str | None, typer.Option("--rpc", help="Look anchors up on this chain.")] = None,
    require_anchor: Annotated[
        bool, typer.Option("--require-anchor", help="Fail records not anchored yet (default: pending).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The whole history of a subject, each step verified; exit 1 if any step fails, naming it."""
    from provenance.client import Client

    if trust is None:
        err.print(
            "[yellow]warning[/yellow]: keys from the gateway's /api/v1/orgs, i.e. from the party being "
            "checked; pin them with --trust (`provenance orgs export`)"
        )
    store = TrustStore.load(trust) if trust else gateway_trust(gateway)
    rows: list[dict[str, Any]] = []
    with Client(base_url=gateway, token=token(token_file)) as client:
        checker = None
        if rpc:
            from provenance.chain.anchor import ChainAnchorChecker

            checker = ChainAnchorChecker.from_rpc(
                rpc, contract=store.provenance_log, chain_id=store.chain_id, proofs=client
            )
        verifier = Verifier(trust=store, anchor_checker=checker, require_anchor=require_anchor)
        for item in client.history(subject):
            row: dict[str, Any] = {k: item.get(k) for k in ("id", "kind", "org", "timestamp", "status")}
            entry = store.orgs.get(str(item.get("org")))
            row["role"] = entry.role if entry else "?"
            results: list[StepResult] = []
            doc = client.bundle_document(str(item.get("id")), payload=False)
            failure = check_bundle(verifier, doc, report=results, listed=(item, subject))
            row["ok"] = failure is None
            if failure is not None:
                row |= {"failed_step": failure.step, "code": failure.code, "message": failure.message}
            row["verdict"] = verdict(results)
            row["steps"] = {r.step: r.status for r in results}
            rows.append(row)
    if not rows:
        raise NotFound(f"no records for subject '{subject}'")
    failed = [r for r in rows if not r["ok"]]
    if as_json:
        typer.echo(
            json.dumps({"subject": subject, "records": rows, "failed": len(failed)}, ensure_ascii=False)
        )
    else:
        table = Table(title=f"{subject}: {len(rows)} records")
        for col in (
            "#",
            "when (UTC)",
            "organisation",
            "kind",
            "digest",
            "signature",
            "inclusion",
            "anchor",
            "",
        ):
            table.add_column(col)
        mark = {"passed": "[green]✓[/]", "failed": "[red]✗[/]", "skipped": "[yellow]not checked[/]"}
        for i, r in enumerate(rows, 1):
            steps = r["steps"]
            table.add_row(
                str(i),
                str(r["timestamp"]),
                f"{r['org']} ({r['role']})",
                str(r["kind"]),
                str(r["id"])[:12] + "…",
                *(
                    mark.get(steps.get(s, ""), steps.get(s, "-"))
                    for s in ("signature", "inclusion", "anchor")
                ),
                {"verified": "[green]verified[/]", "consistent": "[yellow]consistent[/]"}.get(
                    r["verdict"], ""
                )
                if r["ok"]
                else f"[red]{r['failed_step']} failed[/]",
            )
        out.print(table)
        for r in failed:
            err.print(f"[red]record {r['id']}[/red]: step '{r['failed_step']}' [{r['code']}]: {r['message']}")
    if failed:
        raise typer.Exit(1)


@app.command()
def lineage(
    subject: Annotated[str, typer.Argument(help="dataset:<id>")],
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway URL.")] = "http://127.0.0.1:8000",
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="API token of the reader: the datasets it may see are listed."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="json (default) or prov-json (W3C PROV-JSON).")
    ] = "json",
) -> None:
    """A dataset's ancestors and descendants as the gateway's lineage read gives them; each activity of
    the PROV-JSON names its record (``sc:record``): ``provenance trace`` or ``verify`` checks it."""
    from provenance.client import Client

    if not subject.startswith("dataset:") or fmt not in ("json", "prov-json"):
        raise FormatError("lineage reads 'dataset:<id>' in --format json or prov-json")
    with Client(base_url=gateway, token=token(token_file)) as client:
        doc = client.lineage(subject.removeprefix("dataset:"), prov=fmt == "prov-json")
    typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))


@app.command()
def export(
    out_path: Annotated[Path, typer.Option("--out", help="JSON Lines file to write (one bundle a line).")],
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway URL.")] = "http://127.0.0.1:8000",
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="API token of the reader: its own records, every record for auditors and regulators.",
        ),
    ] = None,
    org: Annotated[str | None, typer.Option("--org", help="Only records of this organisation.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only records of this kind.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339 UTC, inclusive.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="RFC 3339 UTC, exclusive.")] = None,
    payload: Annotated[bool, typer.Option("--payload/--no-payload", help="Include payloads.")] = False,
) -> None:
    """Export evidence bundles as JSON Lines (verify them later with `provenance verify FILE`)."""
    from rich.progress import Progress

    params: dict[str, Any] = {"payload": str(payload).lower(), "limit": 500}
    params |= {k: v for k, v in {"org": org, "kind": kind, "since": since, "until": until}.items() if v}
    api_token = token(token_file)
    headers = {"Authorization": f"Bearer {api_token}"} if api_token else {}
    written = 0
    tmp = out_path.with_name(out_path.name + ".part")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with (
        httpx.Client(base_url=gateway.rstrip("/"), headers=headers, timeout=60) as http,
        tmp.open("w", encoding="utf-8") as f,
        Progress(console=err, transient=True) as bar,
    ):
        task = bar.add_task("exporting", total=None)
        after = 0
        while True:
            resp = http.get("/api/v1/bundles", params=params | {"after": after})
            if resp.status_code != 200:
                raise FormatError(f"gateway answered {resp.status_code}: {resp.text[:200]}")
            doc = load_json(resp.content, what="bundle page")
            if bar.tasks[task].total is None and doc.get("total") is not None:
                bar.update(task, total=doc["total"])
            for item in doc["items"]:
                f.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
            written += len(doc["items"])
            bar.advance(task, len(doc["items"]))
            if not doc.get("next_cursor"):
                break
            after = doc["next_cursor"]
    tmp.replace(out_path)  # a complete file or none: an interrupted export leaves only the .part file
    out.print(f"wrote {written} bundles to {out_path}")
