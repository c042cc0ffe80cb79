"""Export verification throughput: `provenance verify EXPORT.jsonl` over N bundles on every core.

Target (issue 6): 1,000,000 exported records verified in under 60 s on this machine (2 cores).
Generates a realistic export (distinct SM2-signed records, one log, a checkpoint per 10,000 leaves as the
gateway would serve them), then times the same code path the CLI runs. Payloads are a four-field stub by
default (comparable with earlier figures) or, with --payload fhir, the 2 kB FHIR MedicationRequest of
tests/assets/fhir (canonicalised and digested on every verification). Usage:
    python bench/verify.py [--records 200000] [--workers N] [--payload stub|fhir]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

from provenance.crypto import SM2PrivateKey
from provenance.log.record_log import RecordLog
from provenance.orgs import OrgEntry, OrgKey
from provenance.records import Envelope, sign_envelope
from provenance.verification.batch import verify_export
from provenance.verification.trust import LogKey, TrustStore

HOSPITAL = SM2PrivateKey.generate()
LOG_KEY = SM2PrivateKey.generate()
CHECKPOINT_EVERY = 10_000
FHIR_RX = Path(__file__).resolve().parent.parent / "tests" / "assets" / "fhir" / "rx-issue-amoxicillin.json"


def _payload(i: int, kind: str) -> dict:
    if kind == "fhir":
        doc: dict = json.loads(FHIR_RX.read_text("utf-8"))
        doc["id"] = doc["identifier"][0]["value"] = f"rx-{i}"
        return doc
    return {"resourceType": "MedicationRequest", "id": f"rx-{i}", "status": "active", "qty": i % 30 + 1}


def _sign(i: int, payload_kind: str = "stub") -> dict:
    payload = _payload(i, payload_kind)
    env = Envelope.create(kind="rx.issue", subject=f"rx:rx-{i}", org="hospital-1", payload=payload)
    return {"signed": sign_envelope(env, HOSPITAL), "payload": payload}


def generate(path: Path, n: int, workers: int, payload_kind: str = "stub") -> None:
    log = RecordLog.in_memory(origin="bench/log", key_name="bench-log", key=LOG_KEY)
    with ProcessPoolExecutor(workers) as pool:
        items = list(pool.map(partial(_sign, payload_kind=payload_kind), range(n), chunksize=500))
    for it in items:
        log.append(it["signed"])
    pem = HOSPITAL.public_key_pem().decode()
    with path.open("w", encoding="utf-8") as f:
        for start in range(0, n, CHECKPOINT_EVERY):
            size = min(start + CHECKPOINT_EVERY, n)
            _, note = log.checkpoint(size)
            for i in range(start, size):
                b = log.bundle(
                    signed=items[i]["signed"],
                    leaf_index=i,
                    signer_public_key_pem=pem,
                    note=note,
                    tree_size=size,
                    payload=items[i]["payload"],
                )
                f.write(json.dumps(b.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--payload", choices=("stub", "fhir"), default="stub")
    args = ap.parse_args()
    hospital_key = OrgKey(HOSPITAL.public_key(), HOSPITAL.public_key_pem().decode())
    log_key = LogKey("bench-log", LOG_KEY.public_key(), LOG_KEY.public_key_pem().decode(), origin="bench/log")
    trust = TrustStore(
        orgs={"hospital-1": OrgEntry("hospital-1", "hospital", keys=(hospital_key,))}, logs=[log_key]
    )
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "export.jsonl"
        t0 = time.perf_counter()
        generate(path, args.records, args.workers, args.payload)
        gen_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        cpu0 = _cpu_s()
        t0 = time.perf_counter()
        summary = verify_export(path, trust=trust, require_anchor=False, workers=args.workers)
        dt = time.perf_counter() - t0
        cpu_us = (_cpu_s() - cpu0) / args.records * 1e6
    assert summary.total == args.records and not summary.failures, summary.failures[:3]
    rate = summary.total / dt
    openssl_verify = _openssl_sm2_verify_per_s()
    bound = args.workers * openssl_verify
    print(
        f"export: {args.records:,} bundles, {args.payload} payloads, {size_mb:,.0f} MB "
        f"(generated in {gen_s:.1f} s)"
    )
    print(f"verified {summary.total:,} bundles in {dt:.1f} s, {args.workers} workers: {rate:,.0f} bundles/s")
    print(f"extrapolated to 1,000,000 bundles: {1_000_000 / rate:,.0f} s (target < 60 s)")
    print(
        f"physical bound (one SM2 verify per record): {args.workers} x openssl speed sm2 verify "
        f"{openssl_verify:,.0f}/s = {bound:,.0f}/s, i.e. >= {1_000_000 / bound:,.0f} s for 1,000,000; "
        f"ours = {rate / bound:.2f} x bound"
    )
    # Wall-clock rates move with whatever else the machine runs; CPU time per bundle does not.
    floor_us = 1e6 / openssl_verify
    print(
        f"CPU: {cpu_us:,.0f} µs per bundle (parent and workers), of which the SM2 verify floor is "
        f"{floor_us:,.0f} µs: {floor_us / cpu_us:.2f} x bound; load average {os.getloadavg()[0]:.2f}"
    )


def _cpu_s() -> float:
    """CPU seconds of this process and of its finished children (the verify pool's workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _openssl_sm2_verify_per_s() -> float:
    """The verify/s column of `openssl speed sm2` (CPU-time based, one core)."""
    text = subprocess.run(
        ["openssl", "speed", "-seconds", "2", "sm2"], capture_output=True, text=True, check=True
    ).stdout
    row = next(ln for ln in text.splitlines() if ln.strip().startswith("256 bits SM2"))
    return float(row.split()[-1])


if __name__ == "__main__":
    main()
