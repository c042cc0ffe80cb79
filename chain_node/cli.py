"""``provenance node``: init a genesis, run the node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

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
    try:
        serve(NodeSettings(**overrides))
    except ProvenanceError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc


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
