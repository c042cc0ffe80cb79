"""End-to-end gateway throughput and latency on a real chain, beside the SM2 bound measured in the same run.

Starts an engine (anvil by default: the chain is not what is measured here), deploys the contracts and demo
orgs, runs the gateway as its own process (``python -m gateway serve``) on SQLite and, with
``PROV_TEST_PG_URL`` or ``--pg URL``, on PostgreSQL; then, per database:

- single-record submissions (pre-signed ``env.reading`` records, ``--concurrency`` clients): req/s, p50/p99;
- bulk submissions (``--bulk`` records per request): records/s;
- time from acceptance to anchored (one record at a time, polled);
- the gateway process's CPU time per single request and per bulk record (workers included, from ``/proc``).

The bound is 2 × ``openssl speed sm2`` verify/s (one SM2 verification per record, two cores' worth).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests" / "gateway")]

from crypto import openssl_speed  # noqa: E402  (bench/crypto.py)
from gateway_kit import hj212_packets, sign_submission  # noqa: E402

from devnet.deploy import Manifest, deploy_network  # noqa: E402
from gateway.core.db import Database  # noqa: E402
from gateway.core.security import mint_token  # noqa: E402


def note(text: str) -> None:
    """Progress on stderr (the figures go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def start_gateway(manifest: Manifest, db_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """The gateway as its own process, answering on ``port``."""
    assert manifest.path is not None
    env = {
        **os.environ,
        "PROV_GW_DATABASE_URL": db_url,
        "PROV_GW_MANIFEST_PATH": str(manifest.path),
        "PROV_GW_BACKLOG_LIMIT": "1000000",
        # the run's own key-encryption key, beside its log (the default for PostgreSQL is the devnet's)
        "PROV_GW_KEK_FILE": str(log.with_suffix(".kek")),
    }
    cmd = [sys.executable, "-m", "gateway", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gateway did not start; see {log}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def presign(manifest: Manifest, n: int) -> list[dict[str, Any]]:
    """``n`` signed env.reading submissions of station-1 (signing is the client's cost, not measured)."""
    key = manifest.sm2_key("station-1")
    return [sign_submission("station-1", key, "env.reading", p) for p in hj212_packets(n)]


def single(url: str, token: str, bodies: list[dict[str, Any]], concurrency: int) -> dict[str, float]:
    """Submit one record per request from ``concurrency`` threads; req/s and latency percentiles (ms)."""
    latencies: list[float] = []
    lock = threading.Lock()
    chunks = [bodies[i::concurrency] for i in range(concurrency)]

    def run(chunk: list[dict[str, Any]]) -> None:
        mine = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            for body in chunk:
                t = time.perf_counter()
                r = http.post("/api/v1/records", json=body)
                mine.append(time.perf_counter() - t)
                if r.status_code != 202:
                    raise RuntimeError(r.text)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100)
    return {"rate": len(latencies) / elapsed, "p50": q[49] * 1000, "p99": q[98] * 1000}


def bulk(url: str, token: str, bodies: list[dict[str, Any]], size: int, concurrency: int) -> float:
    """Submit in bulk requests of ``size``; records/s."""
    batches = [bodies[i : i + size] for i in range(0, len(bodies), size)]
    per_thread = [batches[i::concurrency] for i in range(concurrency)]

    def run(mine: list[list[dict[str, Any]]]) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
            for b in mine:
                r = http.post("/api/v1/records:bulk", json={"records": b})
                if r.status_code != 200 or r.json()["rejected"]:
                    raise RuntimeError(r.text[:500])

    threads = [threading.Thread(target=run, args=(m,)) for m in per_thread]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(bodies) / (time.perf_counter() - t0)


def time_to_anchor(url: str, token: str, bodies: list[dict[str, Any]]) -> list[float]:
    """Seconds from the 202 to status ``anchored``, one record at a time."""
    out = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        for body in bodies:
            r = http.post("/api/v1/records", json=body)
            t0 = time.perf_counter()
            rid = r.json()["id"]
            while http.get(f"/api/v1/records/{rid}").json()["status"] != "anchored":
                time.sleep(0.01)
            out.append(time.perf_counter() - t0)
    return out


def own_log(manifest: Manifest, engine: Any, name: str) -> Manifest:
    """The manifest with a ProvenanceLog of its own: two logs must never anchor into one contract."""
    import dataclasses
    import json

    from web3 import Web3

    from provenance.contracts import deploy

    w3 = Web3(Web3.HTTPProvider(engine.rpc_url))
    log = deploy(w3, "ProvenanceLog", manifest.contracts["OrgRegistry"], sender=engine.accounts[0])
    assert manifest.path is not None
    path = manifest.path.with_name(f"manifest-{name}.json")
    variant = dataclasses.replace(
        manifest, contracts={**manifest.contracts, "ProvenanceLog": log.address}, path=path
    )
    path.write_text(json.dumps(variant.to_dict(), ensure_ascii=False, indent=2), "utf-8")
    return variant


def run_one(
    name: str, manifest: Manifest, db_url: str, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """All three measurements on one database."""
    db = Database(db_url)
    if not db.is_sqlite:
        from sqlmodel import SQLModel

        SQLModel.metadata.drop_all(db.engine)
    db.create_all()
    token = mint_token(db, "station-1")
    db.dispose()
    port = 18000 + (os.getpid() % 1000)
    proc = start_gateway(manifest, db_url, port, work / f"gateway-{name}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        bodies = presign(manifest, args.single + args.records + args.anchor_samples)
        note(f"{name}: {len(bodies)} records signed; single-record submissions")
        # The gateway's own CPU per request / record (workers included): steadier than rates on a shared box.
        c0 = cpu_seconds(proc.pid)
        s = single(url, token, bodies[: args.single], args.concurrency)
        c1 = cpu_seconds(proc.pid)
        s["cpu_ms"] = (c1 - c0) / args.single * 1000
        note(f"{name}: {s['rate']:.0f} req/s; bulk submissions")
        b = bulk(url, token, bodies[args.single : args.single + args.records], args.bulk, 2)
        bulk_cpu = (cpu_seconds(proc.pid) - c1) / args.records * 1000
        note(f"{name}: {b:.0f} records/s; time to anchored")
        a = time_to_anchor(url, token, bodies[args.single + args.records :])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"single": s, "bulk": b, "bulk_cpu_ms": bulk_cpu, "anchor": a}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engine", choices=("anvil", "embedded"), default="anvil")
    p.add_argument("--single", type=int, default=2000, help="single-record submissions")
    p.add_argument("--records", type=int, default=10000, help="records submitted in bulk")
    p.add_argument("--bulk", type=int, default=500, help="records per bulk request")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--anchor-samples", type=int, default=10)
    p.add_argument("--pg", default=os.environ.get("PROV_TEST_PG_URL"), help="PostgreSQL URL (optional)")
    args = p.parse_args()

    ref = openssl_speed(3)
    bound = 2 * ref.get("sm2 verify", 0.0)
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    if args.engine == "anvil":
        from devnet.anvil import start_anvil

        engine = start_anvil()
    else:
        from devnet.embedded import start_embedded

        engine = start_embedded(data_dir=work / "chain")
    try:
        manifest = deploy_network(engine, out_dir=work / "network")
        dbs = [("sqlite", f"sqlite:///{work / 'gateway.db'}")]
        if args.pg:
            dbs.append(("postgresql", args.pg))
        results = {name: run_one(name, own_log(manifest, engine, name), url, args, work) for name, url in dbs}
    finally:
        engine.stop()

    print(f"engine {engine.name}; bound = 2 x openssl speed sm2 verify = {bound:,.0f}/s")
    head = (
        "database",
        "single req/s",
        "p50 ms",
        "p99 ms",
        "bulk rec/s",
        "x bound",
        "anchored p50 s",
        "max s",
        "cpu ms/req",
        "cpu ms/rec",
    )
    widths = (-11, 12, 7, 7, 11, 8, 15, 6, 11, 11)
    print(" ".join(f"{h:{'<' if w < 0 else '>'}{abs(w)}}" for h, w in zip(head, widths, strict=True)))
    for name, r in results.items():
        s, a = r["single"], r["anchor"]
        ratio = r["bulk"] / bound if bound else float("nan")
        print(
            f"{name:<11} {s['rate']:>12,.0f} {s['p50']:>7.1f} {s['p99']:>7.1f} {r['bulk']:>11,.0f}"
            f" {ratio:>8.2f} {statistics.median(a):>15.2f} {max(a):>6.2f}"
            f" {s['cpu_ms']:>11.2f} {r['bulk_cpu_ms']:>11.3f}"
        )
    print("targets: bulk >= 0.6 x bound; single >= 1,000 req/s with p99 < 50 ms; anchored within 2 s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
