"""``provenance chain``: re-verify a chain's seals and SM3 links from genesis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from provenance.chain.chain_verify import ChainInvalid, verify_chain
from provenance.cli._app import err, out, reaching, shown
from provenance.crypto import SM2PublicKey
from provenance.errors import ProvenanceError

app = typer.Typer(help="The 国密 chain: verify SM2 seals and the SM3 seal chain.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Chain commands."""


@app.command()
def verify(
    rpc: Annotated[str, typer.Option(help="Node JSON-RPC URL")] = "http://127.0.0.1:8545",
    validator_pub: Annotated[
        list[Path] | None,
        typer.Option(help="Pin the validator's SM2 public key PEM (repeatable); default: ask the node"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show tracebacks")] = False,
) -> None:
    """Re-fetch every block and seal from genesis and verify them; exit 1 naming the first bad block."""
    keys = [SM2PublicKey.from_pem(p.read_bytes()) for p in validator_pub] if validator_pub else None
    try:
        with Progress(
            TextColumn("verifying blocks"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
        ) as bar:
            task = bar.add_task("verify", total=None)
            with reaching(rpc=rpc):  # a node that fails or does not answer is a chain error, exit 2
                report = verify_chain(
                    rpc,
                    validator_keys=keys,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
    except ChainInvalid as exc:
        err.print(f"[red]chain invalid[/red] at block {exc.block}: {shown(exc.reason)}")
        if verbose:
            err.print_exception()
        raise typer.Exit(1) from exc
    except ProvenanceError as exc:
        err.print(f"[red]error[/red] [{exc.code}]: {shown(exc.message)}")
        if verbose:
            err.print_exception()
        raise typer.Exit(2) from exc
    src = "pinned key" if report.validator_source == "pinned" else "key from the node (gm_validators)"
    sealers = ", ".join(v[:16] + "…" for v in report.validators)
    out.print(
        f"[green]chain valid[/green]: {report.blocks} blocks (chain {report.chain_id}), "
        f"head {report.head_number} {report.head_hash}, sealed by {sealers} ({src})"
    )
