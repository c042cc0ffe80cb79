"""Whole-log audit and trust export against a real chain (anvil) with the real contracts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from web3 import Web3

from devnet.anvil import start_anvil
from devnet.deploy import OrgSpec, deploy_network
from provenance.audit import check_links, read_anchors
from provenance.contracts import Role, at, transact
from provenance.crypto import SM2PrivateKey
from provenance.log import RecordLog
from provenance.trust import TrustStore


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    engine = start_anvil()
    try:
        out = tmp_path_factory.mktemp("net")
        manifest = deploy_network(
            engine,
            [
                OrgSpec(id="hosp-1", role=Role.HOSPITAL, name="医院"),
                OrgSpec(id="logop", role=Role.LOG_OPERATOR),
            ],
            out_dir=out,
        )
        yield engine, manifest, Web3(Web3.HTTPProvider(engine.rpc_url))
    finally:
        engine.stop()


def test_anchors_extend_each_other_and_a_fork_is_named(net):
    _, manifest, w3 = net
    contract = at(w3, "ProvenanceLog", manifest.contracts["ProvenanceLog"])
    operator = manifest.account("logop")
    honest = RecordLog.in_memory(origin="o", key_name="k", key=SM2PrivateKey.generate())
    for size in (3, 7, 12):
        while honest.size < size:
            honest.tree.append(f"entry {honest.size}".encode())
        transact(w3, contract.functions.anchor(size, honest.tree.root(size)), operator)
    anchors = read_anchors(w3, contract.address)
    assert [a.tree_size for a in anchors] == [3, 7, 12]
    links = check_links(anchors, honest.tree.consistency_proof)
    assert [lk.ok for lk in links] == [True, True]

    # The operator rewrites history: a tree of 15 whose first leaves differ, anchored on top.
    forked = RecordLog.in_memory(origin="o", key_name="k", key=SM2PrivateKey.generate())
    for i in range(15):
        forked.tree.append(f"rewritten {i}".encode())
    transact(w3, contract.functions.anchor(15, forked.tree.root(15)), operator)

    def served(first: int, second: int) -> list[bytes]:
        # Old links keep their honest proofs; for the new one the operator can only offer the fork's.
        tree = honest.tree if second <= 12 else forked.tree
        return tree.consistency_proof(first, second)

    links = check_links(read_anchors(w3, contract.address), served)
    assert [lk.ok for lk in links] == [True, True, False]
    assert links[-1].reason.startswith("fork:")


def test_orgs_export_writes_key_windows(net, tmp_path):
    engine, manifest, _ = net
    out = tmp_path / "trust.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "provenance",
            "orgs",
            "export",
            "--rpc",
            engine.rpc_url,
            "--registry",
            manifest.contracts["OrgRegistry"],
            "--out",
            str(out),
            "--log-key-name",
            "logkey",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    store = TrustStore.load(out)
    assert set(store.orgs) == {"hosp-1", "logop"}
    assert store.orgs["hosp-1"].role == "hospital" and store.orgs["hosp-1"].name == "医院"
    assert store.orgs["hosp-1"].keys[0].pem == manifest.org("hosp-1").public_key
    assert [k.name for k in store.logs] == ["logkey"]
    assert json.loads(out.read_text())["chain"]["registry"] == manifest.contracts["OrgRegistry"]
