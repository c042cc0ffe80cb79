"""``python -m gateway``: serve the API, mint / rotate / revoke organisations' API tokens, wrap data keys."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from gateway.core.config import GatewaySettings
from gateway.core.db import Database
from gateway.core.kek import open_kek, wrap_legacy_keys
from gateway.core.security import mint_token, revoke_tokens, rotate_token, write_token_file
from provenance.errors import ProvenanceError

app = typer.Typer(add_completion=False, help="Shancheng Provenance gateway.")

OrgOpt = Annotated[str, typer.Option("--org", help="organisation id, as registered in OrgRegistry")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="write the token to this new file (0600)")]


def _db(settings: GatewaySettings | None = None) -> Database:
    db = Database((settings or GatewaySettings()).database_url)
    db.create_all()
    return db


@contextlib.contextmanager
def _one_line() -> Iterator[None]:
    """A project error (an unusable KEK file, database, manifest, log key) as one line and exit 2."""
    try:
        yield
    except ProvenanceError as exc:
        typer.echo(f"gateway: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(2) from None


@contextlib.contextmanager
def _operating(settings: GatewaySettings, *, create: bool = True) -> Iterator[Database]:
    """The gateway's database for an operator's command; a project error as one line and exit 2."""
    db = Database(settings.database_url)
    try:
        if create:
            db.create_all()
        with _one_line():
            yield db
    finally:
        db.dispose()


def _emit(token: str, out: Path | None) -> None:
    if out is None:
        typer.echo(token)
    else:
        write_token_file(out, token)
        typer.echo(f"token written to {out}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
) -> None:
    """Run the gateway (settings from PROV_GW_* environment variables)."""
    import uvicorn

    from gateway.api.server import server_config
    from gateway.main import create_app
    from gateway.services.runtime import Gateway

    settings = GatewaySettings()
    # Opened here, once: an unusable database, KEK file, manifest or log key stops the start with one line
    # instead of a traceback from inside the server's lifespan.
    with _one_line():
        gw = Gateway(settings)
    config = server_config(
        create_app(settings, gateway=gw), settings, host=host or settings.host, port=port or settings.port
    )
    server = uvicorn.Server(config)
    # What start-up built (modules, web3's contracts, the app) lives as long as the process: out of the
    # collector's sight, a full collection no longer walks it each time requests' objects pile up; and a
    # young collection every 50,000 container allocations, not 700 (a batch of 10,000 readings allocates
    # ~100,000, nearly all freed by reference counting). Together ~40% of a batch's adapter time.
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)
    server.run()
    if not server.started:
        raise typer.Exit(3)  # as uvicorn.run: the port was taken, or the app failed to start


@app.command("mint-token")
def mint(org: OrgOpt, out: OutOpt = None, label: str = "") -> None:
    """Create an API token for an organisation."""
    _emit(mint_token(_db(), org, label=label), out)


@app.command("rotate-token")
def rotate(org: OrgOpt, out: OutOpt = None, label: str = "") -> None:
    """Create a new token for an organisation and revoke its older ones."""
    _emit(rotate_token(_db(), org, label=label), out)


@app.command("revoke-tokens")
def revoke(org: OrgOpt) -> None:
    """Revoke every token of an organisation."""
    typer.echo(f"revoked {revoke_tokens(_db(), org)} token(s)")


@app.command("wrap-data-keys")
def wrap_data_keys(
    batch: Annotated[int, typer.Option(min=1, help="rows per transaction")] = 500,
) -> None:
    """Wrap with the KEK every data key stored unwrapped (rows written before the KEK), in place."""
    settings = GatewaySettings()
    db = _db(settings)
    try:
        with _one_line():
            kek = open_kek(settings.kek_path, db)
        wrapped, skipped = wrap_legacy_keys(db, kek, batch=batch)
    finally:
        db.dispose()
    typer.echo(f"wrapped {wrapped} data key(s) with the key-encryption key {kek.key_id}")
    if skipped:
        typer.echo(
            f"left {len(skipped)} row(s) unwrapped, their key is not a 16-byte SM4 key (altered in "
            f"storage?): {', '.join(skipped)}",
            err=True,
        )
        raise typer.Exit(1)


@app.command("rotate-kek")
def rotate_kek_cmd(
    batch: Annotated[int, typer.Option(min=1, help="data keys per transaction")] = 500,
    limit: Annotated[
        int | None, typer.Option(min=1, help="re-wrap at most this many now; run again to go on")
    ] = None,
) -> None:
    """Re-wrap every data key under a new key-encryption key while the gateway serves, then destroy the old
    KEK. Resumable: a run that stopped (or hit --limit) is taken up by the next one."""
    from gateway.ops.kek_rotation import rotate_kek

    settings = GatewaySettings()
    with _operating(settings) as db:
        done = rotate_kek(db, settings.kek_path, batch=batch, limit=limit)
    if not done.finished:
        typer.echo(
            f"re-wrapped {done.rewrapped} data key(s) with the key-encryption key {done.new}; "
            f"{done.remaining} still wrapped with {done.old}: run rotate-kek again to go on"
        )
        return
    typer.echo(
        f"re-wrapped {done.rewrapped} data key(s); the key-encryption key {done.old} is replaced by "
        f"{done.new} in {settings.kek_path} and destroyed"
    )


@app.command("backup")
def backup_cmd(
    out: Annotated[Path, typer.Option("--out", help="a new (or empty) folder for the backup")],
) -> None:
    """A consistent snapshot of the gateway's database (online: the gateway may keep serving). The KEK
    file is not in it: back it up apart."""
    from gateway.ops.backup import backup

    with _operating(GatewaySettings()) as db:
        info = backup(db, out)
    typer.echo(
        f"backed up {info.records} records, log size {info.log_size} (anchored {info.anchored_size}) to "
        f"{out / info.file}; data keys wrapped with KEK {', '.join(info.kek_ids) or '(none)'}"
    )


@app.command("restore")
def restore_cmd(
    source: Annotated[Path, typer.Option("--from", help="the backup folder (python -m gateway backup)")],
) -> None:
    """Restore a backup into the gateway's (new, empty) database. At its next start the gateway checks the
    log against ProvenanceLog's latest anchor before it accepts anything."""
    from gateway.ops.backup import restore

    settings = GatewaySettings()
    with _operating(settings, create=False) as db:
        info = restore(db, source)
    typer.echo(
        f"restored {info.records} records, log size {info.log_size}, from the backup of {info.created_at}"
    )
    if not settings.kek_path.exists():
        typer.echo(
            f"the key-encryption key file {settings.kek_path} is missing: restore it (KEK "
            f"{', '.join(info.kek_ids)}) before starting the gateway",
            err=True,
        )


if __name__ == "__main__":
    app()
