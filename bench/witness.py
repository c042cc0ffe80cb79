"""Witnessing throughput: one witness's cosignatures per second, and the monitor's entries checked per second.

Both are SM2-bound, so the SM2 verify (and sign) speed is measured in the same run and the ratios printed:
- witness: ``add-checkpoint`` of a growing log, each checkpoint extending the last (one log's checkpoints are
  cosigned one after the other: the check-and-store is atomic per log). In process (parse, verify the log's
  signature, the consistency proof, the fsync'd SQLite commit, the SM2 cosignature) and over HTTP against a
  ``python -m witness serve`` process, as the gateway submits.
- monitor: ``provenance monitor``'s step over N distinct SM2-signed records served as tiles from memory
  (tile and bundle checks, the tree recomputed, every entry's signature verified on --workers threads).

``--devnet GATEWAY`` instead measures, on a running devnet (``make run``), how long after its signing each
checkpoint reached the witness quorum, while records are submitted for --seconds. Usage:
    python bench/witness.py [--records 20000] [--checkpoints 300] [--workers 2]
    python bench/witness.py --devnet http://127.0.0.1:8000 [--dir .devnet] [--seconds 60] [--rate 20]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

from provenance.crypto import SM2PrivateKey
from provenance.log.checkpoint import Checkpoint, NoteVerifier, sign_checkpoint
from provenance.log.merkle import MerkleLog
from provenance.log.tiles import TILE_HEIGHT, TILE_WIDTH, Tile, encode_bundle
from provenance.log.tlog_witness import encode_add_checkpoint
from provenance.orgs import OrgEntry, OrgKey
from provenance.records import Envelope, sign_envelope
from provenance.verification.monitor import Monitor
from provenance.verification.trust import LogKey, TrustStore

ORIGIN, LOG_NAME = "bench.shancheng/log", "bench-log"
LOG_KEY = SM2PrivateKey.generate()
ORG_KEY = SM2PrivateKey.generate()
REPO = Path(__file__).resolve().parent.parent


def sm2_rates(seconds: float = 2.0) -> tuple[float, float]:
    """SM2 signs and verifies per second on one thread (distinct messages, one key)."""
    pub = ORG_KEY.public_key()
    msgs = [secrets.token_bytes(200) for _ in range(256)]
    sigs = [ORG_KEY.sign(m) for m in msgs]
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for m, s in zip(msgs, sigs, strict=True):
            pub.verify(m, s)
        n += len(msgs)
    verify = n / (time.perf_counter() - t0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds / 2:
        for m in msgs[:64]:
            ORG_KEY.sign(m)
        n += 64
    return n / (time.perf_counter() - t0), verify


# --- witness -------------------------------------------------------------------------------------------


def _growing_log(checkpoints: int, step: int) -> tuple[MerkleLog, list[tuple[int, str]]]:
    log = MerkleLog.in_memory()
    notes = []
    for c in range(checkpoints):
        for i in range(step):
            log.append(f"entry {c * step + i}".encode())
        cp = Checkpoint(origin=ORIGIN, size=log.size, root=log.root())
        notes.append((log.size, sign_checkpoint(cp, LOG_NAME, LOG_KEY)))
    return log, notes


def _requests(log: MerkleLog, notes: list[tuple[int, str]]) -> list[bytes]:
    out, old = [], 0
    for size, note in notes:
        out.append(encode_add_checkpoint(old, log.consistency_proof(old, size), note))
        old = size
    return out


def bench_witness_in_process(checkpoints: int, folder: Path) -> float:
    # Run as `python bench/witness.py`, this file's folder comes first on sys.path, where this module
    # shadows the witness package it measures.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.modules.pop("witness", None)
    from witness.service import Witness
    from witness.state import WitnessState

    log, notes = _growing_log(checkpoints, 37)
    bodies = _requests(log, notes)
    pinned = {ORIGIN: [NoteVerifier(name=LOG_NAME, public_key=LOG_KEY.public_key())]}
    w = Witness(
        name="bench.shancheng/witness",
        key=SM2PrivateKey.generate(),
        logs=pinned,
        state=WitnessState(folder / "inproc.db"),
    )
    t0 = time.perf_counter()
    for body in bodies:
        w.add_checkpoint(body)
    rate = len(bodies) / (time.perf_counter() - t0)
    w.state.close()
    return rate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bench_witness_http(checkpoints: int, folder: Path) -> float:
    log, notes = _growing_log(checkpoints, 37)
    bodies = _requests(log, notes)
    key_file, trust_file = folder / "w.pem", folder / "trust.json"
    key_file.write_bytes(SM2PrivateKey.generate().to_pem())
    trust = {
        "version": 1,
        "logs": [{"name": LOG_NAME, "origin": ORIGIN, "public_key": LOG_KEY.public_key_pem().decode()}],
    }
    trust_file.write_text(json.dumps(trust))
    port = _free_port()
    env = {
        **os.environ,
        "PROV_WITNESS_NAME": "bench.shancheng/witness",
        "PROV_WITNESS_KEY_FILE": str(key_file),
        "PROV_WITNESS_TRUST_FILE": str(trust_file),
        "PROV_WITNESS_STATE_FILE": str(folder / "http.db"),
        "PROV_WITNESS_PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "witness", "serve"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=10) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    http.get(f"{url}/healthz")
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            t0 = time.perf_counter()
            for body in bodies:
                r = http.post(f"{url}/add-checkpoint", content=body)
                assert r.status_code == 200, r.text
            return len(bodies) / (time.perf_counter() - t0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- monitor -------------------------------------------------------------------------------------------


def _sign(i: int) -> bytes:
    env = Envelope.create(
        kind="rx.issue",
        subject=f"rx:rx-{i}",
        org="hospital-1",
        payload={"resourceType": "MedicationRequest", "id": f"rx-{i}"},
    )
    return sign_envelope(env, ORG_KEY).leaf_entry()


class MemoryTiles:
    """The tiles of an in-memory log: level-L hashes are the stored subtree nodes of height 8L."""

    def __init__(self, entries: list[bytes]) -> None:
        self.entries = entries
        self.log = MerkleLog.in_memory()
        for e in entries:
            self.log.append(e)
        cp = Checkpoint(origin=ORIGIN, size=self.log.size, root=self.log.root())
        self.note = sign_checkpoint(cp, LOG_NAME, LOG_KEY)

    def fetch(self, path: str) -> bytes:
        if path == "checkpoint":
            return self.note.encode()
        t = Tile.parse(path)
        first = t.n * TILE_WIDTH
        if t.entries:
            return encode_bundle(self.entries[first : first + t.w])
        storage = self.log._storage  # the nodes MerkleLog stored as their subtrees closed
        if t.level == 0:
            return b"".join(storage.leaf_hash(first + i) for i in range(t.w))
        return b"".join(storage.get_node(TILE_HEIGHT * t.level, first + i) or b"" for i in range(t.w))


def bench_monitor(records: int, workers: int) -> float:
    with ProcessPoolExecutor(os.cpu_count() or 2) as pool:
        entries = list(pool.map(_sign, range(records), chunksize=500))
    served = MemoryTiles(entries)
    key = ORG_KEY.public_key()
    trust = TrustStore(
        orgs={
            "hospital-1": OrgEntry(
                org_id="hospital-1",
                role="hospital",
                keys=(OrgKey(public_key=key, pem=key.to_pem().decode()),),
            )
        },
        logs=[LogKey(name=LOG_NAME, public_key=LOG_KEY.public_key(), pem="", origin=ORIGIN)],
    )
    mon = Monitor(fetch=served.fetch, trust=trust, workers=workers)
    t0 = time.perf_counter()
    report = mon.step()
    elapsed = time.perf_counter() - t0
    assert report.ok and report.entries_checked == records, report.problems[:3]
    return records / elapsed


# --- devnet: time to quorum ----------------------------------------------------------------------------


def _reading(i: int) -> str:
    """A distinct valid HJ 212 packet of the devnet's station (the golden one, a fresh QN and value)."""
    import dataclasses

    from adapters import hj212

    golden = REPO / "tests" / "assets" / "hj212" / "air-realtime-2011.txt"
    base = hj212.parse_packet(golden.read_bytes())
    pollutants = {code: dict(f) for code, f in base.pollutants.items()}
    pollutants["a21026"]["Rtd"] = f"{10 + i % 90}.{i % 10}"
    return dataclasses.replace(base, qn=f"2026112509{i:07d}", pollutants=pollutants).encode()


