"""Chain benchmark: the same anchor-like transaction through web3.py on our embedded node and on anvil.

For each engine: one at a time, two ways: pre-signed (send a raw transaction, wait for its receipt: the
engine's floor) and the application path (``provenance.chain.contracts.transact``, which the gateway anchors
and calls contracts with, as any web3.py application does: pending nonce, chain id, ``build_transaction``
with the engine's gas estimate and fees, sign, send, wait for the receipt); many per block (send N
without waiting, from 4 client processes with their own accounts, then wait for all); eth_getLogs over
10,000 matching events (address + topic filter), timed as the raw JSON-RPC call and through web3.py's
formatters. The embedded engines run as test chains (a block per transaction at once, no clock bound);
``embedded-bounded`` is the node as the devnet runs it, its blocks stamped at most a second ahead of the
clock, so one at a time it makes about a block a second (``docs/design/node-storage.md``). Also the
engine process's CPU time per transaction (from /proc), which other load on a
shared machine disturbs much less than tx/s. ``--rounds N`` repeats every engine N times, interleaved,
and reports each round's ratio to anvil and the medians. Prints a table; ``--json`` for machines.

    PYTHONPATH=. .venv/bin/python bench/chain.py [--one 200] [--app 200] [--many 2000] [--events 10000]
                                                 [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from devnet.embedded import start_embedded
from devnet.engines import EngineHandle
from provenance.chain.contracts import transact

PROBE = json.loads(
    (Path(__file__).resolve().parent.parent / "tests" / "assets" / "NodeProbe.json").read_text()
)
ANCHOR_GAS = 120_000
EVENTS_PER_TX = 500
BULK_ROOT = b"\xbb" * 32


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))] if s else float("nan")


class Runner:
    """Drives one engine."""

    def __init__(self, handle: EngineHandle) -> None:
        self.h = handle
        self.w3 = Web3(Web3.HTTPProvider(handle.rpc_url, request_kwargs={"timeout": 60}))
        self.admin: LocalAccount = handle.accounts[0]
        self.user: LocalAccount = handle.accounts[1]
        self.nonces: dict[str, int] = {}
        self.probe = self._deploy()

    def _nonce(self, acct: LocalAccount) -> int:
        n = self.nonces.get(acct.address)
        if n is None:
            n = self.w3.eth.get_transaction_count(acct.address, "pending")
        self.nonces[acct.address] = n + 1
        return n

    def _fees(self) -> dict[str, int]:
        base = self.w3.eth.get_block("latest")["baseFeePerGas"]
        tip = self.w3.eth.max_priority_fee
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def _deploy(self) -> Contract:
        factory = self.w3.eth.contract(abi=PROBE["abi"], bytecode=PROBE["bytecode"])
        tx = factory.constructor().build_transaction(
            {"from": self.admin.address, "nonce": self._nonce(self.admin)}
        )
        raw = self.admin.sign_transaction(tx).raw_transaction
        rcpt = self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_raw_transaction(raw))
        return self.w3.eth.contract(address=rcpt["contractAddress"], abi=PROBE["abi"])

    def signed_anchors(self, n: int, start: int, sender: LocalAccount | None = None) -> list[bytes]:
        """Pre-signed anchor transactions (signing is the client's cost, not the engine's)."""
        sender = sender or self.user
        fees = self._fees()
        out = []
        for i in range(n):
            tx = self.probe.functions.anchor(start + i, (start + i).to_bytes(32, "big")).build_transaction(
                {
                    "from": sender.address,
                    "nonce": self._nonce(sender),
                    "gas": ANCHOR_GAS,
                    "chainId": self.h.chain_id,
                    **fees,
                }
            )
            out.append(bytes(sender.sign_transaction(tx).raw_transaction))
        return out

    def one_at_a_time(self, n: int) -> dict[str, float]:
        """Send, wait for the receipt, repeat."""
        raws = self.signed_anchors(n, 1)
        lat = []
        t0 = time.perf_counter()
        for raw in raws:
            t = time.perf_counter()
            h = self.w3.eth.send_raw_transaction(raw)
            r = self.w3.eth.wait_for_transaction_receipt(h, poll_latency=0.01)
            lat.append(time.perf_counter() - t)
            assert r["status"] == 1
        total = time.perf_counter() - t0
        return {"tx_s": n / total, "p50_ms": _pct(lat, 0.5) * 1e3, "p99_ms": _pct(lat, 0.99) * 1e3}

    def app_path(self, n: int) -> dict[str, float]:
        """One at a time as the gateway sends: ``transact`` builds (estimate, fees), signs, sends, waits."""
        sender = self.h.accounts[-1]
        lat = []
        t0 = time.perf_counter()
        for i in range(n):
            t = time.perf_counter()
            r = transact(
                self.w3, self.probe.functions.anchor(50_000 + i, (i + 1).to_bytes(32, "big")), sender
            )
            lat.append(time.perf_counter() - t)
            assert r["status"] == 1
        total = time.perf_counter() - t0
        return {"tx_s": n / total, "p50_ms": _pct(lat, 0.5) * 1e3, "p99_ms": _pct(lat, 0.99) * 1e3}

    def many_per_block(self, n: int, senders: int) -> dict[str, float]:
        """Send n without waiting (``senders`` client processes, one account each), then wait for all.

        A watcher polls eth_blockNumber every 5 ms and notes when each block appears: a transaction's
        latency is send → its block seen, and throughput is n / (first send → last block seen), so the
        client's own receipt fetching (done afterwards, untimed) does not count against the engine.
        """
        accounts = self.h.accounts[1 : 1 + senders]
        per = [self.signed_anchors(n // senders, 100_000 * (k + 1), a) for k, a in enumerate(accounts)]
        n = sum(len(p) for p in per)
        seen: dict[int, float] = {}
        stop = threading.Event()

        start_block = self.w3.eth.block_number  # before the clock starts: the first block may be instant

        def watch() -> None:
            w3 = Web3(Web3.HTTPProvider(self.h.rpc_url, request_kwargs={"timeout": 60}))
            last = start_block
            while not stop.is_set():
                now = w3.eth.block_number
                for b in range(last + 1, now + 1):
                    seen[b] = time.perf_counter()
                last = now
                time.sleep(0.005)

        # processes, not threads: the client's web3.py work must not share one GIL
        with ProcessPoolExecutor(max_workers=senders, mp_context=mp.get_context("fork")) as pool:
            for f in [pool.submit(_stream, self.h.rpc_url, []) for _ in range(senders)]:
                f.result()  # processes up before the clock starts
            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            t0 = time.perf_counter()
            sent = [x for part in pool.map(_stream, [self.h.rpc_url] * senders, per) for x in part]
        t_sent = time.perf_counter()
        receipts = [
            self.w3.eth.wait_for_transaction_receipt(h, timeout=120, poll_latency=0.01) for h, _ in sent
        ]
        time.sleep(0.02)  # one more watcher round for the last block
        stop.set()
        watcher.join()
        assert all(r["status"] == 1 for r in receipts)
        lat = [seen[r["blockNumber"]] - ts for r, (_, ts) in zip(receipts, sent, strict=True)]
        done = max(seen[r["blockNumber"]] for r in receipts)
        return {
            "tx_s": n / (done - t0),
            "send_tx_s": n / (t_sent - t0),
            "p50_ms": _pct(lat, 0.5) * 1e3,
            "p99_ms": _pct(lat, 0.99) * 1e3,
            "tx_per_block": n / max(1, len({r["blockNumber"] for r in receipts})),
        }

    def fill_events(self, n: int) -> None:
        """n extra Anchored events with the bulk root (EVENTS_PER_TX per transaction)."""
        fees = self._fees()
        hashes = []
        for k in range(0, n, EVENTS_PER_TX):
            count = min(EVENTS_PER_TX, n - k)
            tx = self.probe.functions.emitMany(k, count, BULK_ROOT).build_transaction(
                {"from": self.user.address, "nonce": self._nonce(self.user), "gas": 3_000_000, **fees}
            )
            hashes.append(self.w3.eth.send_raw_transaction(self.user.sign_transaction(tx).raw_transaction))
        for h in hashes:
            assert self.w3.eth.wait_for_transaction_receipt(h, timeout=120)["status"] == 1

    def get_logs(self, expect: int, rounds: int = 3) -> dict[str, float]:
        """Time eth_getLogs for the bulk events: raw JSON-RPC and through web3.py."""
        topic0 = "0x" + Web3.keccak(text="Anchored(uint256,bytes32,address,uint256)").hex().removeprefix("0x")
        flt = {"fromBlock": "0x0", "toBlock": "latest", "address": self.probe.address,
               "topics": [topic0, None, "0x" + BULK_ROOT.hex()]}  # fmt: skip

        def raw() -> int:
            resp: Any = self.w3.provider.make_request("eth_getLogs", [flt])  # type: ignore[arg-type]
            return len(resp["result"])

        def formatted() -> int:
            return len(self.w3.eth.get_logs(flt))  # type: ignore[arg-type]

        out = {}
        for name, fn in (("raw_ms", raw), ("web3_ms", formatted)):
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                got = fn()
                times.append(time.perf_counter() - t)
                assert got == expect, f"{name}: {got} logs, expected {expect}"
            out[name] = statistics.median(times) * 1e3
        return out


def _stream(url: str, raws: list[bytes]) -> list[tuple[bytes, float]]:
    """One client process: send its transactions back to back; (hash, time sent) each."""
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
    return [(bytes(w3.eth.send_raw_transaction(raw)), time.perf_counter()) for raw in raws]


def _cpu_s(h: EngineHandle) -> float:
    """User + system CPU seconds of the engine process so far (Linux /proc; 0 elsewhere)."""
    if h.process is None:
        return 0.0
    try:
        stat = Path(f"/proc/{h.process.pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ms(v: float) -> str:
    # anvil runs under a launcher process, whose own CPU time says nothing
    return f"{v:9.2f}" if v > 0 else f"{'n/a':>9}"


def run_engine(name: str, start: Callable[[], EngineHandle], args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement on one engine."""
    h = start()
    try:
        r = Runner(h)
        res: dict[str, Any] = {"engine": name}
        c0 = _cpu_s(h)
        res["one"] = r.one_at_a_time(args.one)
        c1 = _cpu_s(h)
        res["app"] = r.app_path(args.app)
        c2 = _cpu_s(h)
        res["many"] = r.many_per_block(args.many, args.senders)
        c3 = _cpu_s(h)
        res["one"]["cpu_ms_per_tx"] = (c1 - c0) / args.one * 1e3
        res["app"]["cpu_ms_per_tx"] = (c2 - c1) / args.app * 1e3
        res["many"]["cpu_ms_per_tx"] = (c3 - c2) / args.many * 1e3
        r.fill_events(args.events)
        res["logs"] = r.get_logs(args.events)
        return res
    finally:
        h.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", type=int, default=200, help="transactions sent one at a time")
    ap.add_argument("--app", type=int, default=200, help="transactions sent one at a time, app path")
    ap.add_argument("--many", type=int, default=1000, help="transactions sent without waiting")
    ap.add_argument("--senders", type=int, default=4, help="client processes (accounts) sending at once")
    ap.add_argument("--events", type=int, default=10_000, help="events for the getLogs timing")
    ap.add_argument(
        "--engines",
        default="embedded,embedded-os,anvil",
        help="embedded (fsync per commit, the default), embedded-os (PROV_NODE_SYNC=os), anvil; "
        "embedded-bounded: the clock bound the devnet runs with (one at a time: about a block a second)",
    )
    ap.add_argument("--rounds", type=int, default=1, help="repeat every engine, interleaved")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp:

        def embedded(sync: str, *, bounded_clock: bool = False) -> Callable[[], EngineHandle]:
            def start() -> EngineHandle:
                os.environ["PROV_NODE_SYNC"] = sync  # NodeSettings reads it in the node subprocess
                try:
                    return start_embedded(
                        data_dir=Path(tempfile.mkdtemp(dir=tmp)) / f"node-{sync}", bounded_clock=bounded_clock
                    )
                finally:
                    del os.environ["PROV_NODE_SYNC"]

            return start

        starters: dict[str, Callable[[], EngineHandle]] = {
            "embedded": embedded("full"),
            "embedded-os": embedded("os"),
            "embedded-bounded": embedded("full", bounded_clock=True),
        }
        if "anvil" in args.engines:
            from devnet.anvil import start_anvil

            starters["anvil"] = start_anvil
        for rnd in range(args.rounds):
            for name in args.engines.split(","):
                t = time.perf_counter()
                res = run_engine(name, starters[name], args)
                res["wall_s"] = time.perf_counter() - t
                res["round"] = rnd
                results.append(res)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'engine':12} {'mode':16} {'tx/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/tx':>9}  notes")
    for res in results:
        o, a, m, lg = res["one"], res["app"], res["many"], res["logs"]
        e = f"{res['engine']}#{res['round']}" if args.rounds > 1 else res["engine"]
        print(
            f"{e:12} {'one at a time':16} {o['tx_s']:8.1f} {o['p50_ms']:8.2f} {o['p99_ms']:8.2f}"
            f" {_ms(o['cpu_ms_per_tx'])}"
        )
        print(
            f"{e:12} {'one, app path':16} {a['tx_s']:8.1f} {a['p50_ms']:8.2f} {a['p99_ms']:8.2f}"
            f" {_ms(a['cpu_ms_per_tx'])}"
        )
        print(
            f"{e:12} {'many per block':16} {m['tx_s']:8.1f} {m['p50_ms']:8.2f} {m['p99_ms']:8.2f}"
            f" {_ms(m['cpu_ms_per_tx'])}  sends {m['send_tx_s']:.0f} tx/s, {m['tx_per_block']:.1f} tx/block"
        )
        print(
            f"{e:12} {'getLogs ' + str(args.events):16} raw {lg['raw_ms']:.0f} ms, "
            f"via web3.py {lg['web3_ms']:.0f} ms  (wall {res['wall_s']:.0f} s)"
        )
    engines = args.engines.split(",")
    if args.rounds > 1:
        for name in engines:
            mine = [r for r in results if r["engine"] == name]
            print(
                f"median {name}: one at a time {statistics.median(r['one']['tx_s'] for r in mine):.1f} tx/s, "
                f"app path {statistics.median(r['app']['tx_s'] for r in mine):.1f} tx/s, "
                f"many per block {statistics.median(r['many']['tx_s'] for r in mine):.1f} tx/s, "
                f"getLogs {statistics.median(r['logs']['raw_ms'] for r in mine):.0f} ms"
            )
    if "anvil" in engines:
        for name in engines:
            if name == "anvil":
                continue
            for mode, label in (("one", "one at a time, pre-signed"), ("app", "one at a time, app path")):
                ratios = []
                for rnd in range(args.rounds):
                    ours = next(r for r in results if r["engine"] == name and r["round"] == rnd)
                    anvil = next(r for r in results if r["engine"] == "anvil" and r["round"] == rnd)
                    ratios.append(ours[mode]["tx_s"] / anvil[mode]["tx_s"])
                each = ", ".join(f"{x:.2f}" for x in ratios)
                print(
                    f"{label}, {name} / anvil (same round): {each}; median {statistics.median(ratios):.2f}x"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
