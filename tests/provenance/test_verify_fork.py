"""Issue 25, finding 1, end to end on a devnet of its own: the log operator forks history and anchors it,
and no verifier given the chain accepts the fork.

The operator holds the log key and an account of the log operator organisation. It builds a tree of its
own (its own prescription, signed with its registered organisation key, then real records reordered),
signs the checkpoint with the log key, and anchors (size, root) on chain above the real anchors. It may
also serve consistency proofs of its fork, as a gateway it runs would. Then:
- its own prescription fails the signer step wherever its role is pinned (a log operator may not issue);
- a real hospital record inside the fork fails the anchor step given the chain: the anchored checkpoint is
  not on one history with the anchor before it (HISTORY_INCONSISTENT with the fork's proofs; no proof
  from the real gateway; none without a proof source);
- offline the same bundle is never shown with a passed anchor (only "not checked").
With a ``ProvenanceLog`` that checks consistency on chain the fork is not anchored at all, and the fork
bundle fails its anchor step for that reason: the test accepts either refusal, never a pass.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from web3 import Web3

from provenance.chain.anchor import ChainAnchorChecker
from provenance.chain.contracts import ContractReverted, at, transact
from provenance.client import Client, GatewayProofs
from provenance.errors import AnchorInvalid, HistoryInconsistent, SignerRoleForbidden
from provenance.log.bundle import Anchor, EvidenceBundle
from provenance.log.record_log import RecordLog
from provenance.manifest import Manifest
from provenance.records import Envelope, SignedRecord, sign_envelope
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier
from tests.kit.devnet import run, running_devnet
from tests.kit.gateway import rx_issue


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    # Its own devnet: the fork stops the real anchorer (every later real anchor is smaller than the fork).
    with running_devnet(tmp_path_factory.mktemp("forknet") / "state") as devnet:
        yield devnet


class _ForkProofs(BaseHTTPRequestHandler):
    """The operator's gateway: consistency proofs computed on its fork."""

    tree: Any = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        q = parse_qs(urlsplit(self.path).query)
        proof = self.tree.consistency_proof(int(q["first"][0]), int(q["second"][0]))
        body = json.dumps({"proof": [base64.b64encode(h).decode() for h in proof]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _verify(bundle: Path, *args: str) -> tuple[int, dict[str, Any]]:
    r = run("provenance", "verify", str(bundle), "--json", *args)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def _anchor_fork(w3: Web3, manifest: Manifest, log: RecordLog) -> dict[str, Any] | None:
    """Anchor the fork's (size, root) as the operator; the receipt, or None if the contract refused it."""
    contract = at(w3, "ProvenanceLog", manifest.contracts["ProvenanceLog"])
    operator = manifest.account(manifest.log["operator_org"])
    size, root = log.tree.size, log.tree.root()
    inputs = contract.get_function_by_name("anchor").abi["inputs"]
    if len(inputs) == 2:  # a ProvenanceLog that takes any root above the latest size
        return dict(transact(w3, contract.functions.anchor(size, root), operator))
    # A ProvenanceLog that checks a consistency proof from the latest anchor: the fork has none to give.
    latest = contract.functions.latest().call()
    proof = log.tree.consistency_proof(int(latest[0]), size)
    with pytest.raises(ContractReverted):
        transact(w3, contract.functions.anchor(size, root, proof), operator)
    return None


def test_the_log_operators_fork_is_refused_given_the_chain(
    net: tuple[Path, str, str], tmp_path: Path
) -> None:
    state, gateway, rpc = net
    manifest = Manifest.load(state / "manifest.json")
    w3 = Web3(Web3.HTTPProvider(rpc))

    # Real records, anchored; the trust file pins everything from the chain (orgs export's defaults).
    with Client.devnet("hospital-1", root=state, gateway=gateway) as hospital:
        real: list[EvidenceBundle] = []
        for _ in range(3):
            payload = rx_issue(f"RX-FORK-{secrets.token_hex(3)}")
            signed = hospital.sign(kind="rx.issue", subject=f"rx:{payload['id']}", payload=payload)
            real.append(hospital.wait_anchored(hospital.submit(signed, payload).id, timeout=60))
    trust = tmp_path / "trust.json"
    contracts = manifest.contracts
    exported = run(
        *("provenance", "orgs", "export", "--rpc", rpc, "--registry", contracts["OrgRegistry"]),
        *("--gateway", gateway, "--out", str(trust)),
    )
    assert exported.returncode == 0, exported.stderr
    genuine = tmp_path / "genuine.json"
    genuine.write_text(real[-1].to_json())
    status, report = _verify(genuine, "--trust", str(trust), "--rpc", rpc, "--gateway", gateway)
    assert (status, report["verdict"]) == (0, "verified"), report
    assert report["steps"][-1] == {"step": "anchor", "status": "passed", "detail": ""}

    # The fork: the operator's own prescription (its registered key is the log key), then the real records
    # reordered, padded above the latest anchored size; signed with the log key and anchored.
    key = manifest.log_key()
    operator_org = manifest.log["operator_org"]
    payload = rx_issue(f"RX-FORK-OWN-{secrets.token_hex(3)}") | {"note": "another drug, another quantity"}
    own = sign_envelope(
        Envelope.create(kind="rx.issue", subject=f"rx:{payload['id']}", org=operator_org, payload=payload),
        key,
    )
    fork = RecordLog.in_memory(origin=manifest.log["origin"], key_name=manifest.log["key_name"], key=key)
    records: list[tuple[SignedRecord, Any]] = [(own, payload)] + [
        (b.signed, b.payload) for b in reversed(real)
    ]
    for signed, _ in records:
        fork.append(signed)
    latest = int(at(w3, "ProvenanceLog", contracts["ProvenanceLog"]).functions.latest().call()[0])
    while fork.tree.size <= latest + 5:
        fork.tree.append(f"padding {fork.tree.size}".encode())
    receipt = _anchor_fork(w3, manifest, fork)
    cp, note = fork.checkpoint()
    anchor = Anchor(
        chain_id=manifest.chain_id,
        contract=contracts["ProvenanceLog"],
        tx_hash=receipt["transactionHash"].to_0x_hex() if receipt else "0x" + "ab" * 32,
        block_number=receipt["blockNumber"] if receipt else 1,
        block_hash=receipt["blockHash"].to_0x_hex() if receipt else "0x" + "cd" * 32,
        tree_size=cp.size,
        root=cp.root,
    )

    def fork_bundle(index: int, name: str) -> Path:
        signed, body = records[index]
        pem = (key if index == 0 else manifest.sm2_key("hospital-1")).public_key_pem().decode()
        b = fork.bundle(
            signed=signed,
            leaf_index=index,
            signer_public_key_pem=pem,
            note=note,
            tree_size=cp.size,
            payload=body,
            anchor=anchor,
        )
        path = tmp_path / name
        path.write_text(b.to_json())
        return path

    # The operator's own prescription: a log operator may not issue one (offline already, and online).
    own_path = fork_bundle(0, "fork-own.json")
    for extra in ((), ("--rpc", rpc, "--gateway", gateway)):
        status, report = _verify(own_path, "--trust", str(trust), *extra)
        assert (status, report["failed_step"], report["code"]) == (1, "signer", "ROLE_FORBIDDEN"), report

    # A real hospital record inside the fork: every online verification refuses it in the anchor step.
    moved = fork_bundle(1, "fork-real-record.json")
    proofs = ThreadingHTTPServer(("127.0.0.1", 0), type("Fork", (_ForkProofs,), {"tree": fork.tree}))
    threading.Thread(target=proofs.serve_forever, daemon=True).start()
    operators_gateway = f"http://127.0.0.1:{proofs.server_address[1]}"
    try:
        for source, code in (
            (operators_gateway, "HISTORY_INCONSISTENT" if receipt else "ANCHOR_INVALID"),
            (gateway, "ANCHOR_INVALID"),  # the real log has no tree of that size to prove anything from
            (None, "ANCHOR_INVALID"),  # no proof source: the fork cannot be shown to be on the history
        ):
            args = ("--trust", str(trust), "--rpc", rpc) + (("--gateway", source) if source else ())
            status, report = _verify(moved, *args)
            assert (status, report["failed_step"], report["code"]) == (1, "anchor", code), (source, report)

        # The SDK's verifier, the same.
        store = TrustStore.load(trust)
        checker = ChainAnchorChecker.from_rpc(
            rpc,
            contract=store.provenance_log,
            chain_id=store.chain_id,
            proofs=GatewayProofs(operators_gateway),
        )
        with pytest.raises(HistoryInconsistent if receipt else AnchorInvalid):
            Verifier(trust=store, anchor_checker=checker).verify(EvidenceBundle.from_json(moved.read_text()))
        with pytest.raises(SignerRoleForbidden):
            Verifier(trust=store, anchor_checker=checker).verify(
                EvidenceBundle.from_json(own_path.read_text())
            )
    finally:
        proofs.shutdown()
        proofs.server_close()

    # Offline nothing can see the fork, and nothing claims to have: the anchor is "not checked".
    status, report = _verify(moved, "--trust", str(trust))
    assert status == 0 and {s["step"]: s["status"] for s in report["steps"]}["anchor"] == "skipped", report
