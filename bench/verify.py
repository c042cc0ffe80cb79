"""Export verification throughput: `provenance verify EXPORT.jsonl --trust T` over N bundles, as users run it.

Target (issue 20): 1,000,000 FHIR-payload bundles verified in under 60 s on this machine's two cores. The run
times the CLI itself (a subprocess, its worker processes included) and prints, beside the target, the SM2
floor measured in the same run: our SM2 verify/s (one core, per CPU-second, `openssl speed` style, from
bench/crypto.py) and `openssl speed sm2`, and the machine's load (it is shared: wall time is what the other
processes leave; CPU time per bundle is not).

The export is generated once and cached under bench/.cache/ (git-ignored; a million FHIR bundles is ~3.8 GB,
about half an hour to sign on two cores): distinct SM2-signed records of one hospital, one log, a checkpoint
per 10,000 leaves with its (offline) anchor, each bundle as `provenance export` writes it. Usage:
    python bench/verify.py [--records 1000000] [--payload fhir|stub] [--regenerate]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without install

from bench.crypto import openssl_speed, rate
from provenance.crypto import SM2PrivateKey
from provenance.domains import kind_roles
from provenance.log.bundle import Anchor
from provenance.log.record_log import RecordLog
from provenance.orgs import OrgEntry, OrgKey
from provenance.records import Envelope, SignedRecord, sign_envelope
from provenance.verification.trust import LogKey, TrustStore

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(__file__).resolve().parent / ".cache"
FHIR_RX = ROOT / "tests" / "assets" / "fhir" / "rx-issue-amoxicillin.json"
CHECKPOINT_EVERY = 10_000
CHUNK = 500  # records a signing worker takes at a time
TARGET_S = 60.0
ORIGIN, LOG_NAME, ORG = "bench/log", "bench-log", "hospital-1"
CHAIN_ID, CONTRACT = 31337, "0x" + "5c" * 20

_hospital: SM2PrivateKey | None = None  # set in each signing worker
_fhir_text: str | None = None


def _payload(i: int, kind: str) -> dict[str, Any]:
    global _fhir_text
    if kind == "fhir":
        if _fhir_text is None:
            _fhir_text = FHIR_RX.read_text("utf-8")
        doc: dict[str, Any] = json.loads(_fhir_text)
        doc["id"] = doc["identifier"][0]["value"] = f"rx-{i}"
        return doc
    return {"resourceType": "MedicationRequest", "id": f"rx-{i}", "status": "active", "qty": i % 30 + 1}


def _init_signer(pem: bytes) -> None:
    global _hospital
    _hospital = SM2PrivateKey.from_pem(pem)


def _sign(span: tuple[int, int, str]) -> list[tuple[SignedRecord, str]]:
    """Records [start, end): each signed record and its payload as compact JSON text."""
    start, end, kind = span
    assert _hospital is not None
    out = []
    for i in range(start, end):
        payload = _payload(i, kind)
        env = Envelope.create(kind="rx.issue", subject=f"rx:rx-{i}", org=ORG, payload=payload)
        out.append((sign_envelope(env, _hospital), _dumps(payload)))
    return out


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))  # as `provenance export` writes


def generate(path: Path, n: int, workers: int, kind: str) -> None:
    """Write the export and its trust file (path + ".trust.json"), streaming: memory stays flat."""
    hospital, log_key = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    log = RecordLog.in_memory(origin=ORIGIN, key_name=LOG_NAME, key=log_key)
    pem = hospital.public_key_pem().decode()
    tmp = path.with_suffix(".part")
    with (
        ProcessPoolExecutor(workers, initializer=_init_signer, initargs=(hospital.to_pem(),)) as pool,
        tmp.open("w", encoding="utf-8") as f,
    ):
        groups = [(s, min(s + CHECKPOINT_EVERY, n)) for s in range(0, n, CHECKPOINT_EVERY)]

        def submit(g: tuple[int, int]) -> list[Future[list[tuple[SignedRecord, str]]]]:
            return [pool.submit(_sign, (a, min(a + CHUNK, g[1]), kind)) for a in range(g[0], g[1], CHUNK)]

        ahead = submit(groups[0])
        for k, (start, size) in enumerate(groups):
            items = [it for fut in ahead for it in fut.result()]
            ahead = submit(groups[k + 1]) if k + 1 < len(groups) else []  # the workers sign on meanwhile
            for signed, _ in items:
                log.append(signed)
            cp, note = log.checkpoint(size)
            anchor = Anchor(
                chain_id=CHAIN_ID,
                contract=CONTRACT,
                tx_hash="0x" + secrets.token_hex(32),
                block_number=k + 1,
                block_hash="0x" + secrets.token_hex(32),
                tree_size=size,
                root=cp.root,
            )
            for i, (signed, payload_text) in enumerate(items, start):
                b = log.bundle(
                    signed=signed,
                    leaf_index=i,
                    signer_public_key_pem=pem,
                    note=note,
                    tree_size=size,
                    include_payload=False,
                    anchor=anchor,
                )
                f.write(_dumps(b.to_dict())[:-1] + ',"payload":' + payload_text + "}\n")
            print(f"\r  generated {size:,} of {n:,}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    trust = TrustStore(
        orgs={ORG: OrgEntry(ORG, "hospital", keys=(OrgKey(hospital.public_key(), pem),))},
        logs=[LogKey(LOG_NAME, log_key.public_key(), log.public_key_pem(), origin=ORIGIN)],
        chain={"chain_id": CHAIN_ID, "provenance_log": CONTRACT},
        kinds=kind_roles(),  # as `provenance orgs export` writes it: no verifier imports the domains
    )
    Path(f"{path}.trust.json").write_text(json.dumps(trust.to_dict(), indent=2) + "\n", "utf-8")
    tmp.rename(path)


def cached_export(n: int, kind: str, workers: int, regenerate: bool) -> tuple[Path, float | None]:
    """The export of ``n`` bundles (generated unless cached) and the seconds generating it took, if it did."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"export-{kind}-{n}.jsonl"
    if path.exists() and Path(f"{path}.trust.json").exists() and not regenerate:
        return path, None
    t0 = time.perf_counter()
    generate(path, n, workers, kind)
    return path, time.perf_counter() - t0


