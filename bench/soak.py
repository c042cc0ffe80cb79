"""Soak: a fixed load of signed records for N minutes against a devnet this script starts and owns.

Starts, in a temporary folder, the embedded node (its own process), deploys the contracts and demo
organisations, runs the gateway as its own process (``python -m gateway serve``, default settings, SQLite,
or with ``--pg URL`` a throwaway PostgreSQL database), then offers ``--rate`` records/s through the HTTP API
from one client thread (HJ 212 readings, every ``--rx-every``-th an e-prescription, which also goes to its
contract). Every ``--sample`` seconds it prints throughput, p50/p99 latency and the resident memory of the
gateway and the node; at the end it waits for every acknowledged record to be anchored, verifies every
bundle (pinned keys, anchor on chain), checks consecutive anchored checkpoints for consistency and verifies
the chain again from genesis.

    .venv/bin/python bench/soak.py --minutes 10 --rate 50

With ``--instances 2 --pg URL`` the gateway is that many processes on one PostgreSQL database, the load goes
to whichever is alive (a balancer), and every ``--kill-every`` seconds the instance owning the workers is
killed with SIGKILL and started again as the standby: the summary adds the takeover times and the records
lost (acknowledged but never logged) or duplicated (two leaves), both of which must be 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the packages and tests.kit from a checkout

from tests.kit.ha import HaNet, fresh_database, takeover  # noqa: E402
from tests.kit.procnet import Auditor, Load, ProcNet  # noqa: E402


class Killer(threading.Thread):
    """Every ``every`` s: kill -9 the worker owner, time the takeover, start the killed one again."""

    def __init__(self, net: HaNet, every: float) -> None:
        super().__init__(name="killer", daemon=True)
        self.net, self.every = net, every
        self.takeovers: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.every):
            killed, new, took = takeover(self.net, timeout=60)
            self.takeovers.append(took)
            print(f"  killed instance {killed} (owner); instance {new} took over in {took:.2f} s", flush=True)
            try:
                self.net.start_instance(killed)
            except RuntimeError as exc:  # e.g. a start slower than the kit's bound on a loaded machine
                print(f"  instance {killed} did not come back: {exc}", flush=True)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="duration of the load (default 10)")
    ap.add_argument("--rate", type=float, default=50.0, help="records/s offered (default 50)")
    ap.add_argument("--sample", type=float, default=None, help="seconds between rows (default: 10 rows)")
    ap.add_argument("--rx-every", type=int, default=10, help="every n-th record an rx.issue (0: none)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    ap.add_argument("--pg", default=None, help="a throwaway PostgreSQL URL (emptied first) instead of SQLite")
    ap.add_argument("--instances", type=int, default=1, help="gateway processes on the database (>1: --pg)")
    ap.add_argument("--kill-every", type=float, default=120.0, help="s between owner kills (--instances > 1)")
    args = ap.parse_args(argv)
    if args.instances > 1 and not args.pg:
        ap.error("--instances > 1 needs --pg: SQLite is single-instance")
    duration = args.minutes * 60
    sample = args.sample or max(5.0, duration / 10)

    tmp = tempfile.TemporaryDirectory(prefix="prov-soak-")
    root = Path(tmp.name)
    db = "PostgreSQL" if args.pg else "SQLite"
    print(f"soak: {args.minutes:g} min at {args.rate:g} records/s on {db}; devnet in {root}", flush=True)
    net: ProcNet
    killer: Killer | None = None
    if args.instances > 1:
        ha = HaNet(
            root,
            instances=args.instances,
            gateway={},  # production settings: the lease polled every 0.5 s
            db_url=fresh_database(args.pg, "soak"),
        )
        killer, net = Killer(ha, args.kill_every), ha
        print(f"{args.instances} gateway instances; the worker owner killed every {args.kill_every:g} s")
    else:
        net = ProcNet(root, db_url=args.pg)
    t_setup = time.monotonic()
    net.start()
    print(
        f"devnet up in {time.monotonic() - t_setup:.1f} s (node {net.rpc_url}, gateway {net.url})", flush=True
    )
    load = Load(net, rate=args.rate, rx_every=args.rx_every)
    cols = [("t (s)", 7), ("acked", 8), ("rec/s", 7), ("p50 ms", 7), ("p99 ms", 7), ("backlog", 8)]
    cols += [("gw MiB", 7), ("node MiB", 8)]
    print(" ".join(f"{name:>{width}}" for name, width in cols))
    rss: list[tuple[float, int, int]] = []
    heap: list[tuple[int, int]] = []
    try:
        start = time.monotonic()
        load.start()
        if killer is not None:
            killer.start()
        last_n, last_t = 0, start
        while (now := time.monotonic()) - start < duration:
            time.sleep(min(sample, duration - (now - start)))
            now = time.monotonic()
            with load.stats.lock:
                n = len(load.stats.accepted)
                window = [dt for (t0, dt) in load.stats.latencies if t0 >= last_t]
            gw, node = net.rss()
            rss.append((now - start, gw, node))
            heap.append(net.rss("RssAnon"))
            try:
                backlog = httpx.get(f"{net.url}/healthz", timeout=10).json().get("backlog", -1)
            except httpx.HTTPError:  # the instance asked was killed meanwhile
                backlog = -1
            rate = (n - last_n) / (now - last_t)
            print(
                f"{now - start:7.0f} {n:8d} {rate:7.1f} {_pct(window, 0.5) * 1e3:7.1f} "
                f"{_pct(window, 0.99) * 1e3:7.1f} {backlog:8d} {gw / 1024:7.1f} {node / 1024:8.1f}",
                flush=True,
            )
            last_n, last_t = n, now
        if killer is not None:
            killer.halt.set()
            killer.join(timeout=120)
        load.stop()
        elapsed = time.monotonic() - start
        with load.stats.lock:
            ids = list(load.stats.accepted)
            lat = [dt for _, dt in load.stats.latencies]
            outcomes = dict(load.stats.outcomes)

        print("\nwaiting for every acknowledged record to be anchored ...", flush=True)
        auditor = Auditor(net)
        t0 = time.monotonic()
        state = auditor.wait_anchored(ids, timeout=300)
        auditor.check_log(state, ids)
        anchored_in = time.monotonic() - t0
        t0 = time.monotonic()
        verified = auditor.verify_bundles(ids)
        verify_s = time.monotonic() - t0
        links = auditor.check_consistency()
        chain = auditor.verify_chain()
        lost = sum(1 for i in ids if state.leaves.get(i) is None)
        logged = [v for v in state.leaves.values() if v is not None]
        duplicated = (len(ids) - len(set(ids))) + (len(logged) - len(set(logged)))

        first, last = rss[min(1, len(rss) - 1)], rss[-1]  # from the second sample: after warm-up
        print("\nsummary")
        mix = f"rx every {args.rx_every}" if args.rx_every else "no rx"
        p50, p99, worst = statistics.median(lat) * 1e3, _pct(lat, 0.99) * 1e3, max(lat) * 1e3
        print(f"  offered              {args.rate:g} records/s for {elapsed:.0f} s ({mix})")
        print(f"  acknowledged         {len(ids)} ({len(ids) / elapsed:.1f} records/s); outcomes {outcomes}")
        print(f"  latency              p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms")
        span = f"t={first[0]:.0f}..{last[0]:.0f} s"
        print(f"  gateway RSS          {first[1] / 1024:.1f} -> {last[1] / 1024:.1f} MiB ({span})")
        print(f"  node RSS             {first[2] / 1024:.1f} -> {last[2] / 1024:.1f} MiB (with LMDB pages)")
        h0, h1 = heap[min(1, len(heap) - 1)], heap[-1]
        print(
            f"  heap (RssAnon)       gateway {h0[0] / 1024:.1f} -> {h1[0] / 1024:.1f} MiB, "
            f"node {h0[1] / 1024:.1f} -> {h1[1] / 1024:.1f} MiB"
        )
        print(f"  lost records         {lost} (all anchored {anchored_in:.1f} s after the load stopped)")
        print(f"  duplicated records   {duplicated}")
        if killer is not None:
            t = killer.takeovers
            print(
                f"  owner kills          {len(t)}; takeover max {max(t, default=0):.2f} s, "
                f"mean {sum(t) / max(1, len(t)):.2f} s ({', '.join(f'{x:.2f}' for x in t)})"
            )
        print(f"  bundles verified     {verified} in {verify_s:.0f} s (pinned keys, anchor on chain)")
        print(f"  checkpoint links     {links} consecutive anchors consistent")
        print(f"  chain                {chain.blocks} blocks re-verified from genesis")
        return 0 if lost == 0 and duplicated == 0 and verified == len(set(ids)) else 1
    finally:
        load.stop()
        net.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
