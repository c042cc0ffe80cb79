"""``provenance node``: init a genesis, run the node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from chain_node.config import NodeSettings
from chain_node.genesis import DEFAULT_CHAIN_ID, init_genesis
from provenance.errors import ProvenanceError

app = typer.Typer(help="The embedded 国密 chain node (py-evm, SM2-sealed blocks).", no_args_is_help=True)


@app.command()
def run(
    data_dir: Annotated[Path | None, typer.Option(help="Node data directory")] = None,
    rpc_port: Annotated[int | None, typer.Option(help="JSON-RPC port")] = None,
    rpc_host: Annotated[str | None, typer.Option(help="JSON-RPC bind address")] = None,
    genesis: Annotated[Path | None, typer.Option(help="Genesis file (default DATA_DIR/genesis.json)")] = None,
    block_time: Annotated[
        float | None, typer.Option(help="Seconds between blocks (default: on arrival)")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="Log level")] = None,
    dev_rpc: Annotated[
        bool | None, typer.Option("--dev-rpc", help="Enable evm_increaseTime/evm_mine (tests, devnets)")
    ] = None,
    sync: Annotated[
        str | None,
        typer.Option(help="full: fsync every commit (default); os: survive kill -9, not power loss"),
    ] = None,
    max_clock_lead: Annotated[
        str | None,
        typer.Option(help="Seconds a block may be stamped ahead of this clock (default 1); 'none': no bound"),
    ] = None,
) -> None:
    """Run the node: JSON-RPC over HTTP, blocks sealed by the genesis validator."""
    from chain_node.server import serve  # imported late: `init` should not pay for py-evm

    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "data_dir": data_dir,
            "rpc_port": rpc_port,
            "rpc_host": rpc_host,
            "genesis": genesis,
            "block_time": block_time,
            "log_level": log_level,
            "sync": sync,
            "dev_rpc": dev_rpc,
        }.items()
        if v is not None
    }
    if max_clock_lead is not None:
        overrides["max_clock_lead"] = _seconds_or_none(max_clock_lead, "--max-clock-lead")
    try:
        settings = NodeSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        typer.echo(f"error: invalid settings: {problems}", err=True)
        raise typer.Exit(2) from exc
    try:
        serve(settings)
    except ProvenanceError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc


def _seconds_or_none(value: str, option: str) -> float | None:
    if value.strip().lower() == "none":
        return None
    try:
        return float(value)
    except ValueError:
        raise typer.BadParameter(f"seconds or 'none', not {value!r}", param_hint=option) from None


@app.command()
def init(
    out: Annotated[Path, typer.Option(help="Genesis file to write")],
    data_dir: Annotated[Path, typer.Option(help="Node data directory (validator key goes here, 0600)")],
    alloc: Annotated[list[str] | None, typer.Option(help="Fund and permit this address (repeatable)")] = None,
    admin: Annotated[
        list[str] | None, typer.Option(help="Admin: may also create contracts (repeatable)")
    ] = None,
    chain_id: Annotated[int, typer.Option(help="Chain id")] = DEFAULT_CHAIN_ID,
    permission_contract: Annotated[
        str | None, typer.Option(help="OrgRegistry address consulted for senders not in genesis")
    ] = None,
) -> None:
    """Write a genesis with a fresh SM2 validator key, admins and allowlist."""
    g = init_genesis(
        out=out,
        data_dir=data_dir,
        alloc=alloc or [],
        admins=admin or [],
        chain_id=chain_id,
        permission_contract=permission_contract,
    )
    typer.echo(f"genesis {out} (chain {g.chain_id}, validator {g.validators[0].id[:16]}…)")
