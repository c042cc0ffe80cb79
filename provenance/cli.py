"""The ``provenance`` command: keys, digests, SM2, records, verification (typer + rich).

Errors print one readable line and exit non-zero (2 for bad input, 1 for a failed verification);
``--verbose`` adds the traceback. Other packages add command groups through the
``provenance.cli`` entry-point group (``node``, ``devnet``, …) so this package never imports them.
"""

from __future__ import annotations

import base64
import json
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import click
import httpx
import typer
from rich.console import Console
from rich.table import Table

from provenance._internal.files import read_bytes, read_text, write_private, write_public
from provenance.batch import check_bundle, count_lines, is_json_lines, verify_export, verify_line
from provenance.crypto import SM2PrivateKey, SM2PublicKey, sm3_hex
from provenance.errors import (
    FormatError,
    ListingInvalid,
    NotFound,
    ProvenanceError,
    ReceiptInvalid,
    SignatureInvalid,
    VerificationError,
)
from provenance.listing import MAX_HISTORY_PAGES, HistoryPages
from provenance.monitor_cli import monitor as monitor_command
from provenance.records import (
    Envelope,
    SignedRecord,
    b64decode,
    format_timestamp,
    load_json,
    sign_envelope,
)
from provenance.trust import TrustStore
from provenance.verify import STEP_TITLES, StepResult, Verifier, verdict

app = typer.Typer(
    name="provenance",
    help="Shancheng Provenance: 国密 (SM2/SM3) provenance records, proofs and verification.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
sm2_app = typer.Typer(help="SM2 signatures of files (GB/T 32918, default ID 1234567812345678).")
record_app = typer.Typer(help="Record envelopes.")
app.add_typer(sm2_app, name="sm2")
app.add_typer(record_app, name="record")

out = Console()
err = Console(stderr=True)
_state = {"verbose": False}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        from provenance.crypto import backend_report

        out.print(f"provenance {version('shancheng-provenance')}\nSM2 backends (* in use):", highlight=False)
        out.print(backend_report(), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Versions and the SM2 backend in use."
        ),
    ] = False,
) -> None:
    _state["verbose"] = verbose


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
        err.print(f"[red]invalid[/red]: {exc.message}")
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
        err.print(f"[red]invalid[/red]: {exc.message}")
        raise typer.Exit(1) from exc
    out.print(f"[green]valid[/green] record {signed.record_id}")


# How each status reads: "skipped" is a check that did not run (payload withheld, anchor offline).
_STATUS_WORDS = {"passed": "passed", "failed": "failed", "skipped": "not checked", "warning": "unpinned"}
_VERDICT_LINES = {
    "verified": "[green]verified[/green] with the pinned keys: record {record}",
    "consistent": (
        "[yellow]internally consistent, NOT verified[/yellow]: record {record} agrees with keys it carries "
        "itself, which shows integrity, not who signed it or which log holds it (pin keys with --trust)"
    ),
}


def _print_steps(results: list[StepResult]) -> None:
    table = Table(show_header=True, header_style="bold")
    table.add_column("step")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    colours = {"passed": "green", "failed": "red", "skipped": "yellow", "warning": "yellow"}
    for r in results:
        table.add_row(
            STEP_TITLES.get(r.step, r.step),
            f"[{colours.get(r.status, 'white')}]{_STATUS_WORDS.get(r.status, r.status)}[/]",
            r.detail,
        )
    out.print(table)


def _proofs(gateway: str | None, token_file: Path | None) -> Any:
    """The consistency proofs of the live anchor check, from the gateway when one is named."""
    if gateway is None:
        return None
    from provenance.client import GatewayProofs

    return GatewayProofs(gateway, token=_token(token_file))


