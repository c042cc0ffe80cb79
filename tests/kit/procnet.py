"""A network of real processes for crash tests and the soak bench: node, contracts, gateway, steady load.

Unlike ``tests/gateway``'s in-thread gateway, every service here is its own OS process, so that it can be
killed with SIGKILL at any instruction and restarted on the same state: the embedded node
(``python -m chain_node run`` through ``devnet.embedded.start_embedded``) and the gateway
(``python -m gateway serve``, configured through its ``PROV_GW_*`` settings like in production).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import col, func, select

from devnet.deploy import deploy_network
from devnet.embedded import free_port, start_embedded
from devnet.engines import EngineHandle, stop_process, test_accounts
from gateway.core.db import Database
from gateway.core.security import mint_token
from gateway.models import CheckpointRow, Record
from provenance.audit import check_links
from provenance.chain.anchor import ChainAnchorChecker
from provenance.chain.chain_verify import ChainReport, verify_chain
from provenance.chain.events import read_anchors
from provenance.client import GatewayProofs
from provenance.crypto import SM2PrivateKey
from provenance.log.bundle import Anchor, EvidenceBundle
from provenance.log.checkpoint import Checkpoint
from provenance.manifest import Manifest
from provenance.records import b64decode
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier
from tests.kit.gateway import hj212_packets, rx_issue, sign_submission

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90.0

# The gateway's worker cadence in crash tests: fast, so that rounds stay short.
FAST_GATEWAY = {
    "checkpoint_interval": "0.3",
    "registry_poll": "0.2",
    "chain_retry": "0.2",
    "worker_idle": "0.02",
    "token_cache_ttl": "1.0",
}


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of a process in KiB from /proc (``VmRSS``, or ``RssAnon`` = heap), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class ProcNet:
    """Embedded node + deployed contracts and demo organisations + gateway process, under ``root``."""

    def __init__(
        self, root: Path, *, gateway: dict[str, str] | None = None, db_url: str | None = None
    ) -> None:
        self.root = root
        self.node_dir = root / "node"
        self.db_url = db_url or f"sqlite:///{root / 'gateway.db'}"
        self.gateway_settings = {**(gateway or {})}
        self.accounts = test_accounts(10)
        self.node_port = free_port()
        self.gateway_port = free_port()
        self.engine: EngineHandle | None = None
        self.manifest: Manifest | None = None
        self.gateway: subprocess.Popen[bytes] | None = None
        self.tokens: dict[str, str] = {}
        self.gateway_starts = 0

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> ProcNet:
        """Genesis (org accounts permitted through OrgRegistry), node, contracts, tokens, gateway."""
        self.start_node()
        assert self.engine is not None
        # Review (审方) off: these processes dispense without it (tests/gateway/test_rx_chain.py covers it).
        self.manifest = deploy_network(self.engine, out_dir=self.root / "network", review_required=False)
        db = Database(self.db_url)
        if not db.is_sqlite:
            from sqlmodel import SQLModel

            SQLModel.metadata.drop_all(db.engine)  # a throwaway database: start from an empty schema
        db.create_all()
        self.tokens = {o.id: mint_token(db, o.id, label="security") for o in self.manifest.orgs}
        db.dispose()
        self.start_gateway()
        return self

    def start_node(self) -> None:
        """Start (or restart on its chain) the node on its fixed port."""
        self.engine = start_embedded(
            data_dir=self.node_dir, port=self.node_port, accounts=self.accounts, registry_permits=True
        )

    def kill_node(self) -> None:
        """SIGKILL the node."""
        assert self.engine is not None and self.engine.process is not None
        os.kill(self.engine.process.pid, signal.SIGKILL)
        self.engine.process.wait(timeout=30)

    def start_gateway(self) -> None:
        """Start ``python -m gateway serve`` and wait until /healthz answers."""
        env = self.gateway_env()
        cmd = [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.gateway_port),
        ]
        log = (self.root / "gateway.log").open("ab")
        self.gateway = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()
        self.gateway_starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.gateway.poll() is not None:
                raise RuntimeError(
                    f"gateway exited with {self.gateway.returncode}: {self.gateway_log()[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                health = f"http://127.0.0.1:{self.gateway_port}/healthz"  # this process's, not ``url``
                if httpx.get(health, timeout=1.0).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"gateway did not answer within {START_TIMEOUT:.0f} s")

    def gateway_env(self) -> dict[str, str]:
        """The environment of ``python -m gateway`` (serve and the operator's commands) for this network."""
        assert self.manifest is not None and self.manifest.path is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROV_GW_")}
        return env | {
            "PROV_GW_DATABASE_URL": self.db_url,
            "PROV_GW_KEK_FILE": str(self.root / "gateway.kek"),
            "PROV_GW_MANIFEST_PATH": str(self.manifest.path),
            "PROV_GW_RPC_URL": self.rpc_url,
            **{f"PROV_GW_{k.upper()}": v for k, v in self.gateway_settings.items()},
        }

    def gateway_cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``python -m gateway <args>`` with this network's settings (not checked: the test reads rc)."""
        cmd = [sys.executable, "-m", "gateway", *args]
        env = self.gateway_env()
        return subprocess.run(
            cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
        )

    def kill_gateway(self) -> None:
        """SIGKILL the gateway."""
        assert self.gateway is not None
        os.kill(self.gateway.pid, signal.SIGKILL)
        self.gateway.wait(timeout=30)

    def stop(self) -> None:
        """Stop the gateway (SIGTERM), then the node."""
        if self.gateway is not None:
            stop_process(self.gateway, 15)
        if self.engine is not None:
            self.engine.stop()

    # --- views -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.node_port}"

    def gateway_log(self) -> str:
        return (self.root / "gateway.log").read_text(errors="replace")

    def headers(self, org: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[org]}"}

    def sm2_key(self, org: str) -> SM2PrivateKey:
        assert self.manifest is not None
        return self.manifest.sm2_key(org)

    def rss(self, field: str = "VmRSS") -> tuple[int, int]:
        """(gateway, node) memory in KiB: resident set by default, ``RssAnon`` for the heap alone.

        The node's resident set also counts the pages of its memory-mapped LMDB file that reads touched,
        which grow with the chain; a leak shows in ``RssAnon``.
        """
        gw = self.gateway.pid if self.gateway is not None else 0
        node = self.engine.process.pid if self.engine is not None and self.engine.process is not None else 0
        return rss_kib(gw, field), rss_kib(node, field)

    def db_state(self) -> DbState:
        """What the gateway's database holds (read through its own models; the gateway may be running)."""
        db = Database(self.db_url)
        try:
            with db.session() as s:
                rows = s.exec(select(Record.id, Record.leaf_index, Record.kind, Record.chain_status)).all()
                anchored = s.exec(
                    select(func.max(CheckpointRow.size)).where(col(CheckpointRow.anchor_tx).is_not(None))
                ).one()
        finally:
            db.dispose()
        return DbState(
            leaves={r[0]: r[1] for r in rows},
            kinds={r[0]: r[2] for r in rows},
            chain_status={r[0]: r[3] for r in rows},
            anchored_size=int(anchored or 0),
        )


@dataclass
class DbState:
    leaves: dict[str, int | None]
    kinds: dict[str, str]
    chain_status: dict[str, str]
    anchored_size: int


# --- steady load ----------------------------------------------------------------------------------------


@dataclass
class LoadStats:
    """What the load saw: ids acknowledged (202/200), latencies of acknowledged requests, other outcomes."""

    accepted: list[str] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (time, seconds)
    outcomes: Counter[str] = field(default_factory=Counter)
    retry_after_missing: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Load(threading.Thread):
    """Signed records through the real HTTP API at a fixed rate: HJ 212 readings, and every ``rx_every``-th
    an e-prescription (a workflow record with a contract call). Connection failures (gateway killed) are
    counted and retried with a fresh record; nothing unacknowledged is counted as accepted."""

    def __init__(self, net: ProcNet, *, rate: float, rx_every: int = 10, seed: int = 0) -> None:
        super().__init__(name="load", daemon=True)
        self.net = net
        self.rate = rate
        self.rx_every = rx_every
        self.stats = LoadStats()
        self._halt = threading.Event()
        self._paused = threading.Event()
        self._idle = threading.Event()
        self._rng = random.Random(seed)
        self._keys = {org: net.sm2_key(org) for org in ("station-1", "hospital-1")}

    def body(self, i: int) -> tuple[str, dict[str, Any]]:
        if self.rx_every and i % self.rx_every == self.rx_every - 1:
            rx = f"RXL{self._rng.getrandbits(48):012X}"
            return "hospital-1", sign_submission(
                "hospital-1", self._keys["hospital-1"], "rx.issue", rx_issue(rx)
            )
        packet = hj212_packets(1)[0]  # a reading is recorded once: each its own second
        return "station-1", sign_submission("station-1", self._keys["station-1"], "env.reading", packet)

    def run(self) -> None:
        period = 1.0 / self.rate
        i = 0
        next_at = time.monotonic()
        with httpx.Client(timeout=10) as http:
            while not self._halt.is_set():
                if self._paused.is_set():
                    self._idle.set()
                    time.sleep(0.01)
                    next_at = time.monotonic()
                    continue
                org, body = self.body(i)
                i += 1
                t0 = time.monotonic()
                try:
                    r = http.post(f"{self.net.url}/api/v1/records", json=body, headers=self.net.headers(org))
                except httpx.HTTPError as exc:
                    with self.stats.lock:
                        self.stats.outcomes[f"conn:{type(exc).__name__}"] += 1
                    time.sleep(0.02)
                else:
                    dt = time.monotonic() - t0
                    with self.stats.lock:
                        self.stats.outcomes[str(r.status_code)] += 1
                        if r.status_code in (200, 202):
                            self.stats.accepted.append(r.json()["id"])
                            self.stats.latencies.append((t0, dt))
                        elif r.status_code == 503 and "Retry-After" not in r.headers:
                            self.stats.retry_after_missing += 1
                next_at += period
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    next_at = time.monotonic()  # behind: do not burst to catch up

    def pause(self) -> None:
        """Stop sending after the request in flight (returns once the thread is idle)."""
        self._idle.clear()
        self._paused.set()
        if self.is_alive():
            self._idle.wait(timeout=30)

    def resume(self) -> None:
        self._paused.clear()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)

    def accepted(self) -> list[str]:
        with self.stats.lock:
            return list(self.stats.accepted)


