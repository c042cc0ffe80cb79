"""``provenance certificate``: a 存证证明 PDF of a record or a subject's history, its bundles embedded."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from provenance.cli._app import DEFAULT_GATEWAY, Gateway, GatewayTrust, app, err, gateway_trust, out, token
from provenance.errors import FormatError, NotFound
from provenance.listing import HistoryPages
from provenance.timestamps import format_timestamp
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier

_RECORD_ID = re.compile(r"^[0-9a-f]{64}$")


@app.command()
def certificate(
    target: Annotated[str, typer.Argument(help="A record id (64 hex), or a subject (rx:…, station:…).")],
    out_path: Annotated[Path, typer.Option("--out", help="The PDF to write.")],
    gateway: Gateway = DEFAULT_GATEWAY,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="API token of the reader (a regulator, an auditor).")
    ] = None,
    trust: GatewayTrust = None,
    rpc: Annotated[str | None, typer.Option("--rpc", help="Look the anchors up on this chain.")] = None,
    lang: Annotated[str, typer.Option("--lang", help="zh (default) or en.")] = "zh",
    verify_url: Annotated[
        str | None,
        typer.Option("--verify-url", help="The /verify page the QR code opens (default: GATEWAY/verify/)."),
    ] = None,
    font: Annotated[
        Path | None,
        typer.Option("--font", help="A CJK TrueType/OpenType font (default: Debian's WenQuanYi)."),
    ] = None,
    allow_unanchored: Annotated[
        bool, typer.Option("--allow-unanchored", help="Certify records not anchored on chain yet.")
    ] = False,
) -> None:
    """Write a PDF certificate (存证证明): one page a record, each verified now, its bundle embedded.

    A record that does not verify gets no certificate (CERTIFICATE_REFUSED, exit 1, naming the step).
    `provenance verify FILE.pdf` checks the embedded bundles and that the page prints their values.
    """
    from provenance.certificate import LANGS, certify, render_certificate
    from provenance.client import Client

    if lang not in LANGS:
        raise FormatError(f"--lang must be one of {', '.join(LANGS)}, not {lang!r}")
    if not _RECORD_ID.fullmatch(target) and ":" not in target:
        raise FormatError(f"{target!r} is neither a record id (64 lowercase hex) nor a subject (prefix:id)")
    if trust is None:
        err.print(
            "[yellow]warning[/yellow]: keys from the gateway's /api/v1/orgs, i.e. from the party being "
            "checked; pin them with --trust (`provenance orgs export`)"
        )
    store = TrustStore.load(trust) if trust else gateway_trust(gateway)
    records = []
    with Client(base_url=gateway, token=token(token_file)) as client:
        checker = None
        if rpc:
            from provenance.chain.anchor import ChainAnchorChecker

            checker = ChainAnchorChecker.for_trust(rpc, store, proofs=client, give_up_after_bound=True)
        verifier = Verifier(trust=store, anchor_checker=checker, require_anchor=not allow_unanchored)
        if _RECORD_ID.fullmatch(target):
            records.append(certify(verifier, client.bundle_document(target, payload=False), store))
        else:
            pages = HistoryPages()
            seen: set[str] = set()
            for item in client.history(target, pages=pages):
                record_id = str(item.get("id"))
                doc = client.bundle_document(record_id, payload=False)
                records.append(
                    certify(verifier, doc, store, listed=(item, target), duplicate=record_id in seen)
                )
                seen.add(record_id)
            if pages.truncated:
                raise FormatError(f"the history of {target} is longer than one certificate holds")
            if not records:
                raise NotFound(f"no records for subject '{target}'")
    pdf = render_certificate(
        records,
        lang=lang,
        verify_base=verify_url or gateway.rstrip("/") + "/verify/",
        issued_at=format_timestamp(datetime.now(UTC)),
        issuer=gateway,
        font=(font, 0) if font else None,
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".part")
    tmp.write_bytes(pdf)
    tmp.replace(out_path)
    out.print(f"wrote a certificate of {len(records)} record(s) to {out_path}")
