"""``python -m devnet``: the same typer app as ``provenance devnet``."""

from devnet.cli import app

app(prog_name="provenance devnet")
