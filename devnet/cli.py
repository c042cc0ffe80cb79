"""``provenance devnet``: up, down, status, reset of the local network (node + contracts + gateway)."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from devnet.config import DevnetSettings, Engine
from devnet.network import NetworkInfo
from devnet.supervisor import down, reset, serve, status, up_detached
from provenance.cli._app import cli_app, err, out
from provenance.errors import ProvenanceError

app = cli_app("Local devnet: 国密 chain node (or anvil), contracts, demo organisations, gateway.")
T = TypeVar("T")

DirOption = Annotated[Path | None, typer.Option("--dir", help="State folder (default .devnet/ in the repo).")]


def _settings(**overrides: Any) -> DevnetSettings:
    return DevnetSettings(**{k: v for k, v in overrides.items() if v is not None})


def _guard(fn: Callable[[], T]) -> T:
    """Run ``fn``; a project error becomes one red line and exit code 1."""
    try:
        return fn()
    except ProvenanceError as exc:
        err.print(f"[red]error[/red] {escape(f'[{exc.code}]: {exc.message}')}", soft_wrap=True)
        if DevnetSettings().verbose:  # the root CLI's --verbose does not reach plugin groups
            traceback.print_exc()
        raise typer.Exit(1) from exc


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter to read and to copy)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_info(info: NetworkInfo, *, detached: bool) -> None:
    """Print the URLs, the demo organisations and their token files."""
    for note in info.notes:
        out.print(f"[yellow]note[/yellow]: {escape(note)}", soft_wrap=True)
    how = "created" if info.created else "resumed"
    height = "" if info.height is None else f"  (height {info.height})"
    root = info.manifest.parent
    lines = [
        f"[bold]Shancheng devnet[/bold] {how}: {info.engine} engine, chain id {info.chain_id}",
        f"  node JSON-RPC  {info.rpc_url}{height}",
    ]
    if info.gateway_url is not None:
        lines += [
            f"  gateway        {info.gateway_url}",
            f"  verify page    {info.gateway_url}/verify",
            f"  API docs       {info.gateway_url}/docs",
            f"  tiles          {info.gateway_url}/tiles  (provenance monitor --tiles …)",
        ]
        lines += [f"  witness        {w['url']}  {w['name']} ({w['org']})" for w in info.witnesses]
    else:
        lines.append("  gateway        [yellow]not started[/yellow] (not installed, or --no-gateway)")
    lines += [
        f"  state          {_shown(root)}/  (manifest.json, trust.json; keys/ and tokens/ are 0600)",
        f"  committee      {len(info.committee)} members, who vote OrgRegistry changes (keys/committee-*)",
    ]
    for line in lines:
        out.print(line, soft_wrap=True)
    # Plain lines, not a table: piped output (make run in CI logs) is 80 columns and would be cut.
    out.print("[bold]Demo organisations[/bold] (id, role, API token file, name)")
    for org in info.orgs:
        token = _shown(org.token_file) if org.token_file is not None else "(no token: gateway not started)"
        out.print(f"  {org.id:<13} {org.role:<19} {token}  {org.name}", soft_wrap=True)
    if detached:
        out.print(f"Running in the background (pid {info.pid}); stop it with `provenance devnet down`.")
    else:
        out.print("Press Ctrl-C to stop the node and the gateway.")
    out.file.flush()  # piped (CI logs, `tee`): show it now, not when the devnet stops


@app.command()
def up(
    engine: Annotated[
        Engine | None, typer.Option(help="Chain engine: our 国密 node, or anvil (no SM seals, no state).")
    ] = None,
    dir: DirOption = None,
    rpc_port: Annotated[int | None, typer.Option(help="Node JSON-RPC port (default 8545).")] = None,
    gateway_port: Annotated[int | None, typer.Option(help="Gateway port (default 8000).")] = None,
    block_time: Annotated[
        float | None, typer.Option(help="Seconds between blocks (default: a block per transaction).")
    ] = None,
    gateway: Annotated[bool | None, typer.Option("--gateway/--no-gateway", help="Start the gateway.")] = None,
    foreground: Annotated[
        bool, typer.Option("--foreground/--detach", help="Stay attached (Ctrl-C stops) or run in background.")
    ] = True,
    quiet: Annotated[bool, typer.Option(hidden=True, help="Print nothing when ready.")] = False,
) -> None:
    """Start the devnet: keys, genesis, node, contracts and demo organisations (first run), gateway."""
    settings = _settings(
        engine=engine,
        dir=dir,
        rpc_port=rpc_port,
        gateway_port=gateway_port,
        block_time=block_time,
        start_gateway=gateway,
    )
    if not foreground:
        out.print(f"starting the devnet in the background (log: {_shown(settings.dir.resolve())}/devnet.log)")
        info = _guard(lambda: up_detached(settings))
        print_info(info, detached=True)
        return

    def ready(info: NetworkInfo) -> None:
        if not quiet:
            print_info(info, detached=False)

    def step(message: str) -> None:
        if not quiet:
            out.print(f"[dim]… {message}[/dim]")
            out.file.flush()

    code = _guard(lambda: serve(settings, on_ready=ready, on_step=step))
    if not quiet:
        out.print("devnet stopped")
    raise typer.Exit(code)


@app.command("down")
def down_cmd(dir: DirOption = None) -> None:
    """Stop a devnet started with `up --detach`."""
    stopped = _guard(lambda: down(_settings(dir=dir)))
    out.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command("status")
def status_cmd(dir: DirOption = None) -> None:
    """What runs: supervisor, node and gateway (pid, URL, health). Exit 1 if the node is not running."""
    services = _guard(lambda: status(_settings(dir=dir)))
    table = Table()
    for column in ("service", "state", "pid", "url", "health"):
        table.add_column(column)
    for s in services:
        state = "[green]running[/green]" if s.running else "[dim]stopped[/dim]"
        health = (
            ""
            if s.healthy is None
            else ("[green]ok[/green] " if s.healthy else "[red]down[/red] ") + s.detail
        )
        table.add_row(s.name, state, str(s.pid or "-"), s.url or s.detail, health)
    out.print(table)
    node = next(s for s in services if s.name == "node")
    if not node.running:
        raise typer.Exit(1)


@app.command("reset")
def reset_cmd(
    dir: DirOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Stop the devnet and delete its folder: chain, keys, tokens, gateway database."""
    settings = _settings(dir=dir)
    if not yes:
        typer.confirm(f"Delete {settings.dir.resolve()} (chain, keys, tokens, database)?", abort=True)
    removed = _guard(lambda: reset(settings))
    out.print(f"removed {settings.dir.resolve()}" if removed else "nothing to remove")
