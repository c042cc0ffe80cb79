"""The live anchor step against a real chain (anvil) with the real ProvenanceLog contract."""

from __future__ import annotations

from dataclasses import replace

import pytest
from web3 import Web3

from devnet.anvil import start_anvil
from devnet.deploy import deploy_network
from devnet.governance import OrgSpec
from provenance.chain.anchor import ChainAnchorChecker
from provenance.chain.contracts import Role, at, transact
from provenance.crypto import SM2PrivateKey
from provenance.errors import AnchorInvalid
from provenance.log.bundle import Anchor
from provenance.log.record_log import RecordLog
from provenance.records import Envelope, sign_envelope
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier


@pytest.fixture(scope="module")
def anchored(tmp_path_factory):
    engine = start_anvil()
    try:
        out = tmp_path_factory.mktemp("net")
        manifest = deploy_network(
            engine,
            [OrgSpec(id="hosp-1", role=Role.HOSPITAL), OrgSpec(id="logop", role=Role.LOG_OPERATOR)],
            out_dir=out,
        )
        w3 = Web3(Web3.HTTPProvider(engine.rpc_url))
        log = RecordLog.in_memory(
            origin=manifest.log["origin"], key_name=manifest.log["key_name"], key=manifest.log_key()
        )
        key: SM2PrivateKey = manifest.sm2_key("hosp-1")
        signed = [
            sign_envelope(
                Envelope.create(kind="rx.issue", subject=f"rx:{i}", org="hosp-1", payload={"i": i}), key
            )
            for i in range(5)
        ]
        for s in signed:
            log.append(s)
        cp, note = log.checkpoint()
        contract = at(w3, "ProvenanceLog", manifest.contracts["ProvenanceLog"])
        receipt = transact(w3, contract.functions.anchor(cp.size, cp.root, []), manifest.account("logop"))
        anchor = Anchor(
            chain_id=engine.chain_id,
            contract=contract.address,
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            block_number=receipt["blockNumber"],
            block_hash=receipt["blockHash"].to_0x_hex(),
            tree_size=cp.size,
            root=cp.root,
        )
        bundle = log.bundle(
            signed=signed[2],
            leaf_index=2,
            signer_public_key_pem=key.public_key_pem().decode(),
            note=note,
            tree_size=cp.size,
            payload={"i": 2},
            anchor=anchor,
        )
        yield engine, manifest, bundle, cp
    finally:
        engine.stop()


def test_anchored_bundle_verifies_online(anchored):
    engine, manifest, bundle, _ = anchored
    trust = TrustStore.from_dict(manifest.trust_dict())
    checker = ChainAnchorChecker.from_rpc(engine.rpc_url, contract=manifest.contracts["ProvenanceLog"])
    report: list = []
    Verifier(trust=trust, anchor_checker=checker).verify(bundle, report=report)
    assert [(r.step, r.status) for r in report][-1] == ("anchor", "passed")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"chain_id": 1}, "chain 1"),
        ({"block_number": 1}, "another block"),
        ({"tx_hash": "0x" + "ab" * 32}, "not on chain"),
        ({"contract": "0x" + "12" * 20}, "not the pinned"),
    ],
)
def test_anchor_lies_are_caught(anchored, change, reason):
    engine, manifest, bundle, cp = anchored
    checker = ChainAnchorChecker.from_rpc(engine.rpc_url, contract=manifest.contracts["ProvenanceLog"])
    with pytest.raises(AnchorInvalid, match=reason):
        checker.check(replace(bundle.anchor, **change), cp)


def test_unanchored_size_and_conflicting_root(anchored):
    engine, _, bundle, cp = anchored
    checker = ChainAnchorChecker.from_rpc(engine.rpc_url)
    with pytest.raises(AnchorInvalid, match="not anchored"):
        checker.check(bundle.anchor, replace(cp, size=cp.size + 1))
    with pytest.raises(AnchorInvalid, match="different root"):
        checker.check(bundle.anchor, replace(cp, root=b"\x01" * 32))


def test_chain_unreachable_is_an_anchor_failure(anchored):
    _, _, bundle, cp = anchored
    checker = ChainAnchorChecker.from_rpc("http://127.0.0.1:9", timeout=2)
    with pytest.raises(AnchorInvalid, match="cannot look the anchor up"):
        checker.check(bundle.anchor, cp)
