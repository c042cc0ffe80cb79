"""Sensor batches: readings/s signed and verified through ``env.batch``, and ingested end to end through the
gateway (accepted → logged → anchored), beside the single-reading path measured in the same run.

In process (no server), for one batch of ``--batch`` readings (HJ 212 packets):
- **normalise**: the readings one by one through the ``env.reading`` adapter (the HJ 212 codec: what a single
  reading costs, and what the batch path cost per reading before its one-pass form);
- **adapt batch**: the whole submission through the ``env.batch`` adapter (what the gateway runs on a batch:
  its readings in one pass, ``adapters/env/fastpath.py``, the root, every check);
- **sign**: from the readings' canonical bytes, the SM3 Merkle root, the head and one SM2 signature;
- **verify batch**: the root recomputed from the readings and the one signature checked;
- **verify reading**: single readings' evidence bundles (from the gateway run), offline with pinned keys.

Through the gateway (its own process, anvil engine; SQLite and, with ``--pg``/``PROV_TEST_PG_URL``,
PostgreSQL): ``--batches`` batches, pre-signed before the clock starts (a station signs on its own hardware),
submitted over ``--connections`` (a station each, its batches one after the other), then the time until
every batch is logged, anchored in ProvenanceLog and its root in EnvMonitoring (``anchorBatch`` confirmed);
beside it the same number of single ``env.reading`` records in bulk requests of 500 (at most ``--singles``),
until anchored.

With ``--instances 1 2 3`` (PostgreSQL only) the PostgreSQL gateway is measured as that many processes on the
one database in turn, in the same run (same KEK file and settings; the first started owns the background
workers, every one serves the API: docs/design/gateway.md, Instances); station i's connection goes to
instance i % N, its batches in order there, and the CPU per reading is summed over every instance.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the packages and tests.kit from a checkout (bench/ follows: load)

import load  # noqa: E402  (bench/load.py)

from adapters import adapt  # noqa: E402
from adapters.env.batch import batch_root  # noqa: E402
from devnet.deploy import deploy_network  # noqa: E402
from provenance.log.bundle import EvidenceBundle  # noqa: E402
from provenance.manifest import Manifest  # noqa: E402
from provenance.records import Envelope, canonical_bytes, sign_envelope  # noqa: E402
from provenance.timestamps import format_timestamp  # noqa: E402
from provenance.verification.trust import TrustStore  # noqa: E402
from provenance.verification.verify import Verifier  # noqa: E402
from tests.kit.gateway import (  # noqa: E402
    STATION_1_MN,
    env_batch,
    hj212_series,
    iso_second,
    register_station,
    sign_submission,
    trust_path,
)


def _bench_gateway() -> Any:
    """bench/gateway.py (its module name would shadow the gateway package): the process helpers."""
    spec = importlib.util.spec_from_file_location("bench_gateway", REPO / "bench" / "gateway.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bg = _bench_gateway()
note = bg.note


def in_process(manifest: Manifest, n: int) -> dict[str, float]:
    """Readings/s normalised, signed (root + head + one SM2 signature) and batch-verified."""
    start = datetime.now(UTC) - timedelta(days=30)
    packets = hj212_series(STATION_1_MN, start, n)
    t = time.process_time()
    leaves = [adapt("env.reading", p.encode()).canonical for p in packets]
    normalise = n / (time.process_time() - t)
    body = json.dumps(env_batch(packets, STATION_1_MN, start, start + timedelta(seconds=n))).encode()
    t = time.process_time()
    adapt("env.batch", body)
    batch = n / (time.process_time() - t)
    key = manifest.sm2_key("station-1")
    t = time.perf_counter()
    head = {
        "mn": STATION_1_MN,
        "period_start": iso_second(start),
        "period_end": iso_second(start + timedelta(seconds=n)),
        "count": n,
        "root": batch_root(leaves).hex(),
    }
    env = Envelope.create(
        kind="env.batch",
        subject=f"station:{STATION_1_MN}",
        org="station-1",
        payload=head,
        timestamp=format_timestamp(datetime.now(UTC)),
    )
    signed = sign_envelope(env, key)
    sign = n / (time.perf_counter() - t)
    pub = key.public_key()
    t = time.perf_counter()
    assert batch_root(leaves).hex() == head["root"]
    assert canonical_bytes(head) and signed.envelope.payload_digest == env.payload_digest
    pub.verify(signed.envelope.canonical(), signed.signature)
    verify = n / (time.perf_counter() - t)
    return {"normalise": normalise, "batch": batch, "sign": sign, "verify_batch": verify}


def _wait_done(
    http: httpx.Client, ids: list[str], *, chain: bool, subjects: Sequence[str] = (), timeout: float = 600
) -> None:
    """Until every record is anchored (and, with ``chain``, its contract call confirmed): each record's own
    status, read from its subjects' histories (one request a subject, every 10 ms) when ``subjects`` are
    given, else one request a record (the time the client spends asking is not the gateway's tail)."""
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        if subjects:
            recs = [r for subject in subjects for r in _history(http, subject) if r["id"] in pending]
        else:
            recs = [http.get(f"/api/v1/records/{rid}").json() for rid in pending]
        for rec in recs:
            if rec["status"] == "anchored" and (not chain or rec["chain_status"] == "confirmed"):
                pending.discard(rec["id"])
            elif chain and rec["chain_status"] == "rejected":
                raise RuntimeError(f"anchorBatch refused for {rec['id']}: {rec['chain_error']}")
        if pending:
            time.sleep(0.01)
    if pending:
        raise RuntimeError(f"{len(pending)} records not done in {timeout} s")


def _history(http: httpx.Client, subject: str) -> list[dict[str, Any]]:
    """Every record of ``subject`` as the API lists them (id, status, chain_status...), all pages."""
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        page = http.get(f"/api/v1/subjects/{subject}/records", params={"limit": 500, "after": after}).json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        after = page["next_cursor"]


def through_gateway(
    name: str,
    manifest: Manifest,
    db_url: str,
    args: argparse.Namespace,
    work: Path,
    tree: Path = REPO,
    instances: int = 1,
) -> dict[str, Any]:
    token = bg.fresh_database(db_url)
    # ``instances`` gateway processes on the one database (PostgreSQL), the same KEK and settings: the
    # first started owns the workers (docs/design/gateway.md, Instances), every one serves the API.
    procs, urls = bg.start_instances(manifest, db_url, instances, work, name.replace(" ", ""), tree)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        url = urls[0]  # the queries (every instance reads the one database) and the single readings
        key = manifest.sm2_key("station-1")
        n, b = args.batch, args.batches
        # Monitoring points of this run's own (a station's periods only move forward, chain-wide), one per
        # connection (``--connections``: while one batch is checked the next one's body arrives on the
        # other), each station's batches in order on its own, their periods one after the other in the past;
        # connection i (station i) on instance i % instances.
        mns = [register_station(manifest) for _ in range(args.connections)]
        t0 = (datetime.now(UTC) - timedelta(seconds=n * b + 600)).replace(microsecond=0)
        note(f"{name}: signing {b} batches of {n} readings")
        bodies = []
        for i in range(b):  # batch i on connection i % connections (bench/load.py deals them so)
            mn = mns[i % len(mns)]
            start = t0 + timedelta(seconds=i // len(mns) * n)
            payload = env_batch(hj212_series(mn, start, n), mn, start, start + timedelta(seconds=n))
            bodies.append(sign_submission("station-1", key, "env.batch", payload))
        requests = [load.encode("/api/v1/records", body, auth) for body in bodies]
        # Once the gateway has seen the stations' registration (its registry watcher polls): a first batch
        # of one reading of each, before the periods measured.
        first = t0 - timedelta(seconds=10)
        warm_ids = set()
        for i, mn in enumerate(mns):
            warm = sign_submission(
                "station-1", key, "env.batch", env_batch(hj212_series(mn, first, 1), mn, first, t0)
            )
            deadline = time.monotonic() + 30
            own = f"{urls[i % len(urls)]}/api/v1/records"  # the instance the station's batches go to
            while (r := httpx.post(own, json=warm, headers=auth)).status_code != 202:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the gateway never saw the station's registration: {r.text[:200]}")
                time.sleep(0.2)
            warm_ids.add(r.json()["id"])
        note(f"{name}: submitting")

        # The gateway's own CPU seconds too (every instance's, summed): on a shared machine (others' load)
        # wall time says little of what ingestion costs; readings per gateway CPU second does.
        def gateway_cpu() -> float:
            return float(sum(bg.cpu_seconds(proc.pid) for proc in procs))

        cpu = gateway_cpu()
        t = time.perf_counter()
        load.run(urls, requests, len(mns), load.expect(202))
        accepted = n * b / (time.perf_counter() - t)
        accepted_cpu = n * b / (gateway_cpu() - cpu)
        with httpx.Client(base_url=url, headers=auth, timeout=120) as http:
            subjects = [f"station:{mn}" for mn in mns]
            ids = [
                r["id"]
                for subject in subjects
                for r in _history(http, subject)
                if r["kind"] == "env.batch" and r["id"] not in warm_ids
            ]
            assert len(ids) == b, f"{len(ids)} batches listed, {b} submitted"
            _wait_done(http, ids, chain=True, subjects=subjects)
            anchored = n * b / (time.perf_counter() - t)
            anchored_cpu = n * b / (gateway_cpu() - cpu)
            note(f"{name}: {accepted:,.0f} readings/s accepted, {anchored:,.0f}/s anchored; single readings")
            # station-1's own readings, dated within the gateway's backdating bound (72 h) whatever the
            # batches' span, before the next gateway's (each gateway of the run dates them a little later)
            s0 = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
            singles = [
                sign_submission("station-1", key, "env.reading", p)
                for p in hj212_series(STATION_1_MN, s0, min(args.singles, n * b))
            ]
            bulk = [
                load.encode("/api/v1/records:bulk", {"records": singles[i : i + 500]}, auth)
                for i in range(0, len(singles), 500)
            ]
            t = time.perf_counter()
            load.run(url, bulk, 2, load.expect_all_accepted)
            single_accepted = len(singles) / (time.perf_counter() - t)
            last = http.post(
                "/api/v1/records",
                json=sign_submission(
                    "station-1",
                    key,
                    "env.reading",
                    hj212_series(STATION_1_MN, s0 + timedelta(seconds=len(singles)), 1)[0],
                ),
            ).json()["id"]
            _wait_done(http, [last], chain=False)
            single_anchored = len(singles) / (time.perf_counter() - t)
            note(f"{name}: verifying {args.verify} readings' bundles offline")
            picks = [(random.choice(ids), random.randrange(n)) for _ in range(args.verify)]
            docs = [http.get(f"/api/v1/env/batches/{rid}/readings/{i}/bundle").json() for rid, i in picks]
        # The trust file of this run's own ProvenanceLog (bench/gateway.py's own_log wrote it).
        trust = TrustStore.load(trust_path(manifest))
        verifier = Verifier.offline(trust, require_anchor=True)
        t = time.perf_counter()
        for doc in docs:
            verifier.verify(EvidenceBundle.from_dict(doc))
        per_reading = len(docs) / (time.perf_counter() - t)
        return {
            "accepted": accepted,
            "anchored": anchored,
            "accepted_cpu": accepted_cpu,
            "anchored_cpu": anchored_cpu,
            "single_accepted": single_accepted,
            "single_anchored": single_anchored,
            "verify_reading": per_reading,
        }
    finally:
        bg.stop_all(procs)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=10_000, help="readings per batch")
    p.add_argument("--batches", type=int, default=5)
    p.add_argument(
        "--connections",
        type=int,
        help="client connections, a station each (its batches in order); default 2, at least one an instance",
    )
    p.add_argument("--singles", type=int, default=5000, help="single env.reading records, in bulk")
    p.add_argument("--verify", type=int, default=200, help="reading bundles verified offline")
    p.add_argument("--pg", default=os.environ.get("PROV_TEST_PG_URL"), help="PostgreSQL URL (optional)")
    p.add_argument("--no-gateway", action="store_true", help="only the in-process figures")
    p.add_argument(
        "--instances",
        type=int,
        nargs="+",
        default=[1],
        metavar="N",
        help="PostgreSQL only: N gateway processes on the one database (same KEK, settings), the stations'"
        " connections spread over them; several counts (e.g. 1 2 3) are each measured in the same run",
    )
    p.add_argument("--no-sqlite", action="store_true", help="the gateway on PostgreSQL only")
    p.add_argument(
        "--vs-tree",
        type=Path,
        help="another checkout (a baseline): its gateway measured too, in the same run, on each database",
    )
    args = p.parse_args()
    if any(k < 1 for k in args.instances):
        p.error("--instances: at least 1")
    if max(args.instances) > 1 and not args.pg:
        p.error("--instances > 1 needs --pg (or PROV_TEST_PG_URL): SQLite is single-instance")
    if args.no_sqlite and not args.pg:
        p.error("--no-sqlite needs --pg (or PROV_TEST_PG_URL)")
    if args.connections is None:
        args.connections = max(2, *args.instances)
    elif args.connections < max(args.instances):
        p.error("--connections: at least one for each instance")
    work = Path(tempfile.mkdtemp(prefix="bench-sensor-"))
    from devnet.anvil import start_anvil

    engine = start_anvil()
    try:
        manifest = deploy_network(engine, out_dir=work / "network")
        local = in_process(manifest, args.batch)
        results: dict[str, dict[str, Any]] = {}
        if not args.no_gateway:
            dbs = [] if args.no_sqlite else [("sqlite", f"sqlite:///{work / 'gateway.db'}", [1])]
            if args.pg:
                dbs.append(("postgresql", args.pg, args.instances))
            trees = [("", REPO)] + ([(" (vs)", args.vs_tree.resolve())] if args.vs_tree else [])
            for name, url, counts in dbs:
                for i, (suffix, tree) in enumerate(trees):
                    for k in counts:
                        label = name + (f" x{k}" if len(counts) > 1 or k > 1 else "") + suffix
                        if url.startswith("sqlite") and i:
                            url = (
                                f"sqlite:///{work / f'gateway-{i}.db'}"  # its own file (PostgreSQL: emptied)
                            )
                        tag = label.replace(" ", "").replace("(", "-").rstrip(")")
                        own = bg.own_log(manifest, engine, tag)
                        results[label] = through_gateway(label, own, url, args, work, tree, k)
    finally:
        engine.stop()
    print(
        f"in process, one batch of {args.batch:,} readings (readings/s; normalise and adapt per CPU second):"
    )
    print(f"  normalise (env.reading adapter) {local['normalise']:>12,.0f}")
    print(f"  adapt batch (env.batch adapter) {local['batch']:>12,.0f}")
    print(f"  sign (root + head + SM2)        {local['sign']:>12,.0f}")
    print(f"  verify batch (root + SM2)       {local['verify_batch']:>12,.0f}")
    if results:
        print(f"through the gateway, {args.batches} batches of {args.batch:,} (readings/s):")
        head = (
            "database",
            "batch accepted",
            "batch anchored",
            "single accepted",
            "single anchored",
            "verify 1",
        )
        print(" ".join(f"{h:>16}" for h in head))
        for name, r in results.items():
            print(
                f"{name:>16} {r['accepted']:>16,.0f} {r['anchored']:>16,.0f} {r['single_accepted']:>16,.0f}"
                f" {r['single_anchored']:>16,.0f} {r['verify_reading']:>16,.0f}"
            )
        print("verify 1: one reading's bundle verified alone, offline (pinned keys): bundles/s")
        print("batches, readings per second of the gateway processes' CPU (user + system, all instances):")
        for name, r in results.items():
            cpu = f"accepted {r['accepted_cpu']:>10,.0f}   accepted → anchored {r['anchored_cpu']:>10,.0f}"
            print(f"{name:>16} {cpu}")
    if args.vs_tree:
        print(f"(vs): the gateway of {args.vs_tree}, against the same network and client")
    if max(args.instances) > 1:
        print(f"xN: N gateway instances on one database; {args.connections} connections, station i on i % N")
    print("target: >= 100,000 readings/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
