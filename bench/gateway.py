"""End-to-end gateway throughput and latency on a real chain, beside the SM2 bound measured in the same run.

Starts an engine (anvil by default: the chain is not what is measured here), deploys the contracts and demo
orgs, runs the gateway as its own process (``python -m gateway serve``) on SQLite and, with
``PROV_TEST_PG_URL`` or ``--pg URL``, on PostgreSQL; then, per database:

- single-record submissions (pre-signed ``env.reading`` records, ``--concurrency`` clients): req/s, p50/p99;
- bulk submissions (``--bulk`` records per request): records/s;

The readings are those of a fleet of stations station-1 operates (``bench/fleet.py`` says why): one station's
readings are serialised through its state, which would measure that station's lock, not the gateway; here
no two concurrent requests name one station and no bulk request names one twice. Every submission must be
accepted: refusals are counted and fail the run.

- time from acceptance to anchored (one record at a time, polled);
- the gateway process's CPU time per single request and per bulk record (workers included, from ``/proc``);
- with ``--floor``, the same for ``bench/floor_app.py``: what any gateway on this stack costs at least.

The client (``bench/load.py``) sends pre-encoded requests, so its own CPU takes little from the server's.

The bound is 2 × ``openssl speed sm2`` verify/s (one SM2 verification per record, two cores' worth).

``--rx N`` measures the prescription chain instead: a dispense of 10 boxes with their traceability codes
beside a plain one in capsules, without codes (``bench/rx.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the packages and tests.kit from a checkout (bench/ follows: load, crypto)

import fleet  # noqa: E402  (bench/fleet.py)
import load  # noqa: E402  (bench/load.py)
import rx  # noqa: E402  (bench/rx.py)
from crypto import openssl_speed  # noqa: E402  (bench/crypto.py)

from devnet.deploy import deploy_network  # noqa: E402
from gateway.core.db import Database  # noqa: E402
from gateway.core.security import mint_token  # noqa: E402
from provenance.manifest import Manifest  # noqa: E402
from tests.kit.gateway import sign_submission  # noqa: E402
from tests.kit.network import variant_network  # noqa: E402

WARM_BULK = 500  # the warm-up's bulk requests


def note(text: str) -> None:
    """Progress on stderr (the figures go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def fresh_database(db_url: str, org: str = "station-1") -> str:
    """Empty the database (PostgreSQL: drop its tables) and create the schema; an API token of ``org``."""
    db = Database(db_url)
    if not db.is_sqlite:
        from sqlmodel import SQLModel

        SQLModel.metadata.drop_all(db.engine)
    db.create_all()
    token = mint_token(db, org)
    db.dispose()
    return token


def start_gateway(
    manifest: Manifest, db_url: str, port: int, log: Path, tree: Path = REPO, kek: Path | None = None
) -> subprocess.Popen[bytes]:
    """The gateway as its own process, answering on ``port``; its code from ``tree`` (another checkout: a
    baseline measured in the same run). Its key-encryption key in ``kek`` (default: beside its log); several
    instances on one PostgreSQL database need the same one."""
    assert manifest.path is not None
    env = {
        **os.environ,
        "PROV_GW_DATABASE_URL": db_url,
        "PROV_GW_MANIFEST_PATH": str(manifest.path),
        "PROV_GW_BACKLOG_LIMIT": "1000000",
        # the run's own key-encryption key, beside its log (the default for PostgreSQL is the devnet's)
        "PROV_GW_KEK_FILE": str(kek or log.with_suffix(".kek")),
    }
    cmd = [sys.executable, "-m", "gateway", "serve", "--port", str(port)]
    with log.open("wb") as out:  # the child holds its own copy of the handle
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tree)
    wait_healthy(f"http://127.0.0.1:{port}", proc, log)
    return proc


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``/healthz`` answers 200 (a minute at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{url} did not start; see {log}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def presign(manifest: Manifest, args: argparse.Namespace) -> list[list[dict[str, Any]]]:
    """Signed env.reading submissions of station-1's fleet (signing is the client's cost, not measured), per
    phase: a warm-up reading of each station (the gateway reads a station's registration from the chain
    once, then from its registry cache: the figures are a running network's), the single-record phase's
    (``--concurrency`` connections), the bulk phase's (``--bulk`` per request over two), the anchoring
    samples' (one at a time); each phase's readings dated after the one before."""
    phases = [
        (fleet.STATIONS, WARM_BULK, 2),
        (args.single, 1, args.concurrency),
        (args.records, args.bulk, 2),
        (args.anchor_samples, 1, 1),
    ]
    ticks = [fleet.Layout.ticks_for(n, bulk=b, lanes=c) for n, b, c in phases]
    layout = fleet.Layout(sum(ticks))
    key = manifest.sm2_key("station-1")
    out = []
    for i, (n, b, c) in enumerate(phases):
        packets = layout.packets(0, n, bulk=b, lanes=c, tick0=sum(ticks[:i]))
        out.append([sign_submission("station-1", key, "env.reading", p) for p in packets])
    return out


def single(url: str, token: str, bodies: list[dict[str, Any]], concurrency: int) -> dict[str, float]:
    """Submit one record per request over ``concurrency`` connections; req/s and latency percentiles (ms)."""
    auth = {"authorization": f"Bearer {token}"}
    requests = [load.encode("/api/v1/records", body, auth) for body in bodies]
    tally = load.Tally(202)
    result = load.run(url, requests, concurrency, tally)
    tally.require(len(bodies))
    return result


def bulk(url: str, token: str, bodies: list[dict[str, Any]], size: int, concurrency: int) -> float:
    """Submit in bulk requests of ``size``; records/s."""
    auth = {"authorization": f"Bearer {token}"}
    requests = [
        load.encode("/api/v1/records:bulk", {"records": bodies[i : i + size]}, auth)
        for i in range(0, len(bodies), size)
    ]
    tally = load.Tally(200, bulk=True)
    seconds = load.run(url, requests, concurrency, tally)["seconds"]
    tally.require(len(bodies))
    return len(bodies) / seconds


def time_to_anchor(url: str, token: str, bodies: list[dict[str, Any]]) -> list[float]:
    """Seconds from the 202 to status ``anchored``, one record at a time."""
    out = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        for body in bodies:
            r = http.post("/api/v1/records", json=body)
            t0 = time.perf_counter()
            if r.status_code != 202:
                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:500]}")
            rid = r.json()["id"]
            while http.get(f"/api/v1/records/{rid}").json()["status"] != "anchored":
                time.sleep(0.01)
            out.append(time.perf_counter() - t0)
    return out