def _children_cpu_s() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def verify_cli(path: Path) -> tuple[dict[str, Any], float, float]:
    """`provenance verify PATH --trust PATH.trust.json --json`: (its summary, wall seconds, CPU seconds)."""
    cmd = [sys.executable, "-m", "provenance", "verify", str(path), "--trust", f"{path}.trust.json", "--json"]
    cpu0, t0 = _children_cpu_s(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    wall, cpu = time.perf_counter() - t0, _children_cpu_s() - cpu0
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise SystemExit(f"provenance verify failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout), wall, cpu


def _our_sm2_verify_per_s() -> tuple[str, float]:
    """Our SM2 verify/s on one core, per CPU-second (bench/crypto.py's ``rate``): the default backend."""
    from provenance.crypto import get_backend

    key = SM2PrivateKey.generate()
    pub, msg = key.public_key(), b"x" * 300  # about an envelope's canonical bytes
    sig = key.sign(msg)
    return get_backend().name, rate(lambda: pub.verify(msg, sig), 2.0)


def _lines(
    summary: dict[str, Any], n: int, wall: float, cpu: float, ours: tuple[str, float], ref: dict[str, float]
) -> Iterator[str]:
    backend, per_s = ours
    yield (
        f"verified {summary['total']:,} bundles in {wall:.1f} s wall (target < {TARGET_S:.0f} s: "
        f"{_target_word(wall, summary['total'], n)}): "
        f"{summary['verified']:,} verified, {summary['consistent']:,} consistent, "
        f"{summary['failed']:,} failed"
    )
    yield f"CPU {cpu:.1f} s in all = {cpu / n * 1e6:,.0f} µs per bundle (parent and workers)"
    floor = 1e6 / per_s
    yield (
        f"SM2 verify ({backend}, one core, this run): {per_s:,.0f}/s = {floor:,.0f} µs; on {os.cpu_count()} "
        f"cores that alone is {n / per_s / (os.cpu_count() or 1):,.1f} s for {n:,}; SM2 is "
        f"{floor / (cpu / n * 1e6):.0%} of the CPU per bundle"
    )
    if ref.get("sm2 verify"):
        yield (
            f"openssl speed sm2 verify (this run): {ref['sm2 verify']:,.0f}/s; ours = "
            f"{per_s / ref['sm2 verify']:.2f}x; ecdsap256 verify {ref.get('ecdsap256 verify', 0):,.0f}/s"
        )


def _target_word(wall: float, total: int, n: int) -> str:
    if n < 1_000_000:
        return f"the target is for 1,000,000; this ran {n:,}"
    return "met" if wall < TARGET_S and total == n else "MISSED"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--payload", choices=("stub", "fhir"), default="fhir")
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--generate-only", action="store_true", help="make (or keep) the cached export, no run")
    args = ap.parse_args()
    path, gen_s = cached_export(args.records, args.payload, os.cpu_count() or 1, args.regenerate)
    if args.generate_only:
        return
    made = f"generated in {gen_s:.0f} s" if gen_s is not None else "cached"
    print(
        f"export: {args.records:,} {args.payload} bundles, {path.stat().st_size / 1e6:,.0f} MB ({made}): "
        f"{path}"
    )
    load0, uptime0 = os.getloadavg()[0], _uptime()
    ours = _our_sm2_verify_per_s()
    summary, wall, cpu = verify_cli(path)
    ref = openssl_speed(2)
    print(f"uptime before: {uptime0}")
    print(f"uptime after:  {_uptime()}")
    for line in _lines(summary, args.records, wall, cpu, ours, ref):
        print(line)
    print(f"load average during the run: {load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if summary["failed"]:
        print("FAILURES:", json.dumps(summary["failures"][:3], ensure_ascii=False))


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


if __name__ == "__main__":
    main()