# --- checks ---------------------------------------------------------------------------------------------


class CachedAnchorChecker:
    """The real ChainAnchorChecker, asked once per distinct (anchor tx, checkpoint): bundles share anchors."""

    def __init__(self, inner: ChainAnchorChecker) -> None:
        self._inner = inner
        self._ok: dict[tuple[str, int, bytes], str | None] = {}  # held, with the inner checker's warning

    def check(self, anchor: Anchor, checkpoint: Checkpoint) -> str | None:
        key = (anchor.tx_hash, checkpoint.size, checkpoint.root)
        if key not in self._ok:
            self._ok[key] = self._inner.check(anchor, checkpoint)
        return self._ok[key]


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll ``predicate`` until truthy; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Auditor:
    """The checks after a crash round, as an outside auditor would run them (HTTP, JSON-RPC, trust file)."""

    def __init__(self, net: ProcNet) -> None:
        assert net.manifest is not None and net.manifest.path is not None
        self.net = net
        self.trust = TrustStore.load(net.manifest.path.parent / "trust.json")
        # Online an anchor is checked against the anchors around it, with the gateway's consistency proofs.
        self.checker = CachedAnchorChecker(
            ChainAnchorChecker.from_rpc(
                net.rpc_url,
                contract=net.manifest.contracts["ProvenanceLog"],
                proofs=GatewayProofs(net.url),
                seal_keys=self.trust.seal_keys,  # the node's sealing keys: each anchoring block proven
            )
        )
        self.verified: set[str] = set()

    def wait_anchored(self, ids: list[str], *, timeout: float = 60.0) -> DbState:
        """Every id present exactly once in the log and covered by an anchored checkpoint."""

        def done() -> DbState | None:
            st = self.net.db_state()
            if all(st.leaves.get(i) is not None and st.leaves[i] < st.anchored_size for i in ids):  # type: ignore[operator]
                return st
            return None

        state: DbState = wait_until(done, timeout=timeout, what=f"{len(ids)} acknowledged records anchored")
        return state

    def check_log(self, state: DbState, ids: list[str]) -> None:
        """Every acknowledged id has one row and one leaf; leaves are 0..n-1 with no gap or duplicate."""
        missing = [i for i in ids if i not in state.leaves]
        assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}"
        leaves = sorted(v for v in state.leaves.values() if v is not None)
        assert leaves == list(range(len(leaves))), "leaf indexes are not 0..n-1 exactly once"
        # The log holds no leaf without its row (a duplicate would make the tree larger than the rows).
        assert state.anchored_size <= len(leaves), (state.anchored_size, len(leaves))

    def verify_bundles(self, ids: list[str]) -> int:
        """Fetch and verify (pinned keys, anchor on chain) the bundle of every id not verified yet."""
        assert self.net.manifest is not None
        verifier = Verifier(trust=self.trust, anchor_checker=self.checker)
        n = 0
        with httpx.Client(base_url=self.net.url, timeout=30) as http:
            for rid in ids:
                if rid in self.verified:
                    continue
                # The auditor role reads payloads too: the payload step is verified as well.
                r = http.get(f"/api/v1/records/{rid}/bundle", headers=self.net.headers("auditor"))
                assert r.status_code == 200, r.text
                bundle = EvidenceBundle.from_dict(r.json())
                assert bundle.has_payload, "the auditor's bundle carries the payload"
                verifier.verify(bundle)
                self.verified.add(rid)
                n += 1
        return n

    def check_consistency(self) -> int:
        """Consecutive anchored checkpoints are consistent (provenance.audit with the gateway's proofs)."""
        assert self.net.manifest is not None
        from web3 import Web3

        w3 = Web3(Web3.HTTPProvider(self.net.rpc_url, request_kwargs={"timeout": 30}))
        anchors = read_anchors(w3, self.net.manifest.contracts["ProvenanceLog"])
        with httpx.Client(base_url=self.net.url, timeout=30) as http:

            def proof_for(first: int, second: int) -> list[bytes]:
                r = http.get("/api/v1/proofs/consistency", params={"first": first, "second": second})
                assert r.status_code == 200, r.text
                return [b64decode(p, what="consistency proof hash") for p in r.json()["proof"]]

            links = check_links(anchors, proof_for)
        bad = [(lk.first.tree_size, lk.second.tree_size, lk.reason) for lk in links if not lk.ok]
        assert not bad, f"inconsistent anchored checkpoints: {bad[:5]}"
        return len(links)

    def wait_workflow_confirmed(self, ids: list[str], *, timeout: float = 60.0) -> list[str]:
        """Every workflow record among ``ids`` (``rx.issue``) sent to its contract and confirmed there (none
        refused, e.g. as a duplicate); returns them (at least one)."""

        def sent() -> DbState | None:
            st = self.net.db_state()
            return st if "pending" not in (st.chain_status[i] for i in ids) else None

        state: DbState = wait_until(sent, timeout=timeout, what="workflow calls sent")
        rx = [i for i in ids if state.kinds[i] == "rx.issue"]
        assert rx and all(state.chain_status[i] == "confirmed" for i in rx), {
            i: state.chain_status[i] for i in rx if state.chain_status[i] != "confirmed"
        }
        return rx

    def verify_chain(self) -> ChainReport:
        """The chain re-verified from genesis (every seal and SM3 link)."""
        return verify_chain(self.net.rpc_url)