def own_log(manifest: Manifest, engine: Any, name: str) -> Manifest:
    """The manifest with a ProvenanceLog of its own (two logs must never anchor into one contract), and a
    trust file of its own pinning it (``tests.kit.gateway.trust_path``)."""
    return variant_network(manifest, engine, name)


def run_one(
    name: str, manifest: Manifest, db_url: str, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """All three measurements on one database."""
    token = fresh_database(db_url)
    port = 18000 + (os.getpid() % 1000)
    proc = start_gateway(manifest, db_url, port, work / f"gateway-{name}.log")
    try:
        if args.rx:
            return rx.run(
                f"http://127.0.0.1:{port}", manifest, db_url, args.rx, lambda: cpu_seconds(proc.pid)
            )
        return measure(name, f"http://127.0.0.1:{port}", proc, token, manifest, args)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_floor(manifest: Manifest, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The same measurements against bench/floor_app.py (no anchoring there)."""
    pub = work / "floor-station-1.pem"
    pub.write_bytes(manifest.sm2_key("station-1").public_key().to_pem())
    env = {**os.environ, "FLOOR_PUB": str(pub), "FLOOR_DB": str(work / "floor.db")}
    port = 19000 + (os.getpid() % 1000)
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", "bench", "floor_app:app", "--port", str(port)]
    cmd += ["--log-level", "warning", "--no-access-log"]
    with (work / "floor.log").open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, work / "floor.log")
        return measure("floor", f"http://127.0.0.1:{port}", proc, "-", manifest, args, anchor=False)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure(
    name: str,
    url: str,
    proc: subprocess.Popen[bytes],
    token: str,
    manifest: Manifest,
    args: argparse.Namespace,
    *,
    anchor: bool = True,
) -> dict[str, Any]:
    """Single-record, bulk and (``anchor``) time-to-anchored figures of the server at ``url``."""
    warm, singles, bulks, samples = presign(manifest, args)
    bulk(url, token, warm, WARM_BULK, 2)
    note(f"{name}: {len(warm)} stations warmed up; single-record submissions")
    # The server's own CPU per request / record (workers included): steadier than rates on a shared box.
    c0 = cpu_seconds(proc.pid)
    s = single(url, token, singles, args.concurrency)
    c1 = cpu_seconds(proc.pid)
    s["cpu_ms"] = (c1 - c0) / args.single * 1000
    note(f"{name}: {s['rate']:.0f} req/s; bulk submissions")
    b = bulk(url, token, bulks, args.bulk, 2)
    bulk_cpu = (cpu_seconds(proc.pid) - c1) / args.records * 1000
    a = []
    if anchor:
        note(f"{name}: {b:.0f} records/s; time to anchored")
        a = time_to_anchor(url, token, samples)
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
    p.add_argument("--floor", action="store_true", help="also measure bench/floor_app.py (see its docstring)")
    p.add_argument(
        "--rx",
        type=int,
        default=0,
        help="measure N dispenses of 10 boxes with their codes and N of capsules without instead",
    )
    args = p.parse_args()

    ref = openssl_speed(3)
    bound = 2 * ref.get("sm2 verify", 0.0)
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    if args.engine == "anvil":
        from devnet.anvil import start_anvil

        engine = start_anvil()
    else:
        from devnet.embedded import start_embedded

        engine = start_embedded(data_dir=work / "chain", registry_permits=True)
    try:
        orgs = None if args.rx else fleet.fleet_orgs()
        manifest = deploy_network(engine, orgs, out_dir=work / "network")
        dbs = [("sqlite", f"sqlite:///{work / 'gateway.db'}")]
        if args.pg:
            dbs.append(("postgresql", args.pg))
        results = {name: run_one(name, own_log(manifest, engine, name), url, args, work) for name, url in dbs}
        if args.floor and not args.rx:
            results["floor"] = run_floor(manifest, args, work)
    finally:
        engine.stop()
    if args.rx:
        rx.report(results)
        return 0

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
    nan = float("nan")
    for name, r in results.items():
        s, a = r["single"], r["anchor"]
        ratio = r["bulk"] / bound if bound else float("nan")
        print(
            f"{name:<11} {s['rate']:>12,.0f} {s['p50']:>7.1f} {s['p99']:>7.1f} {r['bulk']:>11,.0f}"
            f" {ratio:>8.2f} {statistics.median(a) if a else nan:>15.2f} {max(a, default=nan):>6.2f}"
            f" {s['cpu_ms']:>11.2f} {r['bulk_cpu_ms']:>11.3f}"
        )
    print("targets: bulk >= 0.6 x bound; single >= 1,000 req/s with p99 < 50 ms; anchored within 2 s")
    if args.floor:
        print("floor: bench/floor_app.py, the least a submission does on this stack (parse, verify, insert)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
