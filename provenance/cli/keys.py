"""Keys, digests, SM2 signatures of files, record envelopes: ``keygen``, ``digest``, ``sm2``, ``record``."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from provenance.cli._app import app, command_group, err, out, shown
from provenance.crypto import SM2PrivateKey, SM2PublicKey, sm3_hex
from provenance.errors import FormatError, SignatureInvalid
from provenance.files import read_bytes, write_private, write_public
from provenance.records import Envelope, SignedRecord, b64decode, load_json, sign_envelope

sm2_app = command_group("sm2", "SM2 signatures of files (GB/T 32918, default ID 1234567812345678).")
record_app = command_group("record", "Record envelopes.")


def _load_private(path: Path) -> SM2PrivateKey:
    return SM2PrivateKey.from_pem(read_bytes(path, what="private key"))


def _load_public(path: Path) -> SM2PublicKey:
    return SM2PublicKey.from_pem(read_bytes(path, what="public key"))


@app.command()
def keygen(
    out_path: Annotated[Path, typer.Option("--out", help="Private key PEM to write (0600).")],
) -> None:
    """Generate an SM2 key pair: KEY.pem (PKCS#8, 0600) and KEY.pub.pem."""
    key = SM2PrivateKey.generate()
    pub_path = out_path.with_name(out_path.name.removesuffix(".pem") + ".pub.pem")
    write_private(out_path, key.to_pem())
    write_public(pub_path, key.public_key_pem())
    out.print(f"wrote {out_path} (private, 0600) and {pub_path}")
    out.print(f"fingerprint {key.public_key().fingerprint()}")


@app.command()
def digest(file: Annotated[Path, typer.Argument(help="File to hash.")]) -> None:
    """SM3 digest of a file, as lowercase hex (like `openssl dgst -sm3`)."""
    typer.echo(sm3_hex(read_bytes(file)))


@sm2_app.command("sign")
def sm2_sign(
    file: Annotated[Path, typer.Argument(help="File whose bytes are signed.")],
    key: Annotated[Path, typer.Option("--key", help="Private key PEM.")],
) -> None:
    """Print the base64 DER SM2 signature of FILE's bytes."""
    sig = _load_private(key).sign(read_bytes(file))
    typer.echo(base64.b64encode(sig).decode("ascii"))


@sm2_app.command("verify")
def sm2_verify(
    file: Annotated[Path, typer.Argument(help="File whose bytes were signed.")],
    pub: Annotated[Path, typer.Option("--pub", help="Public key PEM.")],
    sig: Annotated[Path, typer.Option("--sig", help="Signature file: base64 or raw DER.")],
) -> None:
    """Exit 0 if SIG is a valid SM2 signature of FILE by PUB, 1 otherwise."""
    raw = read_bytes(sig, what="signature file")
    stripped = raw.strip()
    signature = raw if raw[:1] == b"\x30" else b64decode(stripped.decode("ascii", "replace"))
    try:
        _load_public(pub).verify(read_bytes(file), signature)
    except SignatureInvalid as exc:
        err.print(f"[red]invalid[/red]: {shown(exc.message)}")
        raise typer.Exit(1) from exc
    out.print("[green]valid[/green]")


@record_app.command("sign")
def record_sign(
    record: Annotated[
        Path, typer.Argument(help="JSON: {kind, subject, payload[, prev, timestamp]} or an envelope.")
    ],
    key: Annotated[Path, typer.Option("--key", help="The organisation's SM2 private key PEM.")],
    org: Annotated[str, typer.Option("--org", help="Organisation id.")],
    output: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
) -> None:
    """Build (if needed) and sign a record envelope; prints the signed record with its payload."""
    data = load_json(read_bytes(record, what="record file"), what="record file")
    if not isinstance(data, dict):
        raise FormatError("record file must hold a JSON object")
    payload: Any = data.get("payload")
    if "payload_digest" in data:
        env = Envelope.from_dict({k: v for k, v in data.items() if k != "payload"})
        if env.org != org:
            raise FormatError(f"envelope is for org '{env.org}', not '{org}'")
    else:
        missing = [f for f in ("kind", "subject", "payload") if f not in data]
        if missing:
            raise FormatError(f"record file lacks {', '.join(missing)}", details={"missing": missing})
        env = Envelope.create(
            kind=data["kind"],
            subject=data["subject"],
            org=org,
            payload=payload,
            prev=data.get("prev"),
            timestamp=data.get("timestamp"),
        )
    signer = _load_private(key)
    signed = sign_envelope(env, signer)
    doc = signed.to_dict() | {
        "digest": signed.record_id,
        "signer": {"org": org, "public_key": signer.public_key_pem().decode("ascii")},
    }
    if payload is not None:
        doc["payload"] = payload
    text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_public(output, text.encode("utf-8"))


@record_app.command("check")
def record_check(
    file: Annotated[Path, typer.Argument(help="Signed record JSON (as printed by `record sign`).")],
) -> None:
    """Check a signed record's signature against the key it names (no log, no chain)."""
    data = load_json(read_bytes(file), what="signed record")
    signed = SignedRecord.from_dict(data)
    pem = data.get("signer", {}).get("public_key") if isinstance(data, dict) else None
    if not isinstance(pem, str):
        raise FormatError("signed record has no signer.public_key")
    try:
        SM2PublicKey.from_pem(pem).verify(signed.envelope.canonical(), signed.signature)
    except SignatureInvalid as exc:
        err.print(f"[red]invalid[/red]: {shown(exc.message)}")
        raise typer.Exit(1) from exc
    out.print(f"[green]valid[/green] record {signed.record_id}")