def _verifier(
    store: TrustStore | None,
    *,
    rpc: str | None,
    gateway: str | None,
    token_file: Path | None,
    require_anchor: bool,
) -> Verifier:
    """The verifier of `verify` and `receipt verify`: pinned keys, and with --rpc the live anchor check."""
    checker = None
    if rpc:
        from provenance.anchor import ChainAnchorChecker

        checker = ChainAnchorChecker.for_trust(rpc, store, proofs=_proofs(gateway, token_file))
    return Verifier(trust=store, anchor_checker=checker, require_anchor=require_anchor)


def _bundle_entry(verifier: Verifier, raw: bytes) -> dict[str, Any]:
    """One bundle's bytes verified as `provenance verify FILE` reports it (``--json``'s document)."""
    results: list[StepResult] = []
    failure = verify_line(verifier, 1, raw, report=results)  # text that is not JSON fails step "schema"
    entry: dict[str, Any] = {"ok": failure is None, "verdict": verdict(results)}
    if failure is None:
        entry["record"] = load_json(raw)["digest"]  # the digest step held: it is the record id
    else:
        entry |= {"failed_step": failure.step, "code": failure.code, "message": failure.message}
        if failure.record is not None:
            entry["record"] = failure.record
    entry["steps"] = [{"step": r.step, "status": r.status, "detail": r.detail} for r in results]
    return entry


