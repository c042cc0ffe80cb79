"""``provenance receipt``: check the gateway's signed promise to log a record (and that a bundle kept it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from provenance.cli._app import JsonOutput, command_group, json_text, out, shown
from provenance.cli.verify import (
    GATEWAY_OPTION,
    RPC_OPTION,
    TOKEN_OPTION,
    UNANCHORED_OPTION,
    bundle_entry,
    bundle_verifier,
    print_steps,
)
from provenance.errors import FormatError, ProvenanceError, ReceiptInvalid, VerificationError
from provenance.files import read_bytes
from provenance.records import load_json
from provenance.timestamps import format_timestamp
from provenance.verification.trust import TrustStore
from provenance.verification.verify import StepResult

receipt_app = command_group("receipt", "Signed acceptance receipts (the gateway's promise to log a record).")


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
        Path | None,
        typer.Option(
            "--bundle",
            help="An evidence bundle that must keep the promise (verified as `provenance verify` would).",
        ),
    ] = None,
    allow_unanchored: Annotated[bool, UNANCHORED_OPTION] = False,
    rpc: Annotated[str | None, RPC_OPTION] = None,
    gateway: Annotated[str | None, GATEWAY_OPTION] = None,
    token_file: Annotated[Path | None, TOKEN_OPTION] = None,
    as_json: JsonOutput = False,
) -> None:
    """Verify an acceptance receipt: exit 0 when the log key signed it (and the bundle keeps it), else 1.

    With --bundle the bundle is verified as `provenance verify --trust` verifies it (the same trust file,
    --rpc/--gateway for the live anchor check, an anchor required unless --allow-unanchored); it keeps the
    promise only when it is *verified* and is the receipt's record in the receipt's log.
    """
    entry: dict[str, Any] = {"ok": False}
    try:
        _receipt_entry(entry, file, trust, record, bundle, allow_unanchored, rpc, gateway, token_file)
    except ProvenanceError as exc:
        entry |= {"code": exc.code, "message": exc.message, "details": exc.details}
        if isinstance(exc, VerificationError):
            entry |= {"failed_step": exc.step, "check": exc.details.get("check")}
        if as_json:  # the document on stdout; the one-line error on stderr and the exit status from main
            typer.echo(json_text(entry))
        elif "bundle" in entry:
            print_steps([StepResult(s["step"], s["status"], s["detail"]) for s in entry["bundle"]["steps"]])
        raise
    if as_json:
        typer.echo(json_text(entry))
        return
    out.print(
        f"[green]valid[/green] receipt: log {shown(entry['origin'])} accepted record "
        f"{shown(entry['record'])} at {shown(entry['accepted_at'])}, promised in the log by "
        f"{shown(entry['deadline'])}"
    )
    if bundle is not None:
        print_steps([StepResult(s["step"], s["status"], s["detail"]) for s in entry["bundle"]["steps"]])
        out.print(
            f"[green]kept[/green]: leaf {shown(entry['leaf_index'])} of tree size {shown(entry['tree_size'])}"
        )


def _receipt_entry(
    entry: dict[str, Any],
    file: Path,
    trust: Path,
    record: str | None,
    bundle: Path | None,
    allow_unanchored: bool,
    rpc: str | None,
    gateway: str | None,
    token_file: Path | None,
) -> None:
    """Fill ``entry`` (``receipt verify --json``'s document) as far as the checks get; raise at a failure."""
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
    entry |= {
        "ok": bundle is None,
        "origin": receipt.origin,
        "record": receipt.record_id,
        "accepted_at": receipt.accepted_at,
        "max_merge_delay": receipt.max_merge_delay,
        "deadline": format_timestamp(receipt.deadline),
    }
    if bundle is None:
        return
    verifier = bundle_verifier(
        store, rpc=rpc, gateway=gateway, token_file=token_file, require_anchor=not allow_unanchored
    )
    raw_bundle = read_bytes(bundle, what="bundle file")
    report = entry["bundle"] = bundle_entry(verifier, raw_bundle)
    if not report["ok"]:
        raise ReceiptInvalid(
            f"the bundle does not verify: step '{report['failed_step']}' failed [{report['code']}]: "
            f"{report['message']}",
            details={"check": "kept", "bundle_step": report["failed_step"], "bundle_code": report["code"]},
        )
    if report["verdict"] != "verified":
        raise ReceiptInvalid(
            "the bundle is only consistent (the trust file pins no log key): it cannot keep a promise",
            details={"check": "kept", "verdict": report["verdict"]},
        )
    b = EvidenceBundle.from_json(raw_bundle)
    check_kept(receipt, b)
    entry |= {"ok": True, "kept": True, "leaf_index": b.leaf_index, "tree_size": b.tree_size}
