"""End-to-end gateway throughput and latency on a real chain, beside the SM2 bound measured in the same run.

Starts an engine (anvil by default: the chain is not what is measured here), deploys the contracts and demo
orgs, runs the gateway as its own process (``python -m gateway serve``) on SQLite and, with
``PROV_TEST_PG_URL`` or ``--pg URL``, on PostgreSQL; then, per database:

- single-record submissions (pre-signed ``env.reading`` records, ``--concurrency`` clients): req/s, p50/p99;
- bulk submissions (``--bulk`` records per request, ``--bulk-concurrency`` clients): records/s;

The readings are those of a fleet of stations station-1 operates (``bench/fleet.py`` says why): one station's
readings are serialised through its state, which would measure that station's lock, not the gateway; here
no two concurrent requests name one station and no bulk request names one twice. Every submission must be
accepted: refusals are counted and fail the run.

- time from acceptance to anchored (one record at a time, polled);
- the gateway processes' CPU time per single request and per bulk record (workers included, every instance
  summed, from ``/proc``), and the client's own (this process: it shares the cores, so it must not be the
  bound);
- with ``--floor``, the same for ``bench/floor_app.py``: what any gateway on this stack costs at least.

The client (``bench/load.py``) sends pre-encoded requests, so its own CPU takes little from the server's.

With ``--instances 1 2 3`` each database is measured with that many gateway processes in turn, in the same
run (docs/design/gateway.md, Instances): on PostgreSQL N instances on the one database (the first started
owns the background workers, every one serves the API); on SQLite the owner of the workers and N-1
API-only instances (``api_only``) on the same file. Connection i goes to instance i % N.

The reference is 2 × ``openssl speed sm2`` verify/s (one SM2 verification per record, two cores' worth);
the load average (``os.getloadavg``) is printed before and after each database's runs: the box is shared.

``--rx N`` measures the prescription chain instead: a dispense of 10 boxes with their traceability codes
beside a plain one in capsules, without codes (``bench/rx.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the packages and tests.kit from a checkout (bench/ follows: load, crypto)

import crypto  # noqa: E402  (bench/crypto.py)
import fleet  # noqa: E402  (bench/fleet.py)
import load  # noqa: E402  (bench/load.py)
import rx  # noqa: E402  (bench/rx.py)
from crypto import openssl_speed  # noqa: E402

from devnet.deploy import deploy_network  # noqa: E402
from devnet.engines import free_port  # noqa: E402
from gateway.core.db import Database  # noqa: E402
from gateway.core.security import mint_token  # noqa: E402
from provenance.crypto import SM2PrivateKey, get_backend  # noqa: E402
from provenance.manifest import Manifest  # noqa: E402
from tests.kit.gateway import sign_submission  # noqa: E402
from tests.kit.network import variant_network  # noqa: E402

WARM_BULK = 500  # the warm-up's bulk requests
TARGET_SINGLE, TARGET_P99, TARGET_BULK = 1000.0, 50.0, 4000.0  # issue #20: req/s, ms, records/s


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
    manifest: Manifest,
    db_url: str,
    port: int,
    log: Path,
    tree: Path = REPO,
    kek: Path | None = None,
    *,
    workers: bool = True,
) -> subprocess.Popen[bytes]:
    """The gateway as its own process, answering on ``port``; its code from ``tree`` (another checkout: a
    baseline measured in the same run). Its key-encryption key in ``kek`` (default: beside its log); several
    instances on one database need the same one. ``workers=False``: the API alone (``api_only``)."""
    assert manifest.path is not None
    env = {
        **os.environ,
        "PROV_GW_DATABASE_URL": db_url,
        "PROV_GW_MANIFEST_PATH": str(manifest.path),
        "PROV_GW_BACKLOG_LIMIT": "1000000",
        # the run's own key-encryption key, beside its log (the default for PostgreSQL is the devnet's)
        "PROV_GW_KEK_FILE": str(kek or log.with_suffix(".kek")),
        "PROV_GW_API_ONLY": "false" if workers else "true",
    }
    cmd = [sys.executable, "-m", "gateway", "serve", "--port", str(port)]
    with log.open("wb") as out:  # the child holds its own copy of the handle
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tree)
    wait_healthy(f"http://127.0.0.1:{port}", proc, log)
    return proc


def start_instances(
    manifest: Manifest, db_url: str, n: int, work: Path, slug: str, tree: Path = REPO
) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """``n`` gateway processes on one database, the same KEK file and settings, each on a free port: their
    processes and URLs. PostgreSQL: every one starts its workers (the first takes the advisory lock and owns
    them, the others stand by); SQLite: the first owns them (the file's instance lock), the others serve the
    API only. The caller stops them (:func:`stop_all`)."""
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    sqlite = db_url.startswith("sqlite")
    try:
        for k in range(n):
            port = free_port()
            log = work / f"gateway-{slug}-{k}.log"
            kek = work / f"gateway-{slug}.kek"
            procs.append(start_gateway(manifest, db_url, port, log, tree, kek, workers=k == 0 or not sqlite))
            urls.append(f"http://127.0.0.1:{port}")
    except BaseException:
        stop_all(procs)
        raise
    return procs, urls


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate the processes, then wait for each."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=30)


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


def sm2_verify_rate(seconds: float = 2.0) -> tuple[str, float]:
    """The SM2 backend in use and its verify/s on one thread (per CPU-second, as ``bench/crypto.py``)."""
    key = SM2PrivateKey.generate()
    pub, sig = key.public_key(), key.sign(crypto.MSG20)
    return get_backend().name, crypto.rate(functools.partial(pub.verify, crypto.MSG20, sig), seconds)


def uptime() -> str:
    """``uptime``'s line (the load of the shared box)."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lanes(args: argparse.Namespace, instances: int) -> tuple[int, int, int]:
    """Single-record connections, bulk connections and records per bulk request for ``instances`` instances:
    at least a connection each, and no bulk request naming a station twice (:class:`fleet.Layout`)."""
    bulk_lanes = max(args.bulk_concurrency or 2 * instances, instances)
    return max(args.concurrency, instances), bulk_lanes, min(args.bulk, fleet.STATIONS // bulk_lanes)


def presign(manifest: Manifest, args: argparse.Namespace, instances: int = 1) -> list[list[dict[str, Any]]]:
    """Signed env.reading submissions of station-1's fleet (signing is the client's cost, not measured), per
    phase: a warm-up reading of each station for each instance (an instance reads a station's registration
    from the chain once, then from its registry cache: the figures are a running network's), the
    single-record phase's, the bulk phase's (:func:`lanes`), the anchoring samples' (one at a time); each
    phase's readings dated after the one before."""
    single_lanes, bulk_lanes, size = lanes(args, instances)
    phases = [
        (fleet.STATIONS * instances, WARM_BULK, 2),  # requests 2k and 2k+1: every station once
        (args.single, 1, single_lanes),
        (args.records, size, bulk_lanes),
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


def single(
    url: str | list[str], token: str, bodies: list[dict[str, Any]], concurrency: int
) -> dict[str, float]:
    """Submit one record per request over ``concurrency`` connections; req/s, latency percentiles (ms) and
    the client's own CPU seconds (``client_cpu``: the encoding is done before, the sending counted)."""
    auth = {"authorization": f"Bearer {token}"}
    requests = [load.encode("/api/v1/records", body, auth) for body in bodies]
    tally = load.Tally(202)
    c0 = time.process_time()
    result = load.run(url, requests, concurrency, tally)
    result["client_cpu"] = time.process_time() - c0
    tally.require(len(bodies))
    return result


def bulk(
    url: str | list[str], token: str, bodies: list[dict[str, Any]], size: int, concurrency: int
) -> dict[str, float]:
    """Submit in bulk requests of ``size``; records/s (``rate``) and the client's own CPU seconds."""
    auth = {"authorization": f"Bearer {token}"}
    requests = [
        load.encode("/api/v1/records:bulk", {"records": bodies[i : i + size]}, auth)
        for i in range(0, len(bodies), size)
    ]
    tally = load.Tally(200, bulk=True)
    c0 = time.process_time()
    seconds = load.run(url, requests, concurrency, tally)["seconds"]
    client = time.process_time() - c0
    tally.require(len(bodies))
    return {"rate": len(bodies) / seconds, "client_cpu": client}


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
    name: str, manifest: Manifest, db_url: str, args: argparse.Namespace, work: Path, instances: int = 1
) -> dict[str, Any]:
    """All three measurements on one database, served by ``instances`` gateway processes."""
    token = fresh_database(db_url)
    procs, urls = start_instances(manifest, db_url, instances, work, name.replace(" ", ""))
    try:
        if args.rx:
            return rx.run(urls[0], manifest, db_url, args.rx, lambda: cpu_seconds(procs[0].pid))
        return measure(name, urls, procs, token, manifest, args)
    finally:
        stop_all(procs)


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
        return measure("floor", [f"http://127.0.0.1:{port}"], [proc], "-", manifest, args, anchor=False)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def profiled(out: Path | None, name: str, procs: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """With ``out`` (``--profile``): py-spy samples every gateway process while the block runs, the thread
    holding the GIL only (the Python cost, which the instances' processes share out; SM2 and SQLite's own
    work run without it), one collapsed-stacks file each (``<out>/<name>-<k>.txt``; flamegraph tools and
    speedscope read it); its own CPU counts against the box, not the gateway (a separate process)."""
    if out is None:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    exe = str(Path(sys.executable).with_name("py-spy"))
    spies = []
    for k, proc in enumerate(procs):
        file = str(out / f"{name.replace(' ', '')}-{k}.txt")
        cmd = [exe, "record", "--pid", str(proc.pid), "--gil", "--threads", "--rate", "200"]
        quiet = subprocess.DEVNULL
        spies.append(subprocess.Popen([*cmd, "--format", "raw", "-o", file], stdout=quiet, stderr=quiet))
    time.sleep(1)  # py-spy attaches
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(timeout=60)


def measure(
    name: str,
    urls: list[str],
    procs: list[subprocess.Popen[bytes]],
    token: str,
    manifest: Manifest,
    args: argparse.Namespace,
    *,
    anchor: bool = True,
) -> dict[str, Any]:
    """Single-record, bulk and (``anchor``) time-to-anchored figures of the servers at ``urls`` (instances
    of one gateway: the client's connections spread over them)."""
    warm, singles, bulks, samples = presign(manifest, args, len(urls))
    single_lanes, bulk_lanes, size = lanes(args, len(urls))
    load_before = os.getloadavg()[0]
    for k, url in enumerate(urls):  # every instance reads each station's registration once
        bulk(url, token, warm[k * fleet.STATIONS : (k + 1) * fleet.STATIONS], WARM_BULK, 2)
    note(f"{name}: stations warmed up; single-record submissions")

    # The servers' own CPU per request / record (workers included, every instance): steadier than rates.
    def server_cpu() -> float:
        return float(sum(cpu_seconds(proc.pid) for proc in procs))

    c0 = server_cpu()
    with profiled(args.profile, f"{name}-single", procs):
        s = single(urls, token, singles, single_lanes)
    c1 = server_cpu()
    s["cpu_ms"] = (c1 - c0) / args.single * 1000
    note(f"{name}: {s['rate']:.0f} req/s; bulk submissions")
    c1 = server_cpu()
    with profiled(args.profile, f"{name}-bulk", procs):
        b = bulk(urls, token, bulks, size, bulk_lanes)
    bulk_cpu = (server_cpu() - c1) / args.records * 1000
    a = []
    if anchor:
        note(f"{name}: {b['rate']:.0f} records/s; time to anchored")
        a = time_to_anchor(urls[0], token, samples)
    return {
        "single": s,
        "bulk": b["rate"],
        "bulk_cpu_ms": bulk_cpu,
        "bulk_client_ms": b["client_cpu"] / args.records * 1000,
        "anchor": a,
        "load": (load_before, os.getloadavg()[0]),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engine", choices=("anvil", "embedded"), default="anvil")
    p.add_argument("--single", type=int, default=2000, help="single-record submissions")
    p.add_argument("--records", type=int, default=10000, help="records submitted in bulk")
    p.add_argument("--bulk", type=int, default=500, help="records per bulk request")
    p.add_argument("--concurrency", type=int, default=8, help="single-record connections")
    p.add_argument(
        "--bulk-concurrency", type=int, default=0, help="bulk connections (default: two per instance)"
    )
    p.add_argument(
        "--instances",
        type=int,
        nargs="+",
        default=[1],
        metavar="N",
        help="gateway processes per database (SQLite: the owner of the workers + N-1 API-only); several "
        "counts (e.g. 1 2 3) are each measured in the same run",
    )
    p.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    p.add_argument(
        "--profile", type=Path, help="py-spy the gateway processes in the single and bulk phases, into DIR"
    )
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
    if any(k < 1 for k in args.instances):
        p.error("--instances: at least 1")
    if args.no_sqlite and not args.pg:
        p.error("--no-sqlite needs --pg (or PROV_TEST_PG_URL)")
    print(f"uptime: {uptime()}", flush=True)

    ref = openssl_speed(3)
    backend, verify = sm2_verify_rate()
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
        dbs = [] if args.no_sqlite else [("sqlite", f"sqlite:///{work / 'gateway-{k}.db'}")]
        if args.pg:
            dbs.append(("postgresql", args.pg))
        results = {}
        for name, url in dbs:
            for k in args.instances:
                label = f"{name} x{k}"
                own = own_log(manifest, engine, label.replace(" ", ""))
                results[label] = run_one(label, own, url.replace("{k}", str(k)), args, work, k)
        if args.floor and not args.rx:
            results["floor"] = run_floor(manifest, args, work)
    finally:
        engine.stop()
    if args.rx:
        rx.report(results)
        return 0

    print(
        f"engine {engine.name}; reference: openssl speed sm2 verify {ref.get('sm2 verify', 0.0):,.0f}/s,"
        f" {backend} (in use) {verify:,.0f}/s per core; SM2 bound on two cores {2 * verify:,.0f} records/s"
    )
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
        "client ms/req",
        "client ms/rec",
        "load 1m",
    )
    widths = (-14, 12, 7, 7, 11, 8, 15, 6, 11, 11, 14, 14, 10)
    print(" ".join(f"{h:{'<' if w < 0 else '>'}{abs(w)}}" for h, w in zip(head, widths, strict=True)))
    nan = float("nan")
    for name, r in results.items():
        s, a = r["single"], r["anchor"]
        ratio = r["bulk"] / (2 * verify) if verify else float("nan")
        loads = "{:.1f}-{:.1f}".format(*r["load"])
        print(
            f"{name:<14} {s['rate']:>12,.0f} {s['p50']:>7.1f} {s['p99']:>7.1f} {r['bulk']:>11,.0f}"
            f" {ratio:>8.2f} {statistics.median(a) if a else nan:>15.2f} {max(a, default=nan):>6.2f}"
            f" {s['cpu_ms']:>11.2f} {r['bulk_cpu_ms']:>11.3f}"
            f" {s['client_cpu'] / args.single * 1000:>14.3f} {r['bulk_client_ms']:>14.3f} {loads:>10}"
        )
    print(
        f"targets (issue #20, SQLite): single >= {TARGET_SINGLE:,.0f} req/s with p99 < {TARGET_P99:.0f} ms;"
        f" bulk >= {TARGET_BULK:,.0f} records/s; anchored within 2 s"
    )
    for name, r in results.items():
        s = r["single"]
        ok_single = s["rate"] >= TARGET_SINGLE and s["p99"] < TARGET_P99
        print(
            f"  {name:<14} single {'met' if ok_single else 'MISSED':<6}  bulk"
            f" {'met' if r['bulk'] >= TARGET_BULK else 'MISSED'}"
        )
    print("cpu: the gateway processes' (every instance, workers included); client: this process's own")
    print(f"uptime: {uptime()}")
    if args.floor:
        print("floor: bench/floor_app.py, the least a submission does on this stack (parse, verify, insert)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
