"""The cost curve of one gateway grown by bulk submissions (issue 20): what a record costs at 1 M, 5 M, 10 M.

Starts a chain (anvil), deploys the network, runs the gateway as its own process (``python -m gateway
serve``) on SQLite and, with ``--pg URL``, on PostgreSQL (up to ``--pg-records``), and grows it by bulk
submissions of pre-signed ``env.reading`` records (HJ 212 packets, signed before the clock starts,
``--every`` records at a time). The readings are those of a fleet of 1,000 stations station-1 operates
(``bench/fleet.py`` says why: ten million readings of one station within the 72 h a reading may be
backdated do not exist, and one station's readings are serialised through its state); no bulk request
names a station twice and the two connections name disjoint stations, so each bulk is one write
transaction. Every record must be accepted: refusals are counted and fail the run. After each step, on the
gateway at rest:

- ingest rate of the step (records/s, bulk requests of 500 over two connections);
- trace of the subject (the fleet's first station: 1/1000 of the records, spread over the whole log, 10,000
  at 10 M): its history page (100 records) at a random cursor, full from 100,000 records on, p50/p99 (ms);
- inclusion proof: the bundle without payload (record row, proof from the stored tree, signed checkpoint),
  and the full bundle (payload decrypted), at random records, p50/p99 (ms);
- consistency proof from a random earlier size to the current one (ms, p50);
- checkpoint lag and anchoring lag: from the step's last 200 to the checkpoint / the chain covering it (s);
- database bytes per record, the payload table excluded (SQLite ``dbstat``, PostgreSQL relation sizes);
- the gateway's resident memory (MB, with its child processes).

Writes the series as CSV and a PNG plot (matplotlib) beside each other (``--out``) and prints it. Targets:
ingest rate at 10 M within 20 % of the rate at 1 M; trace p99 < 20 ms and proof p99 < 5 ms at 10 M. A 10 M
run takes hours; ``--records 200000 --every 50000`` shows the curve's start in minutes (``--records 0
--pg URL``: PostgreSQL alone). The CSV and plot are rewritten after every step. Usage:
    python bench/scale.py [--records 10000000] [--every 1000000] [--pg URL] [--pg-records 2000000]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the packages and tests.kit from a checkout; bench/ modules follow

import fleet  # noqa: E402  (bench/fleet.py)
import load  # noqa: E402  (bench/load.py)

from bench.gateway import cpu_seconds, fresh_database, note, own_log, start_gateway  # noqa: E402
from devnet.deploy import deploy_network  # noqa: E402
from gateway.core.db import Database  # noqa: E402
from provenance.crypto import SM2PrivateKey  # noqa: E402
from provenance.manifest import Manifest  # noqa: E402
from provenance.records import Envelope  # noqa: E402
from tests.kit.gateway import STATION_1_MN, sign_submission  # noqa: E402

BULK = 500
LANES = 2  # connections ingesting
SAMPLES = 200  # requests per latency figure
COLUMNS = (
    "records",
    "ingest_rec_s",
    "trace_p50_ms",
    "trace_p99_ms",
    "proof_p50_ms",
    "proof_p99_ms",
    "bundle_p50_ms",
    "bundle_p99_ms",
    "consistency_ms",
    "checkpoint_lag_s",
    "anchor_lag_s",
    "db_bytes_per_record",
    "rss_mb",
    "gateway_cpu_ms_per_record",
)
SUBJECT = f"station:{STATION_1_MN}"

_key: SM2PrivateKey | None = None
_layout: fleet.Layout | None = None


def _init(pem: bytes, ticks: int, now: datetime) -> None:
    global _key, _layout
    _key = SM2PrivateKey.from_pem(pem)
    _layout = fleet.Layout(ticks, now=now)


def _sign(span: tuple[int, int]) -> list[bytes]:
    """Bulk request bodies for readings [start, end), encoded; pickled back small."""
    start, end = span
    assert _key is not None and _layout is not None
    packets = _layout.packets(start, end, bulk=BULK, lanes=LANES)
    bodies = [sign_submission("station-1", _key, "env.reading", p) for p in packets]
    return [load.body({"records": bodies[i : i + BULK]}) for i in range(0, len(bodies), BULK)]


def _record_id(body: bytes, k: int) -> str:
    import json

    return str(Envelope.from_dict(json.loads(body)["records"][k]["record"]).digest)


def sign_step(pool: ProcessPoolExecutor, start: int, end: int) -> list[bytes]:
    spans = [(a, min(a + 10 * BULK, end)) for a in range(start, end, 10 * BULK)]
    return [b for part in pool.map(_sign, spans) for b in part]


def get(path: str, token: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {token}\r\n\r\n".encode()


def latency(url: str, paths: list[str], token: str) -> tuple[float, float]:
    r = load.run(url, [get(p, token) for p in paths], 1, load.expect(200))
    return r["p50"], r["p99"]


def wait_for(url: str, field: str, size: int, since: float, timeout: float = 600) -> float:
    """Seconds from ``since`` until /healthz's ``field`` reaches ``size`` (NaN on timeout)."""
    while time.perf_counter() - since < timeout:
        if httpx.get(f"{url}/healthz", timeout=10).json()[field] >= size:
            return time.perf_counter() - since
        time.sleep(0.05)
    return float("nan")


