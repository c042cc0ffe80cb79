"""``provenance demo``: the offline walk-through."""

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
) -> None:
    """Offline walk-through: keys, signed records, an SM3 log, a checkpoint, bundles, verification."""
    from provenance.demo import run_demo

    run_demo(workdir=workdir, records=records, console=out)