_RPC_OPTION = typer.Option("--rpc", help="Look anchors up on this chain's JSON-RPC (online mode).")
_GATEWAY_OPTION = typer.Option(
    "--gateway", help="With --rpc: where to fetch consistency proofs between anchors."
)
_TOKEN_OPTION = typer.Option("--token-file", help="API token for --gateway.")
_UNANCHORED_OPTION = typer.Option("--allow-unanchored", help="Accept bundles not yet anchored on chain.")


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="An evidence bundle (JSON) or an export (JSON Lines).")],
    trust: Annotated[
        Path | None, typer.Option("--trust", help="Trust file (`provenance orgs export`) pinning keys.")
    ] = None,
    allow_unanchored: Annotated[bool, _UNANCHORED_OPTION] = False,
    rpc: Annotated[str | None, _RPC_OPTION] = None,
    gateway: Annotated[str | None, _GATEWAY_OPTION] = None,
    token_file: Annotated[Path | None, _TOKEN_OPTION] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Verify evidence: exit 0 when every step holds, 1 naming the failed step.

    Without --trust the keys come from the bundle itself: the verdict is then "consistent", never
    "verified". Offline the anchor is not looked up ("not checked"); --rpc looks it up, and with
    --gateway checks that the anchored checkpoint is on one history with the anchors around it. An export
    (JSON Lines) is summed up by verdict: verified, only consistent, failed (exit 1 when any failed).
    """
    store = TrustStore.load(trust) if trust else None
    if is_json_lines(file):
        _verify_export(file, store, not allow_unanchored, as_json, rpc is not None)
        return
    verifier = _verifier(
        store, rpc=rpc, gateway=gateway, token_file=token_file, require_anchor=not allow_unanchored
    )
    entry = _bundle_entry(verifier, read_bytes(file, what="bundle file"))
    if as_json:
        typer.echo(json.dumps(entry, ensure_ascii=False, indent=2))
    else:
        _print_steps([StepResult(s["step"], s["status"], s["detail"]) for s in entry["steps"]])
        if entry["ok"]:
            out.print(_VERDICT_LINES[entry["verdict"]].format(record=entry.get("record")))
        else:
            step, code = entry["failed_step"], entry["code"]
            err.print(f"[red]NOT verified[/red]: step '{step}' failed [{code}]: {entry['message']}")
    if not entry["ok"]:
        raise typer.Exit(1)


def _verify_export(
    file: Path, store: TrustStore | None, require_anchor: bool, as_json: bool, online: bool
) -> None:
    if online:
        # Live anchor lookups would put one RPC round trip per bundle on every worker: refuse, clearly.
        raise FormatError("--rpc checks single bundles; for exports use `provenance audit log` for anchors")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    total = count_lines(file)
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, disable=as_json) as bar:
        task = bar.add_task("verifying", total=total)
        summary = verify_export(
            file, trust=store, require_anchor=require_anchor, progress=lambda n: bar.advance(task, n)
        )
    if as_json:
        doc = {
            "total": summary.total,
            "verified": summary.verified,
            "consistent": summary.consistent,
            "failed": len(summary.failures),
            "failures": [
                {
                    "line": f.line,
                    "record": f.record,
                    "failed_step": f.step,
                    "code": f.code,
                    "message": f.message,
                }
                for f in summary.failures
            ],
        }
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        # The page's words: "verified" only with pinned keys; the rest held against the bundles' own keys.
        out.print(
            f"{summary.verified} of {summary.total} bundles verified with the pinned keys, "
            f"{summary.consistent} only consistent (keys from the bundles themselves, not attributed), "
            f"{len(summary.failures)} failed"
        )
        if summary.consistent:
            err.print(
                "[yellow]warning[/yellow]: a consistent bundle agrees with keys it carries itself, which "
                "anyone can make: pin the keys with --trust (`provenance orgs export`)"
            )
        for f in summary.failures[:50]:
            err.print(f"  line {f.line}: step '{f.step}' [{f.code}]: {f.message}")
        if len(summary.failures) > 50:
            err.print(f"  … and {len(summary.failures) - 50} more (use --json for all)")
    if summary.failures:
        raise typer.Exit(1)


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
        Path | None,
        typer.Option(
            "--bundle",
            help="An evidence bundle that must keep the promise (verified as `provenance verify` would).",
        ),
    ] = None,
    allow_unanchored: Annotated[bool, _UNANCHORED_OPTION] = False,
    rpc: Annotated[str | None, _RPC_OPTION] = None,
    gateway: Annotated[str | None, _GATEWAY_OPTION] = None,
    token_file: Annotated[Path | None, _TOKEN_OPTION] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
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
            typer.echo(json.dumps(entry, ensure_ascii=False, indent=2))
        elif "bundle" in entry:
            _print_steps([StepResult(s["step"], s["status"], s["detail"]) for s in entry["bundle"]["steps"]])
        raise
    if as_json:
        typer.echo(json.dumps(entry, ensure_ascii=False, indent=2))
        return
    out.print(
        f"[green]valid[/green] receipt: log {entry['origin']} accepted record {entry['record']} at "
        f"{entry['accepted_at']}, promised in the log by {entry['deadline']}"
    )
    if bundle is not None:
        _print_steps([StepResult(s["step"], s["status"], s["detail"]) for s in entry["bundle"]["steps"]])
        out.print(f"[green]kept[/green]: leaf {entry['leaf_index']} of tree size {entry['tree_size']}")


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
    from provenance.bundle import EvidenceBundle
    from provenance.receipt import check_kept, verify_receipt

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
    verifier = _verifier(
        store, rpc=rpc, gateway=gateway, token_file=token_file, require_anchor=not allow_unanchored
    )
    raw_bundle = read_bytes(bundle, what="bundle file")
    report = entry["bundle"] = _bundle_entry(verifier, raw_bundle)
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


app.command("monitor")(monitor_command)

orgs_app = typer.Typer(help="Organisations in OrgRegistry.")
audit_app = typer.Typer(help="Auditors' whole-log checks.")
app.add_typer(orgs_app, name="orgs")
app.add_typer(audit_app, name="audit")


def _web3(rpc: str) -> Any:
    from web3 import Web3

    return Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 30}))


@orgs_app.command("export")
def orgs_export(
    rpc: Annotated[str, typer.Option("--rpc", help="Chain JSON-RPC URL.")],
    registry: Annotated[str, typer.Option("--registry", help="OrgRegistry address.")],
    out_path: Annotated[Path, typer.Option("--out", help="Trust file to write.")],
    gateway: Annotated[
        str | None,
        typer.Option("--gateway", help="Gateway URL: the log's contract and an anchored checkpoint note."),
    ] = None,
    log_contract: Annotated[
        str | None, typer.Option("--log-contract", help="ProvenanceLog address (default: the gateway's).")
    ] = None,
    log_key_name: Annotated[
        str | None, typer.Option("--log-key-name", help="The log key's name (default: read, checked).")
    ] = None,
    log_origin: Annotated[
        str | None, typer.Option("--log-origin", help="The log's origin (default: read, checked).")
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option("--witness", help="ORG=VKEY: a witness run by ORG (its key must be registered to ORG)."),
    ] = None,
    witness_quorum: Annotated[
        int, typer.Option("--witness-quorum", help="Cosignatures a checkpoint needs (default: a majority).")
    ] = 0,
) -> None:
    """Write a trust file pinning everything a verifier needs, from the chain: organisations, roles, SM2 key
    windows (OrgRegistry), the log's keys, name and origin, the chain id and the contracts."""
    from provenance.client import Client
    from provenance.registry import ExportInvalid, read_trust, witness_policy

    with _reaching(rpc=rpc, gateway=gateway):
        if gateway is not None:
            with Client(base_url=gateway) as client:
                contract = log_contract or _served_log_contract(gateway)
                store = read_trust(
                    _web3(rpc),
                    registry,
                    provenance_log=contract,
                    note_for=lambda size: _note_of(client.checkpoint(size)),
                    log_key_name=log_key_name,
                    log_origin=log_origin,
                    rpc_url=rpc,
                )
        elif log_contract is None:
            raise ExportInvalid("pass --gateway, or --log-contract with --log-key-name and --log-origin")
        else:
            store = read_trust(
                _web3(rpc),
                registry,
                provenance_log=log_contract,
                log_key_name=log_key_name,
                log_origin=log_origin,
                rpc_url=rpc,
            )
    if witness:
        pairs = [(org, vkey) for org, _, vkey in (w.partition("=") for w in witness)]
        if any(not org or not vkey for org, vkey in pairs):
            raise FormatError("--witness takes ORG=VKEY (the witness's verifier key string)")
        store.witnesses = witness_policy(store, pairs, witness_quorum or len(pairs) // 2 + 1)
    write_public(out_path, (json.dumps(store.to_dict(), ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    log = store.logs[0]
    out.print(
        f"wrote {out_path}: {len(store.orgs)} organisations, {len(store.logs)} log keys ('{log.name}', "
        f"origin '{log.origin}'), ProvenanceLog {store.provenance_log} on chain {store.chain_id}"
    )


def _note_of(doc: Any) -> str:
    note = doc.get("note") if isinstance(doc, dict) else None
    if not isinstance(note, str):
        raise FormatError("the gateway's checkpoint has no 'note' text")
    return note


def _served_log_contract(gateway: str) -> str:
    """The ProvenanceLog address the gateway names (checked on chain by ``read_trust``, not trusted)."""
    chain = _gateway_trust(gateway).chain
    contract = chain.get("provenance_log")
    if not isinstance(contract, str):
        raise FormatError("the gateway's /api/v1/orgs names no chain.provenance_log: pass --log-contract")
    return contract


@audit_app.command("log")
def audit_log(
    rpc: Annotated[str, typer.Option("--rpc", help="Chain JSON-RPC URL.")],
    log_contract: Annotated[str, typer.Option("--log-contract", help="ProvenanceLog address.")],
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway URL serving consistency proofs.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check that every anchored checkpoint extends the previous one; exit 1 on any fork or gap."""
    from rich.progress import Progress

    from provenance.audit import check_links, read_anchors
    from provenance.client import GatewayProofs

    with _reaching(gateway=gateway, rpc=rpc):
        anchors = read_anchors(_web3(rpc), log_contract)
        proofs = GatewayProofs(gateway)
        with Progress(console=err, transient=True, disable=as_json) as bar:
            task = bar.add_task("consistency", total=max(len(anchors) - 1, 0))
            links = check_links(anchors, proofs.consistency_proof, progress=lambda: bar.advance(task))
        proofs.close()
    bad = [lk for lk in links if not lk.ok]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "anchors": len(anchors),
                    "links_checked": len(links),
                    "failures": [
                        {"from": lk.first.tree_size, "to": lk.second.tree_size, "reason": lk.reason}
                        for lk in bad
                    ],
                },
                indent=2,
            )
        )
    else:
        out.print(
            f"{len(anchors)} anchored checkpoints, {len(links) - len(bad)} of {len(links)} links consistent"
        )
        for lk in bad:
            err.print(f"[red]{lk.first.tree_size} → {lk.second.tree_size}[/red]: {lk.reason}")
    if bad:
        raise typer.Exit(1)


@audit_app.command("workflow")
def audit_workflow(
    rpc: Annotated[str, typer.Option("--rpc", help="Chain JSON-RPC URL.")],
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway URL serving evidence bundles.")],
    token_file: Annotated[
        Path,
        typer.Option(
            "--token-file",
            help="API token of an auditor or regulator (other readers do not see others' records).",
        ),
    ],
    trust: Annotated[
        Path | None,
        typer.Option(
            "--trust", help="Pinned keys (`provenance orgs export`; default: read from OrgRegistry)."
        ),
    ] = None,
    manifest: Annotated[
        Path, typer.Option("--manifest", help="Network manifest naming the contracts.")
    ] = Path(".devnet/manifest.json"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check every workflow event on chain against a signed record; exit 1 naming each event without one."""
    from rich.progress import Progress

    from provenance.anchor import ChainAnchorChecker
    from provenance.audit import (
        check_events,
        read_account_changes,
        read_workflow_events,
        workflow_registry,
    )
    from provenance.client import Client
    from provenance.registry import read_trust

    token = _token(token_file)
    if not token:
        raise FormatError(f"token file is empty: {token_file}")
    contracts = _manifest_contracts(manifest)
    w3 = _web3(rpc)
    with (
        _reaching(gateway=gateway, rpc=rpc),
        Client(base_url=gateway, token=token) as client,
        Progress(console=err, transient=True, disable=as_json) as bar,
    ):
        registry = workflow_registry(w3, contracts)
        events = read_workflow_events(w3, contracts)
        accounts = read_account_changes(w3, registry)
        # Without --trust, keys as `orgs export` reads them from the chain, not as the audited gateway says.
        store = (
            TrustStore.load(trust)
            if trust
            else read_trust(
                w3,
                registry,
                provenance_log=contracts["ProvenanceLog"],
                note_for=lambda size: _note_of(client.checkpoint(size)),
            )
        )
        checker = ChainAnchorChecker(
            w3,
            contract=contracts["ProvenanceLog"],
            chain_id=store.chain_id,
            proofs=client,
            seal_keys=store.seal_keys,
        )
        verifier = Verifier(trust=store, anchor_checker=checker, require_anchor=False)
        task = bar.add_task("workflow events", total=len(events))
        results = check_events(
            events,
            lambda digest: client.bundle_document(digest, payload=False),
            verifier,
            accounts,
            progress=lambda: bar.advance(task),
        )
    bad = [r for r in results if not r.ok]
    if as_json:
        doc = {
            "events": len(results),
            "ok": len(results) - len(bad),
            "failed": len(bad),
            "keys": "trust file" if trust else "OrgRegistry",
            "results": [r.to_dict() for r in results],
        }
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"{len(results)} workflow events, {len(bad)} without a matching signed record")
        for col in ("block", "event", "organisation", "record", "result"):
            table.add_column(col, overflow="fold")
        for r in results:
            ev, env = r.event, r.record
            table.add_row(
                str(ev.block_number),
                ev.event,  # event names are unique across the domain contracts
                ev.org,
                f"{env.kind} {env.subject}" if env else ev.digest[:12] + "…",
                "[green]ok[/]" if r.ok else f"[red]{r.check}[/]",
            )
        out.print(table)
        for r in bad:
            ev = r.event
            # One line an event (no wrapping), so that a script can grep the events it cares about.
            line = f"[red]{ev.name}[/red] block {ev.block_number} tx {ev.tx_hash}: {r.reason}"
            err.print(line, soft_wrap=True, highlight=False)
    if bad:
        raise typer.Exit(1)


def _manifest_contracts(path: Path) -> dict[str, str]:
    """Contract addresses by name from a network manifest (``devnet/deploy.py`` writes it)."""
    from provenance.audit import WORKFLOW_CONTRACTS

    doc = load_json(read_bytes(path, what="manifest"), what="manifest")
    contracts = doc.get("contracts") if isinstance(doc, dict) else None
    if not isinstance(contracts, dict):
        raise FormatError(f"manifest {path} has no 'contracts' object")
    missing = [n for n in WORKFLOW_CONTRACTS if not isinstance(contracts.get(n), str)]
    if missing:
        raise FormatError(f"manifest {path} names no {', '.join(missing)}", details={"missing": missing})
    return {str(k): str(v) for k, v in contracts.items()}


@contextmanager
def _answered(*, gateway: str | None = None, rpc: str | None = None) -> Iterator[None]:
    """A gateway or node that does not answer at all is bad input (one line, exit 2), not a traceback.

    Around every command (``main``); commands that know the URLs they talk to name them.
    """
    from provenance.client import GatewayUnreachable
    from provenance.errors import LedgerError

    try:
        yield
    except httpx.TransportError as exc:
        if gateway is None:
            try:
                gateway = str(exc.request.url)
            except RuntimeError:
                gateway = "?"
        raise GatewayUnreachable(
            f"cannot reach the gateway at {gateway}: {exc or type(exc).__name__}"
        ) from exc
    except Exception as exc:
        requests = sys.modules.get("requests")  # loaded with web3; not imported just to compare types
        if requests is None or not isinstance(exc, requests.ConnectionError | requests.Timeout):
            raise
        at = f" at {rpc}" if rpc else ""
        raise LedgerError(f"cannot reach the chain{at}: no answer ({type(exc).__name__})") from exc


@contextmanager
def _reaching(*, rpc: str, gateway: str | None = None) -> Iterator[None]:
    """:func:`_answered` naming both ends, and any other failure of a chain read as a LEDGER_ERROR."""
    from web3.exceptions import Web3Exception

    from provenance.errors import LedgerError

    try:
        with _answered(gateway=gateway, rpc=rpc):
            yield
    except (Web3Exception, OSError) as exc:
        raise LedgerError(f"cannot read the chain at {rpc}: {exc}") from exc


def _token(token_file: Path | None) -> str | None:
    return read_text(token_file, what="token file").strip() if token_file else None


def _gateway_trust(gateway: str) -> TrustStore:
    resp = httpx.get(gateway.rstrip("/") + "/api/v1/orgs", timeout=30)
    if resp.status_code != 200:
        raise FormatError(f"gateway answered {resp.status_code} for /api/v1/orgs")
    return TrustStore.from_dict(load_json(resp.content, what="/api/v1/orgs"))


@app.command()
def trace(
    subject: Annotated[str, typer.Argument(help="rx:…, dataset:…, station:… or branch:…")],
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway URL.")] = "http://127.0.0.1:8000",
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="API token of the reader: the records it may see are traced."),
    ] = None,
    trust: Annotated[
        Path | None, typer.Option("--trust", help="Pinned keys (default: the gateway's /api/v1/orgs).")
    ] = None,
    rpc: Annotated[str | None, typer.Option("--rpc", help="Look anchors up on this chain.")] = None,
    require_anchor: Annotated[
        bool, typer.Option("--require-anchor", help="Fail records not anchored yet (default: pending).")
    ] = False,
    max_pages: Annotated[
        int,
        typer.Option("--max-pages", min=1, help="Read at most this many pages of the listing (then warn)."),
    ] = MAX_HISTORY_PAGES,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The whole history of a subject, each step verified; exit 1 if any step fails, naming it.

    The listing is the gateway's word: a record listed twice fails step "listing", a cursor that does not
    advance stops the listing (LISTING_INVALID, exit 1), and past --max-pages the rest is left out with a
    warning. A record the gateway leaves out cannot be seen (docs/security.md).
    """
    from provenance.client import Client

    if trust is None:
        err.print(
            "[yellow]warning[/yellow]: keys from the gateway's /api/v1/orgs, i.e. from the party being "
            "checked; pin them with --trust (`provenance orgs export`)"
        )
    store = TrustStore.load(trust) if trust else _gateway_trust(gateway)
    rows: list[dict[str, Any]] = []
    pages = HistoryPages(max_pages=max_pages)
    listing: ListingInvalid | None = None
    with Client(base_url=gateway, token=_token(token_file)) as client:
        checker = None
        if rpc:
            from provenance.anchor import ChainAnchorChecker

            checker = ChainAnchorChecker.for_trust(rpc, store, proofs=client)
        verifier = Verifier(trust=store, anchor_checker=checker, require_anchor=require_anchor)
        seen: set[str] = set()
        try:
            for item in client.history(subject, pages=pages):
                rows.append(_trace_row(client, verifier, store, subject, item, seen))
        except ListingInvalid as exc:  # what was read so far is shown, then the listing's failure
            listing = exc
    if not rows and listing is None:
        raise NotFound(f"no records for subject '{subject}'")
    failed = [r for r in rows if not r["ok"]]
    if as_json:
        doc: dict[str, Any] = {
            "subject": subject,
            "records": rows,
            "failed": len(failed),
            "truncated": pages.truncated,
        }
        if listing is not None:
            doc["listing_error"] = {"code": listing.code, "message": listing.message}
        typer.echo(json.dumps(doc, ensure_ascii=False))
    else:
        table = Table(title=f"{subject}: {len(rows)} records")
        for col in (
            "#",
            "when (UTC)",
            "organisation",
            "kind",
            "digest",
            "signature",
            "inclusion",
            "anchor",
            "",
        ):
            table.add_column(col)
        mark = {
            "passed": "[green]✓[/]",
            "failed": "[red]✗[/]",
            "skipped": "[yellow]not checked[/]",
            "warning": "[yellow]unpinned[/]",
        }
        for i, r in enumerate(rows, 1):
            steps = r["steps"]
            table.add_row(
                str(i),
                str(r["timestamp"]),
                f"{r['org']} ({r['role']})",
                str(r["kind"]),
                str(r["id"])[:12] + "…",
                *(
                    mark.get(steps.get(s, ""), steps.get(s, "-"))
                    for s in ("signature", "inclusion", "anchor")
                ),
                {"verified": "[green]verified[/]", "consistent": "[yellow]consistent[/]"}.get(
                    r["verdict"], ""
                )
                if r["ok"]
                else f"[red]{r['failed_step']} failed[/]",
            )
        out.print(table)
        for r in failed:
            err.print(f"[red]record {r['id']}[/red]: step '{r['failed_step']}' [{r['code']}]: {r['message']}")
    if pages.truncated:
        err.print(
            f"[yellow]warning[/yellow]: truncated after {pages.pages} pages ({len(rows)} records): the "
            "gateway lists more, so this is not the whole history (raise --max-pages)"
        )
    if listing is not None:
        raise listing
    if failed:
        raise typer.Exit(1)


def _trace_row(
    client: Any, verifier: Verifier, store: TrustStore, subject: str, item: Any, seen: set[str]
) -> dict[str, Any]:
    """One listed record of `trace`, checked against its own bundle (a repeated id fails step listing)."""
    item = item if isinstance(item, dict) else {}
    row: dict[str, Any] = {k: item.get(k) for k in ("id", "kind", "org", "timestamp", "status")}
    entry = store.orgs.get(str(item.get("org")))
    row["role"] = entry.role if entry else "?"
    record_id = str(item.get("id"))
    duplicate = record_id in seen
    seen.add(record_id)
    results: list[StepResult] = []
    try:
        doc: Any = client.bundle_document(record_id, payload=False)
    except NotFound as exc:  # listed, yet no bundle: the listing names a record the gateway does not have
        row |= {"ok": False, "failed_step": "listing", "code": exc.code, "message": exc.message}
        return row | {"verdict": "failed", "steps": {"listing": "failed"}}
    failure = check_bundle(verifier, doc, report=results, listed=(item, subject), duplicate=duplicate)
    row["ok"] = failure is None
    if failure is not None:
        row |= {"failed_step": failure.step, "code": failure.code, "message": failure.message}
    row["verdict"] = verdict(results)
    row["steps"] = {r.step: r.status for r in results}
    return row


@app.command()
def export(
    out_path: Annotated[Path, typer.Option("--out", help="JSON Lines file to write (one bundle a line).")],
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway URL.")] = "http://127.0.0.1:8000",
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="API token of the reader: its own records, every record for auditors and regulators.",
        ),
    ] = None,
    org: Annotated[str | None, typer.Option("--org", help="Only records of this organisation.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only records of this kind.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339 UTC, inclusive.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="RFC 3339 UTC, exclusive.")] = None,
    payload: Annotated[bool, typer.Option("--payload/--no-payload", help="Include payloads.")] = False,
) -> None:
    """Export evidence bundles as JSON Lines (verify them later with `provenance verify FILE`)."""
    from rich.progress import Progress

    params: dict[str, Any] = {"payload": str(payload).lower(), "limit": 500}
    params |= {k: v for k, v in {"org": org, "kind": kind, "since": since, "until": until}.items() if v}
    token = _token(token_file)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    written = 0
    tmp = out_path.with_name(out_path.name + ".part")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with (
        httpx.Client(base_url=gateway.rstrip("/"), headers=headers, timeout=60) as http,
        tmp.open("w", encoding="utf-8") as f,
        Progress(console=err, transient=True) as bar,
    ):
        task = bar.add_task("exporting", total=None)
        after = 0
        while True:
            resp = http.get("/api/v1/bundles", params=params | {"after": after})
            if resp.status_code != 200:
                raise FormatError(f"gateway answered {resp.status_code}: {resp.text[:200]}")
            doc = load_json(resp.content, what="bundle page")
            if bar.tasks[task].total is None and doc.get("total") is not None:
                bar.update(task, total=doc["total"])
            for item in doc["items"]:
                f.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
            written += len(doc["items"])
            bar.advance(task, len(doc["items"]))
            if not doc.get("next_cursor"):
                break
            after = doc["next_cursor"]
    tmp.replace(out_path)  # a complete file or none: an interrupted export leaves only the .part file
    out.print(f"wrote {written} bundles to {out_path}")


def _plugin_groups() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group="provenance.cli")}


def main(argv: list[str] | None = None) -> int:
    """Console entry point: mounts plugin groups, maps project errors to one line and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    plugins = _plugin_groups()
    wanted = [a for a in args if not a.startswith("-")][:1]
    # Import only the group asked for: loading the node or gateway costs time on every other command.
    for name, ep in plugins.items():
        if not wanted or wanted[0] == name:
            try:
                app.add_typer(ep.load(), name=name)
            except ImportError as exc:
                if wanted:  # asked for by name: say why it is missing; a --help listing just omits it
                    err.print(f"[yellow]warning[/yellow]: command group '{name}' unavailable: {exc}")
    try:
        with _answered():
            rv = app(args=args, prog_name="provenance", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except VerificationError as exc:
        err.print(f"[red]error[/red] [{exc.code}] step '{exc.step}': {exc.message}")
        if _state["verbose"]:
            traceback.print_exc()
        return 1
    except ProvenanceError as exc:
        err.print(f"[red]error[/red] [{exc.code}]: {exc.message}")
        if _state["verbose"]:
            traceback.print_exc()
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        err.print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code


def entry() -> None:
    sys.exit(main())
