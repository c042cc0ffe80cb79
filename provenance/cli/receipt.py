"""``provenance receipt``: check the gateway's signed promise to log a record (and that a bundle kept it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from provenance.cli._app import app, out
from provenance.errors import FormatError
from provenance.files import read_bytes
from provenance.records import load_json
from provenance.timestamps import format_timestamp
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier

receipt_app = typer.Typer(help="Signed acceptance receipts (the gateway's promise to log a record).")
app.add_typer(receipt_app, name="receipt")


@receipt_app.command("verify")
def receipt_verify(
    file: Annotated[
        Path, typer.Argument(help="The receipt note, or the gateway's JSON answer that carries it.")
    ],
    trust: Annotated[Path, typer.Option("--trust", help="Trust file pinning the log key.")],
    record: Annotated[
        str | None, typer.Option("--record", help="The record id it must be for (default: the answer's id).")
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option("--bundle", help="An evidence bundle that must keep the promise.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Verify an acceptance receipt: exit 0 when the log key signed it (and the bundle keeps it), else 1."""
    from provenance.log.bundle import EvidenceBundle
    from provenance.log.receipt import check_kept, verify_receipt

    raw = read_bytes(file, what="receipt file")
    note: Any = raw
    if raw.lstrip()[:1] == b"{":
        doc = load_json(raw, what="receipt file")
        note = doc.get("receipt") if isinstance(doc, dict) else None
        if not isinstance(note, str):
            raise FormatError("receipt file is JSON without a 'receipt' string")
        record = record or (doc.get("id") if isinstance(doc.get("id"), str) else None)
    store = TrustStore.load(trust)
    receipt = verify_receipt(note, store, record_id=record)
    entry: dict[str, Any] = {
        "ok": True,
        "origin": receipt.origin,
        "record": receipt.record_id,
        "accepted_at": receipt.accepted_at,
        "max_merge_delay": receipt.max_merge_delay,
        "deadline": format_timestamp(receipt.deadline),
    }
    if bundle is not None:
        b = EvidenceBundle.from_dict(load_json(read_bytes(bundle, what="bundle file"), what="bundle file"))
        Verifier(trust=store, require_anchor=False).verify(b)
        check_kept(receipt, b)
        entry |= {"kept": True, "leaf_index": b.leaf_index, "tree_size": b.tree_size}
    if as_json:
        typer.echo(json.dumps(entry, ensure_ascii=False, indent=2))
        return
    out.print(
        f"[green]valid[/green] receipt: log {receipt.origin} accepted record {receipt.record_id} at "
        f"{receipt.accepted_at}, promised in the log by {entry['deadline']}"
    )
    if bundle is not None:
        out.print(f"[green]kept[/green]: leaf {entry['leaf_index']} of tree size {entry['tree_size']}")
