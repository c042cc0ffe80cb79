"""``provenance monitor``: follow a log's tiles from the state of the last run
(:mod:`provenance.verification.monitor`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from provenance.cli._app import app, err, json_text, out, shown
from provenance.client.transport import BoundedTransport
from provenance.files import FileUnreadable, read_text
from provenance.verification.monitor import Monitor, MonitorState, StepReport
from provenance.verification.trust import TrustStore


def http_fetch(client: httpx.Client) -> Any:
    """A fetch function over a tiles prefix: a path's bytes, or FileUnreadable naming the HTTP answer."""

    def fetch(path: str) -> bytes:
        resp = client.get("/" + path)
        if resp.status_code in (401, 403):
            raise FileUnreadable(
                f"{path}: HTTP {resp.status_code}: the entry bundles need a token (--token-file: an "
                "auditor's, regulator's or log operator's API token, or the gateway's monitor token)"
            )
        if resp.status_code != 200:
            raise FileUnreadable(f"{path}: HTTP {resp.status_code}")
        return resp.content

    return fetch


def _print(report: StepReport, as_json: bool) -> None:
    if as_json:
        doc = {
            "ok": report.ok,
            "old_size": report.old_size,
            "size": report.size,
            "entries_checked": report.entries_checked,
            "tiles_read": report.tiles_read,
            "problems": [
                {"code": p.code, "message": p.message, "details": p.details} for p in report.problems
            ],
        }
        typer.echo(json_text(doc, indent=None))
        return
    if report.size == report.old_size:
        out.print(f"checkpoint {report.size}: nothing new")
    else:
        colour = "green" if report.ok else "red"
        out.print(
            f"[{colour}]checkpoint {report.old_size} → {report.size}[/]: {report.entries_checked} entries "
            f"checked, {report.tiles_read} tiles read, {len(report.problems)} problems"
        )
    for p in report.problems:
        err.print(f"[red]{p.code}[/red]: {shown(p.message)}", soft_wrap=True, highlight=False)


@app.command("monitor")
def monitor(
    tiles: Annotated[str, typer.Option("--tiles", help="The log's tiles URL prefix (…/tiles).")],
    trust: Annotated[
        Path, typer.Option("--trust", help="Trust file: log key, organisations, witness policy.")
    ],
    state: Annotated[
        Path, typer.Option("--state", help="State file of the last run (created if missing).")
    ] = Path("monitor-state.json"),
    follow: Annotated[bool, typer.Option("--follow", help="Keep following until interrupted.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between checks with --follow.")
    ] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per check.")] = False,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="File holding the bearer token the entry bundles need: an auditor's, regulator's or log "
            "operator's API token, or the gateway's monitor token (PROV_GW_MONITOR_TOKEN).",
        ),
    ] = None,
) -> None:
    """Follow the log: check every new checkpoint, tile and entry; exit 1 naming anything wrong."""
    store = TrustStore.load(trust)
    held = MonitorState.load(state) if state.exists() else None
    headers: dict[str, str] = {}
    if token_file is not None:
        headers["Authorization"] = f"Bearer {read_text(token_file, what='token file').strip()}"
    bounded = BoundedTransport()
    with httpx.Client(base_url=tiles.rstrip("/"), timeout=30, headers=headers, transport=bounded) as client:
        mon = Monitor(fetch=http_fetch(client), trust=store, state=held)
        while True:
            report = mon.step()  # a bad checkpoint, a fork or a missing quorum raises: exit 1 naming it
            _print(report, as_json)
            if not report.ok:
                raise typer.Exit(1)
            if mon.state is not None and mon.state != held:
                mon.state.save(state)
                held = mon.state
            if not follow:
                return
            time.sleep(interval)