def db_bytes(db_url: str) -> int:
    """Bytes of every table and index but the payloads'."""
    if db_url.startswith("sqlite:///"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as c:
            rows = c.execute("SELECT name, tbl_name FROM sqlite_schema WHERE name IS NOT NULL").fetchall()
            owner = {name: tbl for name, tbl in rows}
            sizes = c.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        return sum(int(s) for name, s in sizes if owner.get(name) != "record_payload")
    db = Database(db_url)
    try:
        from sqlalchemy import text

        with db.engine.connect() as c:
            q = (
                "SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON "
                "n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' AND "
                "c.relname <> 'record_payload'"
            )
            return int(c.execute(text(q)).scalar() or 0)
    finally:
        db.dispose()


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (MB)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total / 1024


def grow(
    name: str,
    manifest: Manifest,
    db_url: str,
    total: int,
    every: int,
    work: Path,
    series: dict[str, list[dict[str, Any]]],
    out: Path,
) -> None:
    """Grow one gateway to ``total`` records, measuring after each ``every`` into ``series[name]``.

    The CSV and plot are rewritten after every step: a run of hours that stops early keeps what it measured.
    """
    token = fresh_database(db_url)
    port = 17000 + (os.getpid() % 1000)
    url = f"http://127.0.0.1:{port}"
    proc = start_gateway(manifest, db_url, port, work / f"gateway-{name}.log")
    rows = series.setdefault(name, [])
    ids: list[str] = []  # a sample of record ids, for proof and bundle fetches
    rng = random.Random(20)  # sampling, not secrets
    pem = manifest.sm2_key("station-1").to_pem()
    # The readings' dates: the series fits the 72 h a reading may be backdated, from this gateway's start.
    ticks = fleet.Layout.ticks_for(total, bulk=BULK, lanes=LANES)
    init = (pem, ticks, datetime.now(UTC))
    try:
        with ProcessPoolExecutor(2, initializer=_init, initargs=init) as pool:
            done = 0
            while done < total:
                step = min(every, total - done)
                note(f"{name}: signing records {done:,} to {done + step:,}")
                requests = sign_step(pool, done, done + step)
                ids += [
                    _record_id(requests[i], 0) for i in range(0, len(requests), max(1, len(requests) // 50))
                ]
                note(f"{name}: ingesting")
                auth = {"authorization": f"Bearer {token}"}
                wire = [load.wrap("/api/v1/records:bulk", b, auth) for b in requests]
                del requests
                c0 = cpu_seconds(proc.pid)
                tally = load.Tally(200, bulk=True)
                r = load.run(url, wire, LANES, tally)
                tally.require(step)
                end = time.perf_counter()
                done += step
                row: dict[str, Any] = {"records": done, "ingest_rec_s": step / r["seconds"]}
                row["gateway_cpu_ms_per_record"] = (cpu_seconds(proc.pid) - c0) / step * 1000
                row["checkpoint_lag_s"] = wait_for(url, "checkpoint_size", done, end)
                row["anchor_lag_s"] = wait_for(url, "anchored_size", done, end)
                note(f"{name}: {done:,} records; reads")
                # A cursor with a full page of the subject after it (from 100,000 records on: the subject
                # has one record in every STATIONS).
                cursors = [rng.randrange(max(1, done - 100 * fleet.STATIONS)) for _ in range(SAMPLES)]
                row["trace_p50_ms"], row["trace_p99_ms"] = latency(
                    url, [f"/api/v1/subjects/{SUBJECT}/records?limit=100&after={c}" for c in cursors], token
                )
                picks = [rng.choice(ids) for _ in range(SAMPLES)]
                row["proof_p50_ms"], row["proof_p99_ms"] = latency(
                    url, [f"/api/v1/records/{i}/bundle?payload=false" for i in picks], token
                )
                row["bundle_p50_ms"], row["bundle_p99_ms"] = latency(
                    url, [f"/api/v1/records/{i}/bundle" for i in picks], token
                )
                firsts = [rng.randrange(1, done) for _ in range(SAMPLES // 4)]
                row["consistency_ms"] = latency(
                    url, [f"/api/v1/proofs/consistency?first={f}&second={done}" for f in firsts], token
                )[0]
                row["db_bytes_per_record"] = db_bytes(db_url) / done
                row["rss_mb"] = rss_mb(proc.pid)
                rows.append(row)
                print_row(name, row)
                write(series, out)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def print_row(name: str, row: dict[str, Any]) -> None:
    print(f"{name:<10} " + " ".join(f"{c}={row[c]:,.1f}" for c in COLUMNS), flush=True)


def write(series: dict[str, list[dict[str, Any]]], out: Path) -> None:
    """``out``.csv (one row per database and step) and ``out``.png (one panel per figure)."""
    with out.with_suffix(".csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("database", *COLUMNS))
        for name, rows in series.items():
            for row in rows:
                w.writerow((name, *(f"{row[c]:.3f}" for c in COLUMNS)))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("ingest (records/s)", ("ingest_rec_s",)),
        ("trace (ms)", ("trace_p50_ms", "trace_p99_ms")),
        ("proof / bundle (ms)", ("proof_p50_ms", "proof_p99_ms", "bundle_p50_ms", "bundle_p99_ms")),
        ("consistency proof (ms)", ("consistency_ms",)),
        ("lag (s)", ("checkpoint_lag_s", "anchor_lag_s")),
        ("database bytes / record", ("db_bytes_per_record",)),
        ("gateway RSS (MB)", ("rss_mb",)),
        ("gateway CPU ms / record", ("gateway_cpu_ms_per_record",)),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(18, 8))
    for ax, (title, cols) in zip(axes.flat, panels, strict=True):
        for name, rows in series.items():
            xs = [r["records"] / 1e6 for r in rows]
            for c in cols:
                ax.plot(xs, [r[c] for r in rows], marker="o", label=f"{name} {c}")
        ax.set_title(title)
        ax.set_xlabel("records (millions)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=100)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=10_000_000)
    p.add_argument("--every", type=int, default=1_000_000)
    p.add_argument("--pg", default=None, help="PostgreSQL URL: the same series there too")
    p.add_argument("--pg-records", type=int, default=2_000_000)
    p.add_argument("--out", type=Path, default=Path("scale"), help="CSV and PNG path, without suffix")
    args = p.parse_args()
    from devnet.anvil import start_anvil

    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    engine = start_anvil()
    note(f"work in {work}; load average {os.getloadavg()[0]:.1f}")
    try:
        manifest = deploy_network(engine, fleet.fleet_orgs(), out_dir=work / "network")
        series: dict[str, list[dict[str, Any]]] = {}
        if args.records:
            sqlite_url = f"sqlite:///{work / 'gateway.db'}"
            sqlite_manifest = own_log(manifest, engine, "sqlite")
            grow("sqlite", sqlite_manifest, sqlite_url, args.records, args.every, work, series, args.out)
        if args.pg:
            pg_manifest = own_log(manifest, engine, "postgresql")
            grow("postgresql", pg_manifest, args.pg, args.pg_records, args.every, work, series, args.out)
    finally:
        engine.stop()
        shutil.rmtree(work, ignore_errors=True)  # gigabytes at ten million records
    for name, rows in series.items():
        first, last = rows[0], rows[-1]
        ratio = last["ingest_rec_s"] / first["ingest_rec_s"]
        print(
            f"{name}: ingest at {last['records']:,} is {ratio:.0%} of the rate at {first['records']:,} "
            f"(target at 10 M: >= 80 % of 1 M); trace p99 {last['trace_p99_ms']:.1f} ms (target < 20), "
            f"proof p99 {last['proof_p99_ms']:.1f} ms (target < 5)"
        )
    csv_path, png = args.out.with_suffix(".csv"), args.out.with_suffix(".png")
    print(f"series: {csv_path} and {png}; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
