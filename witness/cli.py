"""``provenance witness``: run a witness, print its verifier key."""

from __future__ import annotations

from typing import Annotated

import typer

from provenance.errors import ProvenanceError
from witness.config import WitnessSettings

app = typer.Typer(help="A witness of the log (C2SP tlog-witness, SM2 cosignatures).", no_args_is_help=True)


def _witness(settings: WitnessSettings) -> object:
    from witness.service import Witness

    try:
        return Witness.from_settings(settings)
    except ProvenanceError as exc:
        typer.echo(f"witness: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
) -> None:
    """Run the witness (settings from PROV_WITNESS_* environment variables)."""
    import uvicorn

    from provenance.http_limits import limited_config
    from witness.app import create_app
    from witness.service import Witness

    settings = WitnessSettings()
    w = _witness(settings)
    assert isinstance(w, Witness)
    config = limited_config(
        create_app(settings, witness=w),
        host=host or settings.host,
        port=port or settings.port,
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout,
        keep_alive_timeout=settings.keep_alive_timeout,
        log_level="info",
        access_log=False,
    )
    uvicorn.Server(config).run()


@app.command()
def vkey() -> None:
    """Print the witness's verifier key string (for trust files)."""
    from witness.service import Witness

    w = _witness(WitnessSettings())
    assert isinstance(w, Witness)
    typer.echo(w.key.vkey())
