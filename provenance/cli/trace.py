"""``provenance trace`` (a subject's history, verified), ``provenance lineage`` (a dataset's upstream and
downstream datasets, JSON or W3C PROV-JSON), ``provenance export`` (bundles as JSON Lines)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from provenance.cli._app import (
    DEFAULT_GATEWAY,
    Gateway,
    GatewayTrust,
    JsonOutput,
    ReaderToken,
    app,
    bundle_pages,
    err,
    gateway_trust,
    json_line,
    json_text,
    out,
    shown,
    token,
)
from provenance.client.transport import BoundedTransport
from provenance.errors import FormatError, ListingInvalid, NotFound, ProvenanceError
from provenance.listing import MAX_HISTORY_PAGES, HistoryPages
from provenance.verification.batch import check_bundle
from provenance.verification.trust import TrustStore
from provenance.verification.verify import StepResult, Verifier, verdict


@app.command()
def trace(
    subject: Annotated[
        str, typer.Argument(help="rx:…, dataset:…, station:…, branch:…, or code:<a box's 药品追溯码>")
    ],
    gateway: Gateway = DEFAULT_GATEWAY,
    token_file: ReaderToken = None,
    trust: GatewayTrust = None,
    rpc: Annotated[str | None, typer.Option("--rpc", help="Look anchors up on this chain.")] = None,
    require_anchor: Annotated[
        bool, typer.Option("--require-anchor", help="Fail records not anchored yet (default: pending).")
    ] = False,
    max_pages: Annotated[
        int,
        typer.Option("--max-pages", min=1, help="Read at most this many pages of the listing (then warn)."),
    ] = MAX_HISTORY_PAGES,
    network_key: Annotated[
        Path | None,
        typer.Option(
            "--network-key",
            help="code: only. The network key file (auditors, regulators): the box's key on chain the "
            "gateway names must be the code's keyed digest (step chain_key).",
        ),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """The whole history of a subject, each step verified; exit 1 if any step fails, naming it. A dataset's
    trace names its upstream and downstream datasets too (each traced the same way).

    The listing is the gateway's word: a record listed twice fails step "listing", a cursor that does not
    advance stops the listing (LISTING_INVALID, exit 1), and past --max-pages the rest is left out with a
    warning. A record the gateway leaves out cannot be seen (docs/security.md).
    """
    from provenance.client import Client

    if trust is None:
        err.print(
            "[yellow]warning[/yellow]: keys from the gateway's /api/v1/orgs, i.e. from the party being "
            "checked; pin them with --trust (`provenance orgs export`)"
        )
    store = TrustStore.load(trust) if trust else gateway_trust(gateway)
    if subject.startswith("code:"):
        with Client(base_url=gateway, token=token(token_file)) as client:
            from provenance.network_key import read_network_key

            key = read_network_key(network_key) if network_key is not None else None
            _trace_box(client, store, subject.removeprefix("code:"), rpc, require_anchor, as_json, key)
        return
    rows: list[dict[str, Any]] = []
    pages = HistoryPages(max_pages=max_pages)
    listing: ListingInvalid | None = None
    with Client(base_url=gateway, token=token(token_file)) as client:
        checker = None
        if rpc:
            from provenance.chain.anchor import ChainAnchorChecker

            checker = ChainAnchorChecker.for_trust(rpc, store, proofs=client, give_up_after_bound=True)
        verifier = Verifier(trust=store, anchor_checker=checker, require_anchor=require_anchor)
        seen: set[str] = set()
        try:
            for item in client.history(subject, pages=pages):
                rows.append(_trace_row(client, verifier, store, subject, item, seen))
        except ListingInvalid as exc:  # what was read so far is shown, then the listing's failure
            listing = exc
        lineage = _lineage(client, subject) if rows else None
    if not rows and listing is None:
        raise NotFound(f"no records for subject '{subject}'")
    failed = [r for r in rows if not r["ok"]]
    if as_json:
        doc: dict[str, Any] = {
            "subject": subject,
            "records": rows,
            "failed": len(failed),
            "truncated": pages.truncated,
        }
        if listing is not None:
            doc["listing_error"] = {"code": listing.code, "message": listing.message}
        if lineage is not None:
            doc["lineage"] = lineage
        typer.echo(json_text(doc, indent=None))
    else:
        out.print(trace_table(subject, rows))
        if lineage is not None:
            for side, label in (("upstream", "derived from"), ("downstream", "derived into")):
                names = [shown(f"{n['dataset']} ({n['depth']}, {n['owner']})") for n in lineage[side]]
                out.print(f"{side} ({label}): {', '.join(names) or 'none'}")
        for r in failed:
            step, code = shown(r["failed_step"]), shown(r["code"])
            err.print(f"[red]record {shown(r['id'])}[/red]: step '{step}' [{code}]: {shown(r['message'])}")
    if pages.truncated:
        err.print(
            f"[yellow]warning[/yellow]: truncated after {pages.pages} pages ({len(rows)} records): the "
            "gateway lists more, so this is not the whole history (raise --max-pages)"
        )
    if listing is not None:
        raise listing
    if failed:
        raise typer.Exit(1)


def _lineage(client: Any, subject: str) -> dict[str, Any] | None:
    """A dataset's upstream and downstream datasets as the reader may see them (the gateway's lineage read;
    each node names the record that made it, which ``provenance trace`` of that dataset verifies); None
    for other subjects or a dataset the gateway has no lineage of."""
    if not subject.startswith("dataset:"):
        return None
    try:
        doc = client.lineage(subject.removeprefix("dataset:"))
    except ProvenanceError:
        return None
    keep = ("dataset", "depth", "status", "owner", "record")
    return {
        "upstream": [{k: n.get(k) for k in keep} for n in doc.get("ancestors", [])],
        "downstream": [{k: n.get(k) for k in keep} for n in doc.get("descendants", [])],
        "truncated": bool(doc.get("truncated")),
    }


# One cell for the three checks a reader scans for: S(ignature), I(nclusion), A(nchor), each with a mark.
_MARKS = {
    "passed": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "skipped": "[yellow]–[/]",
    "warning": "[yellow]?[/]",
}
_CHECKS = (("S", "signature"), ("I", "inclusion"), ("A", "anchor"))


def trace_table(subject: str, rows: list[dict[str, Any]]) -> Table:
    """The history as a table that reads whole at 80 columns: no vertical rules, the time and the
    organisation's role on a second line, the three checks in one cell (legend in the caption), and cells
    that wrap rather than cut (`organ…`)."""
    from rich import box

    table = Table(
        title=f"{subject}: {len(rows)} records",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        caption="S signature, I inclusion, A anchor: ✓ passed, ✗ failed, – not checked, ? the chain's word",
        caption_justify="left",
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("signed (UTC)", no_wrap=True)
    table.add_column("organisation", overflow="fold", min_width=12)
    table.add_column("kind", overflow="fold")
    table.add_column("record", no_wrap=True)
    table.add_column("checks", no_wrap=True)
    table.add_column("verdict", overflow="fold")
    for i, r in enumerate(rows, 1):
        steps = r["steps"]
        when = shown(r["timestamp"])
        date, _, clock = when.partition("T")
        checks = " ".join(f"{letter}{_MARKS.get(steps.get(s, ''), '-')}" for letter, s in _CHECKS)
        if r["ok"]:
            result = {"verified": "[green]verified[/]", "consistent": "[yellow]consistent[/]"}.get(
                r["verdict"], ""
            )
        else:
            result = f"[red]{shown(r['failed_step'])} failed[/]"
        table.add_row(
            str(i),
            f"{date}\n{clock.removesuffix('Z')[:8]}" if clock else when,
            f"{shown(r['org'])}\n[dim]{shown(r['role'])}[/]",
            shown(r["kind"]),
            shown(str(r["id"])[:8]) + "…",
            checks,
            result,
        )
    return table


def _trace_row(
    client: Any, verifier: Verifier, store: TrustStore, subject: str, item: Any, seen: set[str]
) -> dict[str, Any]:
    """One listed record of `trace`, checked against its own bundle (a repeated id fails step listing)."""
    item = item if isinstance(item, dict) else {}
    row: dict[str, Any] = {k: item.get(k) for k in ("id", "kind", "org", "timestamp", "status")}
    entry = store.orgs.get(str(item.get("org")))
    row["role"] = entry.role if entry else "?"
    record_id = str(item.get("id"))
    duplicate = record_id in seen
    seen.add(record_id)
    results: list[StepResult] = []
    try:
        doc: Any = client.bundle_document(record_id, payload=False)
    except NotFound as exc:  # listed, yet no bundle: the listing names a record the gateway does not have
        row |= {"ok": False, "failed_step": "listing", "code": exc.code, "message": exc.message}
        return row | {"verdict": "failed", "steps": {"listing": "failed"}}
    failure = check_bundle(verifier, doc, report=results, listed=(item, subject), duplicate=duplicate)
    row["ok"] = failure is None
    if failure is not None:
        row |= {"failed_step": failure.step, "code": failure.code, "message": failure.message}
    row["verdict"] = verdict(results)
    row["steps"] = {r.step: r.status for r in results}
    return row


def _trace_box(
    client: Any,
    store: TrustStore,
    code: str,
    rpc: str | None,
    require_anchor: bool,
    as_json: bool,
    network_key: bytes | None = None,
) -> None:
    """``trace code:<code>``: the gateway's answer, then its dispense record checked against its own
    bundle (signed by the pharmacy named, of the prescription named, listing this box); with the network
    key, the box's key on chain the gateway names checked against the code's; exit 1 if not."""
    from provenance.trace_code import chain_digest, digest, identity, listed_codes, normalise

    answer = client.trace_code(code)
    use = answer.get("dispense")
    doc: dict[str, Any] = {**answer}
    if use is not None:
        checker = None
        if rpc:
            from provenance.chain.anchor import ChainAnchorChecker

            checker = ChainAnchorChecker.for_trust(rpc, store, proofs=client, give_up_after_bound=True)
        verifier = Verifier(trust=store, anchor_checker=checker, require_anchor=require_anchor)
        item = {"id": use["record"], "kind": "rx.dispense"}
        item |= {"org": use["pharmacy"]} if use.get("pharmacy") else {}
        subject = f"rx:{use['rx_id']}" if use.get("rx_id") else None
        results: list[StepResult] = []
        bundle = client.bundle_document(use["record"], payload=True)
        failure = check_bundle(verifier, bundle, report=results, listed=(item, subject))  # type: ignore[arg-type]
        check: dict[str, Any] = {"verdict": verdict(results), "steps": {r.step: r.status for r in results}}
        listed = {identity(c) for c in listed_codes(bundle.get("payload"))}
        if failure is None and identity(normalise(code)[1]) not in listed:
            # The signed dispense must hand over the box asked about (in any form: another expiry or batch
            # printed, leading zeros), whatever code the gateway answers with: else its word is all there is.
            check["steps"]["box"] = "failed"
            check |= {"failed_step": "box", "code": "TRACE_CODE_NOT_LISTED"}
            check["message"] = "the signed dispense does not list this box (or its payload was withheld)"
        elif failure is not None:
            check |= {"failed_step": failure.step, "code": failure.code, "message": failure.message}
        if network_key is not None and "failed_step" not in check:
            # What Prescriptions.codeUse holds the box under, recomputed: a gateway keying boxes with
            # another key than the network's would let the contract take them twice.
            normal = normalise(code)[1]  # a box dispensed before keyed digests is on chain under its SM3
            ok = answer.get("chain_key") in (chain_digest(network_key, normal), digest(normal))
            check["steps"]["chain_key"] = "passed" if ok else "failed"
            if not ok:
                check |= {"failed_step": "chain_key", "code": "CHAIN_KEY_MISMATCH"}
                check["message"] = (
                    "the box's key on chain the gateway names is not this code's under the network key"
                )
        doc["check"] = check
    if as_json:
        typer.echo(json_text(doc, indent=None))
    else:
        box, form, sm3 = shown(answer["code"]), shown(answer["form"]), shown(str(answer["digest"])[:16])
        out.print(f"box {box} ({form}), SM3 {sm3}…")
        if use is None:
            out.print("not dispensed anywhere in the network")
        else:
            entry = store.orgs.get(str(use.get("pharmacy")))
            where = f"{shown(use.get('pharmacy') or '?')} ({entry.role if entry else '?'})"
            rx = f"rx:{shown(use['rx_id'])}" if use.get("rx_id") else "a prescription not recorded here"
            handed = shown(use.get("handed_over_at") or "?")
            out.print(f"dispensed by {where}, {rx}, handed over at {handed}")
            status = shown(use.get("chain_status") or "?")
            out.print(f"dispense record {shown(use['record'])}, on chain {status}")
            steps = " ".join(
                f"{shown(s)} {_MARKS.get(v) or shown(v)}" for s, v in doc["check"]["steps"].items()
            )
            out.print(f"checks: {steps}")
    failed = doc.get("check", {}).get("failed_step")
    if failed:
        err.print(
            f"[red]dispense record[/red]: step '{shown(failed)}' [{shown(doc['check']['code'])}]: "
            f"{shown(doc['check']['message'])}"
        )
        raise typer.Exit(1)


@app.command()
def lineage(
    subject: Annotated[str, typer.Argument(help="dataset:<id>")],
    gateway: Gateway = DEFAULT_GATEWAY,
    token_file: ReaderToken = None,
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
    typer.echo(json_text(doc))


@app.command()
def export(
    out_path: Annotated[Path, typer.Option("--out", help="JSON Lines file to write (one bundle a line).")],
    gateway: Gateway = DEFAULT_GATEWAY,
    token_file: ReaderToken = None,
    org: Annotated[str | None, typer.Option("--org", help="Only records of this organisation.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only records of this kind.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339 UTC, inclusive.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="RFC 3339 UTC, exclusive.")] = None,
    payload: Annotated[bool, typer.Option("--payload/--no-payload", help="Include payloads.")] = False,
    max_bundles: Annotated[
        int | None,
        typer.Option("--max-bundles", min=1, help="At most this many (default: all the gateway counts)."),
    ] = None,
) -> None:
    """Export evidence bundles as JSON Lines (verify them later with `provenance verify FILE`): the records
    under a signed checkpoint when the export starts, as many as the gateway counts then."""
    from rich.progress import Progress

    params: dict[str, Any] = {"payload": str(payload).lower()}
    params |= {k: v for k, v in {"org": org, "kind": kind, "since": since, "until": until}.items() if v}
    api_token = token(token_file)
    headers = {"Authorization": f"Bearer {api_token}"} if api_token else {}
    written = 0
    tmp = out_path.with_name(out_path.name + ".part")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with (
        httpx.Client(
            base_url=gateway.rstrip("/"), headers=headers, timeout=60, transport=BoundedTransport()
        ) as http,
        tmp.open("w", encoding="utf-8") as f,
        Progress(console=err, transient=True) as bar,
    ):
        task = bar.add_task("exporting", total=None)
        for items, total in bundle_pages(http, params, most=max_bundles):
            bar.update(task, total=total)
            for item in items:
                f.write(json_line(item) + "\n")
            written += len(items)
            bar.advance(task, len(items))
    tmp.replace(out_path)  # a complete file or none: an interrupted export leaves only the .part file
    out.print(f"wrote {written} bundles to {out_path}")
