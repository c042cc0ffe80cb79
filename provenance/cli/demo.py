"""``provenance demo``: the offline walk-through, or the prescription chain on a running devnet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provenance.cli._app import app, out


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option("--dir", help="Where keys and bundles are written.")] = Path(
        ".devnet/demo"
    ),
    records: Annotated[int, typer.Option(help="How many records to log.")] = 8,
    devnet: Annotated[
        Path | None,
        typer.Option(
            "--devnet",
            help="A running devnet's state folder (.devnet): run the prescription chain on it instead.",
        ),
    ] = None,
    gateway: Annotated[str | None, typer.Option("--gateway", help="With --devnet: its gateway URL.")] = None,
) -> None:
    """Offline walk-through: keys, signed records, an SM3 log, a checkpoint, bundles, verification.

    With --devnet: issue → 审方 review → dispense with traceability codes → 医保 settle through the SDK,
    then the prescription traced (each step verified) and a box looked up by its code.
    """
    if devnet is not None:
        from provenance.demo_rx import run_rx_demo

        run_rx_demo(root=devnet, gateway=gateway, console=out)
        return
    from provenance.demo import run_demo

    run_demo(workdir=workdir, records=records, console=out)
