"""Log key rotation without a verification gap (docs/ops/log-key-rotation.md): the committee registers the
next key for the log operator in OrgRegistry, the gateway signs every checkpoint and receipt with both keys
during the overlap, then with the new key only, and the committee revokes the old key as of the switch; a
trust file exported from the chain after that verifies the records of before, during and after the rotation,
and refuses a checkpoint (or receipt) signed only by the retired key for a record dated after its end.

It runs on a gateway of its own (its own ProvenanceLog and, on PostgreSQL, its own database) whose log key is
a fresh key of the log operator that no other gateway signs with, so the test can revoke it on chain: the
session's ``harness`` is never restarted and its log key stays valid. The keys it registers stay in the
shared OrgRegistry (the node's permissions read that one): trust files exported afterwards pin them too and
verify as before."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3 import Web3

from devnet.engines import EngineHandle
from devnet.governance import register_key, revoke_key
from provenance.chain.anchor import ChainAnchorChecker
from provenance.chain.contracts import at
from provenance.chain.registry import read_trust
from provenance.cli.monitor import http_fetch
from provenance.client import Api, Client, GatewayProofs
from provenance.crypto import SM2PrivateKey
from provenance.errors import CheckpointInvalid, ReceiptInvalid
from provenance.files import write_private
from provenance.log.bundle import EvidenceBundle
from provenance.log.checkpoint import open_note, parse_note, sign_checkpoint
from provenance.log.receipt import parse_receipt, sign_receipt, verify_receipt
from provenance.manifest import Manifest
from provenance.verification.monitor import Monitor
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier
from tests.kit.gateway import Harness, Server, new_rx_id, rx_issue
from tests.kit.network import start_harness, variant_network

RECEIPTS: dict[str, str] = {}


@dataclasses.dataclass
class Rotating:
    harness: Harness
    key: SM2PrivateKey  # the log key it starts with: a key of the log operator only this gateway signs with
    index: int  # its index among the log operator's keys in OrgRegistry


def _committee(h: Harness) -> tuple[Web3, Any, list[Any]]:
    w3 = Web3(Web3.HTTPProvider(h.network.rpc_url))
    return w3, at(w3, "OrgRegistry", h.network.contracts["OrgRegistry"]), h.engine.accounts[1:4]


@pytest.fixture
def rotating(
    deployed: Manifest, engine: EngineHandle, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rotating]:
    """A gateway of its own to restart with other log keys (never the session's ``harness``)."""
    net = variant_network(deployed, engine, f"log-key-{backend}")
    tmp = tmp_path_factory.mktemp("log-key")
    key, path = SM2PrivateKey.generate(), tmp / "log.sm2.pem"
    write_private(path, key.to_pem())
    w3 = Web3(Web3.HTTPProvider(net.rpc_url))
    registry = at(w3, "OrgRegistry", net.contracts["OrgRegistry"])
    operator = net.log["operator_org"]
    index = register_key(w3, registry, engine.accounts[1:4], operator, key.public_key().raw(), valid_from=1)
    h = start_harness(net, engine, backend, tmp, pg_suffix="log_key", log_key_path=path)
    yield Rotating(h, key, index)
    h.server.stop()
    h.http.close()


def _submit(harness: Harness) -> str:
    r = harness.client("hospital-1").submit("rx.issue", rx_issue(new_rx_id()))
    assert r.status_code == 202, r.text
    rid: str = r.json()["id"]
    RECEIPTS[rid] = r.json()["receipt"]
    harness.wait_status(rid, "anchored", timeout=30)
    return rid


def _bundle(harness: Harness, rid: str) -> EvidenceBundle:
    return EvidenceBundle.from_dict(harness.client("auditor").get(f"/api/v1/records/{rid}/bundle").json())


def _restart(harness: Harness, **settings: object) -> None:
    harness.http.close()
    harness.server.stop()
    harness.server = Server(harness.settings.model_copy(update=settings))
    harness.http = httpx.Client(base_url=harness.server.url, timeout=30)


def test_log_key_rotation_has_no_verification_gap(rotating: Rotating, tmp_path: Path) -> None:
    harness, old_key = rotating.harness, rotating.key
    network = harness.network
    w3, registry, committee = _committee(harness)
    operator = network.log["operator_org"]
    new_key = SM2PrivateKey.generate()
    new_path = tmp_path / "log.next.sm2.pem"
    write_private(new_path, new_key.to_pem())

    before = _submit(harness)
    # The committee adds the next key for the log operator, valid from now.
    register_key(
        w3, registry, committee, operator, new_key.public_key().raw(), valid_from=int(time.time()) - 1
    )
    _restart(harness, log_key_next_path=new_path)  # overlap: both keys sign
    during = _submit(harness)
    overlap = _bundle(harness, during)  # its checkpoint as served during the overlap
    lines = parse_note(overlap.checkpoint)[1]
    assert len(lines) == 2 and {s.key_name for s in lines} == {network.log["key_name"]}
    switch = datetime.now(UTC)
    time.sleep(1.1)
    _restart(harness, log_key_path=new_path, log_key_next_path=None)  # the switch: the new key only
    # The committee retires the old key as of the switch (REVOKE_KEY, a time in the past is allowed).
    ended = math.ceil(switch.timestamp())
    revoke_key(w3, registry, committee, operator, rotating.index, ended)
    after = _submit(harness)
    assert len(parse_note(_bundle(harness, after).checkpoint)[1]) == 1

    # A trust file exported from the chain after the rotation: both keys of the log operator, windows.
    with Client(base_url=harness.server.url) as client:
        trust = read_trust(
            w3,
            network.contracts["OrgRegistry"],
            provenance_log=network.contracts["ProvenanceLog"],
            note_for=lambda size: Api.note(client.checkpoint(size)),
        )
    trust = TrustStore.from_dict(trust.to_dict())  # as written to and read from the file
    assert {k.public_key for k in trust.logs} >= {old_key.public_key(), new_key.public_key()}
    (old,) = [k for k in trust.logs if k.public_key == old_key.public_key()]
    assert old.revoked_at is not None and old.revoked_at.timestamp() == ended  # read from OrgRegistry
    proofs = GatewayProofs(harness.server.url, token=harness.tokens["auditor"])
    try:
        checker = ChainAnchorChecker.from_rpc(
            network.rpc_url, contract=network.contracts["ProvenanceLog"], proofs=proofs
        )
        for rid in (before, during, after):  # pinned keys, anchor looked up on chain
            Verifier(trust=trust, anchor_checker=checker).verify(_bundle(harness, rid))
    finally:
        proofs.close()
    for rid in (before, during, after):  # and their acceptance receipts, signed by whichever key(s)
        assert verify_receipt(RECEIPTS[rid], trust, record_id=rid).record_id == rid
    assert [len(open_note(RECEIPTS[r])[1]) for r in (before, during, after)] == [1, 2, 1]
    # The log's monitor (`provenance audit log`) follows the served tiles with that trust file.
    headers = {"Authorization": f"Bearer {harness.tokens['auditor']}"}
    with httpx.Client(base_url=f"{harness.server.url}/tiles", timeout=30, headers=headers) as tiles:
        step = Monitor(fetch=http_fetch(tiles), trust=trust).step()
        assert not step.problems and step.size >= _bundle(harness, after).tree_size
    served = TrustStore.from_dict(harness.http.get("/api/v1/orgs").json())  # the gateway's trust document
    assert {k.public_key for k in served.logs} == {k.public_key for k in trust.logs}
    for rid in (before, during, after):
        verify_receipt(RECEIPTS[rid], served, record_id=rid)

    # During the overlap either key alone verifies: a verifier that pins only one of them (an old trust file,
    # or one that already dropped the old key) accepts the overlap's checkpoint and receipt.
    for only in (old_key, new_key):
        single = dataclasses.replace(trust, logs=[k for k in trust.logs if k.public_key == only.public_key()])
        Verifier.offline(single, require_anchor=False).verify(overlap)
        assert verify_receipt(RECEIPTS[during], single, record_id=during).record_id == during

    # The old key retired at the switch: a checkpoint of a record dated after that, signed by the old key
    # alone, is refused; with a trust file exported before the revocation (no end) it verifies.
    trust_after = trust
    trust = dataclasses.replace(
        trust, logs=[dataclasses.replace(k, revoked_at=None) if k is old else k for k in trust.logs]
    )
    b = _bundle(harness, after)
    forged = dataclasses.replace(
        b, checkpoint=sign_checkpoint(parse_note(b.checkpoint)[0], network.log["key_name"], old_key)
    )
    Verifier.offline(trust_after, require_anchor=False).verify(b)  # the new key's note still holds
    with pytest.raises(CheckpointInvalid) as refused:
        Verifier.offline(trust_after, require_anchor=False).verify(forged)
    assert refused.value.code == "CHECKPOINT_INVALID"
    # The same note verifies while the old key has no end: the window is what refuses it.
    Verifier.offline(trust, require_anchor=False).verify(forged)
    # So is a receipt the retired key alone signs for a record accepted after its end.
    forged_receipt = sign_receipt(parse_receipt(RECEIPTS[after]), network.log["key_name"], old_key)
    assert verify_receipt(RECEIPTS[after], trust_after, record_id=after).record_id == after
    with pytest.raises(ReceiptInvalid) as refused_receipt:
        verify_receipt(forged_receipt, trust_after, record_id=after)
    assert refused_receipt.value.details["check"] == "signature"
    assert verify_receipt(forged_receipt, trust, record_id=after).record_id == after
    # A record dated before the switch still verifies with the old key's note (no verification gap).
    old_b = _bundle(harness, before)
    old_note = sign_checkpoint(parse_note(old_b.checkpoint)[0], network.log["key_name"], old_key)
    Verifier.offline(trust_after, require_anchor=False).verify(
        dataclasses.replace(old_b, checkpoint=old_note)
    )
