"""The live anchor step against a real chain (anvil) with the real ProvenanceLog contract."""

from __future__ import annotations

from dataclasses import replace

import pytest
from web3 import Web3

from provenance.chain.anchor import ChainAnchorChecker
from provenance.chain.contracts import at, transact
from provenance.crypto import SM2PrivateKey
from provenance.errors import AnchorInvalid, ConsistencyProofMalformed, HistoryInconsistent
from provenance.log.bundle import Anchor
from provenance.log.record_log import RecordLog
from provenance.records import Envelope, sign_envelope
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier
from tests.provenance.anvil_net import anvil_network


@pytest.fixture(scope="module")
def anchored(tmp_path_factory):
    with anvil_network(tmp_path_factory.mktemp("net")) as (engine, manifest):
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
        yield _Anchored((engine, manifest, bundle, cp), log)


class _Anchored(tuple):  # (engine, manifest, bundle, checkpoint), and the log they came from
    def __new__(cls, items, log):
        self = super().__new__(cls, items)
        self.log = log
        return self


def test_anchored_bundle_verifies_online(anchored):
    engine, manifest, bundle, _ = anchored
    trust = TrustStore.from_dict(manifest.trust_dict())
    assert not trust.seal_keys  # anvil seals no block with SM2: nothing proves its answers
    checker = ChainAnchorChecker.from_rpc(engine.rpc_url, contract=manifest.contracts["ProvenanceLog"])
    report: list = []
    Verifier(trust=trust, anchor_checker=checker).verify(bundle, report=report)
    # Held, but on the endpoint's word: a warning, never "passed" (the verdict is about the keys).
    last = report[-1]
    assert (last.step, last.status) == ("anchor", "warning") and "no sealing keys are pinned" in last.detail


def test_pinned_sealing_keys_need_a_sealed_block(anchored):
    """With sealing keys pinned, an endpoint that serves no seal (anvil) cannot prove the anchor."""
    engine, manifest, bundle, cp = anchored
    checker = ChainAnchorChecker.from_rpc(
        engine.rpc_url,
        contract=manifest.contracts["ProvenanceLog"],
        seal_keys=[SM2PrivateKey.generate().public_key()],
    )
    with pytest.raises(AnchorInvalid, match="serves no seal of block"):
        checker.check(bundle.anchor, cp)


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


class _Proofs:
    """A proof source that serves what it is told (the gateway's role in the history check)."""

    def __init__(self, serve):
        self.serve = serve

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return self.serve(first, second)


def test_a_bad_proof_is_the_proof_sources_fault_not_a_fork(anchored):
    """Second attack, finding 8: a gateway serving a padded consistency proof (400,000 hashes) got the
    verdict HISTORY_INCONSISTENT "the log was forked", blaming the log for the gateway's fault. A proof of
    the wrong shape is now CONSISTENCY_PROOF_MALFORMED, naming the proof source; a well-formed proof that
    does not verify is HISTORY_INCONSISTENT without claiming to know which is at fault."""
    engine, manifest, bundle, cp = anchored
    log = anchored.log
    w3 = Web3(Web3.HTTPProvider(engine.rpc_url))
    contract = at(w3, "ProvenanceLog", manifest.contracts["ProvenanceLog"])
    if log.tree.size == cp.size:  # a later anchor that extends the bundle's: the check has a link to prove
        for i in range(3):
            log.tree.append(f"later {i}".encode())
        proof = log.tree.consistency_proof(cp.size, log.tree.size)
        transact(
            w3, contract.functions.anchor(log.tree.size, log.tree.root(), proof), manifest.account("logop")
        )
    good = log.tree.consistency_proof(cp.size, log.tree.size)

    def check(serve):
        return ChainAnchorChecker.from_rpc(
            engine.rpc_url, contract=manifest.contracts["ProvenanceLog"], proofs=_Proofs(serve)
        ).check(bundle.anchor, cp)

    assert "no sealing keys" in check(lambda a, b: good)  # held: the link verifies (a warning: anvil)
    with pytest.raises(ConsistencyProofMalformed, match="malformed consistency proof") as info:
        check(lambda a, b: good * 3)
    assert info.value.code == "CONSISTENCY_PROOF_MALFORMED" and "forked" not in info.value.message
    with pytest.raises(ConsistencyProofMalformed):
        check(lambda a, b: [h[:31] for h in good])
    with pytest.raises(HistoryInconsistent, match="not shown to be one history") as wrong:
        check(lambda a, b: [bytes(32)] * len(good))
    assert wrong.value.code == "HISTORY_INCONSISTENT"
    assert "proof source serving a wrong proof" in wrong.value.message