def devnet_quorum(gateway: str, root: Path, seconds: float, rate: float) -> None:
    from adapters import adapt
    from provenance.client import Client
    from provenance.timestamps import format_timestamp

    token = (root / "tokens" / "station-1.token").read_text().strip()
    manifest = json.loads((root / "manifest.json").read_text())
    quorum = int(manifest.get("witness_quorum", 0))
    if not quorum:
        raise SystemExit(
            "the devnet's manifest names no witnesses (an older devnet? `provenance devnet reset`)"
        )
    key = SM2PrivateKey.from_pem((root / "keys" / "station-1.sm2.pem").read_bytes())
    sizes: set[int] = set()
    sent = 0
    with Client(base_url=gateway, token=token) as client, httpx.Client(base_url=gateway, timeout=10) as http:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            packet = _reading(sent)
            adapted = adapt("env.reading", packet.encode("ascii"))
            env = Envelope(
                kind="env.reading",  # type: ignore[arg-type]
                subject=adapted.subject,
                org="station-1",  # type: ignore[arg-type]
                timestamp=format_timestamp(datetime.now(UTC)),
                nonce=secrets.token_hex(16),
                prev=None,
                payload_digest=adapted.digest,
            )
            try:
                client.submit(sign_envelope(env, key), packet)
                sent += 1
            except Exception as exc:  # a refusal is reported, the measurement goes on
                print(f"submission refused: {exc}", file=sys.stderr)
            r = http.get("/api/v1/checkpoints/latest")
            if r.status_code == 200:
                sizes.add(r.json()["size"])
            time.sleep(max(0.0, 1 / rate))
        time.sleep(3)  # the last checkpoints' cosignatures
        latencies, missing = [], []
        for size in sorted(sizes):
            cp = http.get(f"/api/v1/checkpoints/{size}").json()
            got = sorted(c["received_at"] for c in cp["cosignatures"])
            if len(got) < quorum:
                missing.append(size)
            else:
                latencies.append(got[quorum - 1] - cp["created_at"])
    print(
        f"devnet {gateway}: {sent} records in {seconds:.0f} s, {len(sizes)} checkpoints seen, quorum {quorum}"
    )
    if latencies:
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
        print(
            f"  signing -> {quorum} cosignatures stored: "
            f"median {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {p(0.95) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms; "
            f"within 2 s: {sum(x <= 2 for x in latencies)} of {len(latencies)}"
        )
    if missing:
        print(f"  without quorum: {len(missing)} checkpoints ({missing[:10]}…)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--checkpoints", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--devnet", metavar="GATEWAY")
    ap.add_argument("--dir", type=Path, default=REPO / ".devnet")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--rate", type=float, default=20, help="records per second submitted (--devnet)")
    args = ap.parse_args()
    if args.devnet:
        devnet_quorum(args.devnet, args.dir, args.seconds, args.rate)
        return
    sign, verify = sm2_rates()
    print(f"SM2 (this run, one thread): {sign:,.0f} signs/s, {verify:,.0f} verifies/s")
    with tempfile.TemporaryDirectory() as tmp:
        inproc = bench_witness_in_process(args.checkpoints, Path(tmp))
        http = bench_witness_http(args.checkpoints, Path(tmp))
    # Each cosignature costs one SM2 verify (the log's signature) and one SM2 sign.
    bound = 1 / (1 / sign + 1 / verify)
    print(
        f"witness: {inproc:,.0f} cosignatures/s in process, {http:,.0f} over HTTP (one log, sequential); "
        f"SM2 bound (1 verify + 1 sign) {bound:,.0f}/s: {inproc / bound:.0%} / {http / bound:.0%} of it"
    )
    rate = bench_monitor(args.records, args.workers)
    print(
        f"monitor: {rate:,.0f} entries checked/s over {args.records:,} entries ({args.workers} threads); "
        f"{rate / verify:.2f}x the SM2 verify speed of one thread"
    )


if __name__ == "__main__":
    main()
