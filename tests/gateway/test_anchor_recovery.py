"""#23.8 end to end: the log operator's key anchors something this log cannot extend; the gateway says so
(ANCHOR_STUCK in its log, /healthz and /metrics) instead of retrying silently, and resumes by itself once
the committee's VoidAnchors proposal has removed the bad anchor. The same for the growth bound. Runs on the
session's engine (our node unless PROV_TEST_ENGINE says otherwise) and on anvil."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3 import Web3
from web3.contract import Contract

from devnet.anvil import start_anvil
from devnet.deploy import deploy_network
from devnet.engines import EngineHandle
from devnet.governance import committee_pass, set_max_anchor_growth, void_anchors
from gateway.core.db import Database
from gateway.core.security import mint_token
from provenance.chain.anchor import ChainAnchorChecker
from provenance.chain.contracts import ProposalKind, at, org_id, transact
from provenance.client import GatewayProofs
from provenance.log.bundle import EvidenceBundle
from provenance.log.merkle import node_hash
from provenance.manifest import Manifest
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier
from tests.kit.gateway import Server, gateway_settings, hj212_packets, sign_submission
from tests.kit.network import variant_network


@dataclasses.dataclass
class Net:
    manifest: Manifest
    engine: EngineHandle
    w3: Web3
    log: Contract


@pytest.fixture(scope="module", params=["session", "anvil"])
def net(
    request: pytest.FixtureRequest,
    engine: EngineHandle,
    deployed: Manifest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Net]:
    """A network with a ProvenanceLog of its own (the session's gateway anchors into the shared one)."""
    started: EngineHandle | None = None
    if request.param == "session":
        eng, base = engine, deployed
    else:
        if engine.name == "anvil":
            pytest.skip("the session's engine is anvil already")
        eng = started = start_anvil()
        base = deploy_network(eng, out_dir=tmp_path_factory.mktemp("anvil-network"))
    try:
        manifest = variant_network(base, eng, f"recovery-{secrets.token_hex(4)}")
        w3 = Web3(Web3.HTTPProvider(eng.rpc_url, request_kwargs={"timeout": 30}))
        log = at(w3, "ProvenanceLog", manifest.contracts["ProvenanceLog"])
        yield Net(manifest=manifest, engine=eng, w3=w3, log=log)
    finally:
        if started is not None:
            started.stop()


class Gateway:
    """A gateway of its own on ``net``, driven over HTTP as station-1."""

    def __init__(self, net: Net, tmp: Path, **overrides: Any) -> None:
        self.net = net
        settings = gateway_settings(tmp, net.manifest, net.manifest.rpc_url, **overrides)
        db = Database(settings.database_url)
        db.create_all()
        self.token = mint_token(db, "station-1", label="test")
        self.auditor_token = mint_token(db, "auditor", label="test")  # /metrics is for oversight only
        db.dispose()
        self.server = Server(settings)
        self.http = httpx.Client(base_url=self.server.url, timeout=30)
        self.packets = iter(hj212_packets(40))

    def submit(self, n: int) -> list[str]:
        """``n`` readings of one station in one bulk request. Each reading moves the station's state, so each
        is a transaction of its own: the sequencer may take them in one step or in several, and a checkpoint
        may fall between them."""
        key = self.net.manifest.sm2_key("station-1")
        records = [sign_submission("station-1", key, "env.reading", next(self.packets)) for _ in range(n)]
        r = self.http.post(
            "/api/v1/records:bulk",
            json={"records": records},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert r.status_code == 200 and r.json()["accepted"] == n, r.text
        return [item["id"] for item in r.json()["items"]]

    def health(self) -> dict[str, Any]:
        data: dict[str, Any] = self.http.get("/healthz").json()
        return data

    def metric(self, name: str) -> int:
        metrics = self.http.get("/metrics", headers={"Authorization": f"Bearer {self.auditor_token}"})
        for line in metrics.text.splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
        raise AssertionError(f"no {name} in /metrics")

    def wait(self, what: str, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            if predicate(health):
                return health
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {self.health()}")

    def stop(self) -> None:
        self.http.close()
        self.server.stop()


@pytest.fixture
def gw(net: Net, tmp_path: Path) -> Iterator[Gateway]:
    g = Gateway(net, tmp_path)
    try:
        yield g
    finally:
        g.stop()


def anchors(net: Net) -> list[tuple[int, bytes]]:
    """ProvenanceLog's anchors, oldest first, as (tree size, root)."""
    count = net.log.functions.anchorCount().call()
    return [tuple(net.log.functions.anchorAt(i).call()[:2]) for i in range(count)]


def committee(net: Net) -> tuple[Any, list[Any]]:
    members = [a for a in net.engine.accounts if a.address in net.manifest.committee]
    return at(net.w3, "OrgRegistry", net.manifest.contracts["OrgRegistry"]), members


def test_a_foreign_anchor_is_reported_and_the_committee_recovers(
    net: Net, gw: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.workers")
    first = gw.submit(4)
    gw.wait("the first anchor", lambda h: h["anchored_size"] == 4)
    ours = bytes(net.log.functions.rootAt(4).call())
    kept = anchors(net)  # one anchor, or several if the four readings entered the log in several steps

    # The operator's key anchors a consistent extension with invented entries: size 8 = node(ours, X).
    invented = secrets.token_bytes(32)
    forged = node_hash(ours, invented)
    operator = net.manifest.account(net.manifest.log["operator_org"])
    transact(net.w3, net.log.functions.anchor(8, forged, [invented]), operator)

    later = gw.submit(5)
    # While this log is still shorter than 8 the anchorer rightly says "beyond_log"; once it holds 8 leaves,
    # the anchored root for 8 is not its own: a fork, said once however often the anchorer retries.
    health = gw.wait("ANCHOR_STUCK (fork)", lambda h: (h["anchor_stuck"] or {}).get("reason") == "fork")
    stuck = health["anchor_stuck"]
    assert (stuck["code"], stuck["chain_size"]) == ("ANCHOR_STUCK", 8)
    assert stuck["chain_root"] == "0x" + forged.hex()
    assert health["anchored_size"] == 4 and health["backlog"] == 5
    assert gw.metric("prov_gw_anchor_stuck") == 1
    fork_lines = [
        r for r in caplog.records if r.levelno == logging.ERROR and "ANCHOR_STUCK (fork)" in r.getMessage()
    ]
    assert len(fork_lines) == 1, [r.getMessage() for r in caplog.records]  # said once, not per retry
    assert net.log.functions.latest().call()[0] == 8

    # The committee votes the bad anchor away; the gateway resumes on its own and anchors its tree of 9.
    void_anchors(net.w3, *committee(net), net.log.address, 4)
    health = gw.wait("anchoring to resume", lambda h: h["anchored_size"] == 9)
    assert health["anchor_stuck"] is None and gw.metric("prov_gw_anchor_stuck") == 0
    now = anchors(net)
    assert now[: len(kept)] == kept  # what was anchored before the fork stays
    grown = [size for size, _ in now[len(kept) :]]
    assert grown and grown == sorted(set(grown)) and grown[0] > 4 and grown[-1] == 9, now
    assert forged not in [root for _, root in now]  # the operator's invented anchor is gone
    assert "ANCHOR_STUCK cleared" in caplog.text

    # And what it anchored verifies against the chain, with the log's key pinned.
    trust = TrustStore.from_dict(net.manifest.trust_dict())
    proofs = GatewayProofs(gw.server.url, token=gw.token)  # the anchors around a checkpoint are checked too
    checker = ChainAnchorChecker.from_rpc(net.manifest.rpc_url, contract=net.log.address, proofs=proofs)
    auth = {"Authorization": f"Bearer {gw.token}"}
    try:
        for record_id in (first[0], later[-1]):
            bundle = gw.http.get(f"/api/v1/records/{record_id}/bundle", headers=auth).json()
            Verifier(trust=trust, anchor_checker=checker).verify(EvidenceBundle.from_dict(bundle))
    finally:
        proofs.close()


def test_a_checkpoint_beyond_the_growth_bound_is_reported(net: Net, tmp_path: Path) -> None:
    # The two readings below are two transactions; had the sequencer signed a checkpoint between them, each
    # anchor would grow by 1 and nothing would be stuck. Checkpoints at most every 5 s put both in one.
    gw = Gateway(net, tmp_path, checkpoint_interval=5.0)
    try:
        _growth_bound(net, gw)
    finally:
        gw.stop()


def _growth_bound(net: Net, gw: Gateway) -> None:
    # A fresh gateway starts a fresh tree; this log is the one the test above recovered, so start from the
    # operator's side: void everything first (the committee may), then bound growth to 1 an anchor.
    if net.log.functions.anchorCount().call():
        void_anchors(net.w3, *committee(net), net.log.address, 0)
    set_max_anchor_growth(net.w3, *committee(net), net.log.address, 1)
    gw.submit(1)
    gw.wait("the first anchor", lambda h: h["anchored_size"] == 1)
    gw.submit(2)  # one step, one checkpoint at 3: two beyond the anchored 1
    stuck = gw.wait("ANCHOR_STUCK", lambda h: h["anchor_stuck"] is not None)["anchor_stuck"]
    assert (stuck["reason"], stuck["chain_size"], stuck["log_size"]) == ("growth", 1, 3)
    set_max_anchor_growth(net.w3, *committee(net), net.log.address, 1_000_000)
    health = gw.wait("anchoring to resume", lambda h: h["anchored_size"] == 3)
    assert health["anchor_stuck"] is None


def test_a_suspended_operator_is_reported_and_resumes_when_reactivated(net: Net, gw: Gateway) -> None:
    registry, members = committee(net)
    if net.log.functions.anchorCount().call():
        void_anchors(net.w3, registry, members, net.log.address, 0)  # this gateway's tree starts afresh
    operator = org_id(net.manifest.log["operator_org"])
    gw.submit(1)
    gw.wait("the first anchor", lambda h: h["anchored_size"] == 1)
    committee_pass(net.w3, registry, members, ProposalKind.SET_ORG_STATUS, operator, False)
    try:
        gw.submit(2)
        stuck = gw.wait("ANCHOR_STUCK", lambda h: h["anchor_stuck"] is not None)["anchor_stuck"]
        assert stuck["reason"] == "refused" and "Unauthorized" in stuck["message"], stuck
    finally:
        committee_pass(net.w3, registry, members, ProposalKind.SET_ORG_STATUS, operator, True)
    health = gw.wait("anchoring to resume", lambda h: h["anchored_size"] == 3)
    assert health["anchor_stuck"] is None
