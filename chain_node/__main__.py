"""``python -m chain_node``: the same typer app as ``provenance node``."""

from chain_node.cli import app

app()
