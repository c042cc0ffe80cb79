"""``provenance demo``: the data path end to end, offline, with real keys and real proofs.

Until the devnet runs, this is what ``make run`` shows: nothing here is simulated except the chain
anchor, which the demo leaves out and says so.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from provenance.access_code import AccessCode
from provenance.crypto import SM2PrivateKey
from provenance.files import write_private, write_public
from provenance.log.record_log import RecordLog
from provenance.orgs import OrgEntry, OrgKey
from provenance.records import Envelope, sign_envelope
from provenance.verification.trust import LogKey, TrustStore
from provenance.verification.verify import StepResult, Verifier


def _key(workdir: Path, name: str) -> SM2PrivateKey:
    path = workdir / "keys" / f"{name}.pem"
    if path.exists():
        return SM2PrivateKey.from_pem(path.read_bytes())
    key = SM2PrivateKey.generate()
    write_private(path, key.to_pem())
    write_public(path.with_name(f"{name}.pub.pem"), key.public_key_pem())
    return key


def run_demo(*, workdir: Path, records: int, console: Console) -> None:
    """Sign ``records`` prescriptions, log them, checkpoint, write and verify evidence bundles."""
    hospital = _key(workdir, "hospital-demo")
    log_key = _key(workdir, "log-demo")
    log = RecordLog.in_memory(origin="demo.shancheng.local/log", key_name="demo-log", key=log_key)
    prev: dict[str, str] = {}
    signed_all = []
    for i in range(records):
        rx = f"rx:demo-{i // 2:04d}"
        resource = {"resourceType": "MedicationRequest", "id": rx[3:], "status": "active", "n": i}
        # Every prescription carries its access code's digest (the code goes on the patient's slip).
        payload = AccessCode.new().attach(resource, rx[3:])
        env = Envelope.create(
            kind="rx.issue", subject=rx, org="hospital-demo", payload=payload, prev=prev.get(rx)
        )
        signed = sign_envelope(env, hospital)
        prev[rx] = signed.record_id
        signed_all.append((log.append(signed), signed, payload))
    cp, note = log.checkpoint()
    trust = TrustStore(
        orgs={
            "hospital-demo": OrgEntry(
                org_id="hospital-demo",
                role="hospital",
                keys=(OrgKey(public_key=hospital.public_key(), pem=hospital.public_key_pem().decode()),),
            )
        },
        logs=[
            LogKey(
                name=log.key_name,
                public_key=log_key.public_key(),
                pem=log.public_key_pem(),
                origin=log.origin,
            )
        ],
    )
    write_public(workdir / "trust.json", _json(trust.to_dict()))
    write_public(workdir / "checkpoint.txt", note.encode("utf-8"))
    verifier = Verifier.offline(trust, require_anchor=False)
    table = Table(
        title=f"{records} records in log '{log.origin}', tree size {cp.size}, root {cp.root.hex()[:16]}…"
    )
    for col in ("leaf", "subject", "record id", "bundle", "verified"):
        table.add_column(col)
    for index, signed, payload in signed_all:
        bundle = log.bundle(
            signed=signed,
            leaf_index=index,
            signer_public_key_pem=hospital.public_key_pem().decode(),
            note=note,
            tree_size=cp.size,
            payload=payload,
        )
        path = workdir / "bundles" / f"{index:04d}.json"
        write_public(path, bundle.to_json().encode("utf-8"))
        report: list[StepResult] = []
        verifier.verify(bundle, report=report)
        table.add_row(str(index), signed.envelope.subject, signed.record_id[:16] + "…", str(path), "✓")
    console.print(table)
    console.print(f"checkpoint note: {workdir / 'checkpoint.txt'}; trust file: {workdir / 'trust.json'}")
    console.print(
        "verify any bundle yourself: "
        f"[bold].venv/bin/provenance verify --allow-unanchored --trust {workdir / 'trust.json'} "
        f"{workdir / 'bundles' / '0000.json'}[/bold]"
    )
    console.print("[yellow]not shown yet[/yellow]: on-chain anchoring (arrives with the devnet).")


def _json(obj: object) -> bytes:
    import json

    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
