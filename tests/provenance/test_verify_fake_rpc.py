"""The second attack on the verifiers, finding 5, end to end on the devnet: a fake JSON-RPC endpoint.

The attacker holds the log key and two witnesses' keys (they collude), makes a fork (a real hospital record
in a tree of its own), signs and cosigns its checkpoint, and serves `provenance verify --rpc` a JSON-RPC
endpoint that proxies the real node but answers for the fork: ``rootAt``, ``anchorCount``, ``anchorAt`` and
the anchor transaction's receipt with an ``Anchored`` event of the fork's (size, root). Before, the verifier
compared the block hash with the bundle's own: "verified", anchor passed.

With the chain's sealing keys pinned (the devnet's trust file, ``chain.validators``), the anchoring block
must be proven the chain's: the sealed header must hash to the bundle's block hash, the seal must verify
under a pinned key, and the receipts served must hash to the sealed receipts root. Without pinned sealing
keys the same lookup is a warning, never "passed".
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from eth_abi.abi import encode as abi_encode
from web3 import Web3

from devnet.deploy import Manifest
from provenance.chain.anchor import ChainAnchorChecker
from provenance.client import Client
from provenance.crypto import SM2PrivateKey
from provenance.errors import AnchorInvalid
from provenance.log.bundle import Anchor, EvidenceBundle
from provenance.log.cosignature import cosign
from provenance.log.record_log import RecordLog
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier
from tests.kit.devnet import run
from tests.kit.gateway import rx_issue

Rewrite = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


@contextmanager
def fake_rpc(upstream: str, rewrite: Rewrite) -> Iterator[str]:
    """A JSON-RPC endpoint that forwards to ``upstream`` and lets ``rewrite(request, answer)`` lie."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests = body if isinstance(body, list) else [body]
            answers = httpx.post(upstream, json=requests, timeout=30).json()
            by_id = {a["id"]: a for a in answers}
            out = [rewrite(r, by_id[r["id"]]) for r in requests]
            data = json.dumps(out if isinstance(body, list) else out[0]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _word(n: int) -> str:
    return f"{n:064x}"


def _verify(bundle: Path, trust: Path, rpc: str, gateway: str) -> tuple[int, dict[str, Any]]:
    r = run(
        "provenance",
        "verify",
        str(bundle),
        "--json",
        "--trust",
        str(trust),
        "--rpc",
        rpc,
        "--gateway",
        gateway,
    )
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def _anchored_bundle(state: Path, gateway: str, tmp_path: Path, tag: str) -> tuple[EvidenceBundle, Path]:
    """A hospital's new prescription record, anchored: its bundle and the file it is written to."""
    with Client.devnet("hospital-1", root=state, gateway=gateway) as hospital:
        p = rx_issue(f"RX-{tag}-{secrets.token_hex(3)}")
        accepted = hospital.submit(hospital.sign(kind="rx.issue", subject=f"rx:{p['id']}", payload=p), p)
        real = hospital.wait_anchored(accepted.id, timeout=60)
    path = tmp_path / "genuine.json"
    path.write_text(real.to_json())
    return real, path


def test_a_fake_rpc_endpoint_cannot_anchor_a_fork(devnet: tuple[Path, str, str], tmp_path: Path) -> None:
    state, gateway, rpc = devnet
    manifest = Manifest.load(state / "manifest.json")
    trust_path = state / "trust.json"
    trust = TrustStore.load(trust_path)
    assert trust.seal_keys, "the devnet's trust file pins the node's sealing keys (chain.validators)"
    w3 = Web3(Web3.HTTPProvider(rpc))

    real, genuine = _anchored_bundle(state, gateway, tmp_path, "FAKE-RPC")
    status, report = _verify(genuine, trust_path, rpc, gateway)
    assert (status, report["verdict"], report["steps"][-1]["status"]) == (0, "verified", "passed"), report

    # The fork: the real record after invented leaves, signed by the log key, cosigned by two witnesses.
    fork = RecordLog.in_memory(
        origin=manifest.log["origin"], key_name=manifest.log["key_name"], key=manifest.log_key()
    )
    for i in range(3):
        fork.tree.append(f"invented {i} {secrets.token_hex(4)}".encode())
    index = fork.append(real.signed)
    cp, note = fork.checkpoint()
    body = note[: note.rindex("\n\n") + 1].encode()
    for w in manifest.witnesses[:2]:
        note += cosign(
            body, w["name"], SM2PrivateKey.from_pem(manifest.resolve(w["key_file"]).read_bytes()), timestamp=1
        )
    assert real.anchor is not None
    operator = manifest.account(manifest.log["operator_org"]).address

    def fork_bundle(anchor: Anchor, name: str) -> Path:
        b = fork.bundle(
            signed=real.signed,
            leaf_index=index,
            signer_public_key_pem=real.signer_public_key,
            note=note,
            tree_size=cp.size,
            payload=real.payload,
            anchor=anchor,
        )
        path = tmp_path / name
        path.write_text(b.to_json())
        return path

    selectors = {
        sig.split("(")[0]: bytes(Web3.keccak(text=sig)[:4]).hex()
        for sig in ("rootAt(uint64)", "anchorCount()", "anchorAt(uint256)")
    }
    real_receipt = w3.provider.make_request("eth_getTransactionReceipt", [real.anchor.tx_hash])["result"]  # type: ignore[arg-type]

    def liar(anchor: Anchor) -> Rewrite:
        """The attacker's endpoint: the contract state and the anchor receipt say what the fork needs."""
        root_word = cp.root.hex()

        def rewrite(req: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
            method, params = req.get("method"), req.get("params") or []
            if method == "eth_call":
                data = str(params[0].get("data") or params[0].get("input"))[2:]
                if data.startswith(selectors["rootAt"]) and int(data[8:], 16) == cp.size:
                    return answer | {"result": "0x" + root_word}
                if data.startswith(selectors["anchorCount"]):
                    return answer | {"result": "0x" + _word(1)}
                if data.startswith(selectors["anchorAt"]):
                    words = abi_encode(
                        ["uint64", "bytes32", "address", "uint64", "uint64"],
                        [cp.size, cp.root, operator, 1_800_000_000, anchor.block_number],
                    )
                    return answer | {"result": "0x" + words.hex()}
            if method == "eth_getTransactionReceipt" and params[0] == anchor.tx_hash:
                r = json.loads(json.dumps(real_receipt))
                r |= {"transactionHash": anchor.tx_hash, "blockHash": anchor.block_hash}
                r["blockNumber"] = hex(anchor.block_number)
                lg = r["logs"][0]
                lg["topics"][1] = "0x" + _word(cp.size)
                lg["data"] = "0x" + root_word + lg["data"][2 + 64 :]
                return answer | {"result": r}
            return answer

        return rewrite

    invented = Anchor(
        chain_id=manifest.chain_id,
        contract=manifest.contracts["ProvenanceLog"],
        tx_hash="0x" + secrets.token_hex(32),
        block_number=real.anchor.block_number,
        block_hash="0x" + secrets.token_hex(32),
        tree_size=cp.size,
        root=cp.root,
    )
    # The smarter lie: the real anchor transaction, its real block, its receipt's event rewritten.
    borrowed = Anchor(
        chain_id=manifest.chain_id,
        contract=manifest.contracts["ProvenanceLog"],
        tx_hash=real.anchor.tx_hash,
        block_number=real.anchor.block_number,
        block_hash=real.anchor.block_hash,
        tree_size=cp.size,
        root=cp.root,
    )
    for anchor, name, reason in (
        (invented, "fork-invented-block.json", f"sealed header of block {invented.block_number} hashes to"),
        (borrowed, "fork-borrowed-block.json", "do not hash to its sealed receipts root"),
    ):
        path = fork_bundle(anchor, name)
        with fake_rpc(rpc, liar(anchor)) as fake:
            # Pinned sealing keys: the fake endpoint's block is not the chain's.
            status, report = _verify(path, trust_path, fake, gateway)
            assert (status, report["failed_step"], report["code"]) == (1, "anchor", "ANCHOR_INVALID"), report
            assert reason in report["message"], report["message"]
            # The SDK's checker, the same.
            checker = ChainAnchorChecker.for_trust(fake, trust)
            try:
                Verifier(trust=trust, anchor_checker=checker).verify(
                    EvidenceBundle.from_json(path.read_text())
                )
                raise AssertionError("the fork verified against the fake endpoint")
            except AnchorInvalid as exc:
                assert reason in exc.message
            # Without pinned sealing keys the fake's word is all there is: a warning, never "passed".
            unpinned = tmp_path / "trust-unpinned.json"
            doc = json.loads(trust_path.read_text())
            del doc["chain"]["validators"]
            unpinned.write_text(json.dumps(doc))
            status, report = _verify(path, unpinned, fake, gateway)
            anchor_step = report["steps"][-1]
            assert status == 0 and anchor_step["status"] == "warning", report
            assert "no sealing keys are pinned" in anchor_step["detail"]


def test_a_block_listing_more_than_its_sealed_gas_paid_for_is_refused(
    devnet: tuple[Path, str, str], tmp_path: Path
) -> None:
    """The seventh attack: an endpoint passing the real node through (real seals) but listing 200,000
    made-up transactions in the anchor's block, each receipt ~1 MB of logs, made `verify --rpc` read and
    hold every receipt before it checked the sealed receipts root (3.8 GB in 110 s, without end). Every
    transaction costs 21,000 gas and every log byte 8: what a block lists, and its receipts' logs, must fit
    the gas its sealed header used, checked as they are read."""
    state, gateway, rpc = devnet
    trust_path = state / "trust.json"
    _, bundle = _anchored_bundle(state, gateway, tmp_path, "GAS")
    made_up = [f"0x{n:064x}" for n in range(1, 2001)]
    fetched: list[str] = []

    def listed(req: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        method, params = req.get("method"), req.get("params") or []
        if method == "eth_getBlockByHash" and isinstance(answer.get("result"), dict):
            result = answer["result"]
            return answer | {"result": result | {"transactions": result["transactions"] + made_up}}
        if method == "eth_getTransactionReceipt":
            fetched.append(params[0])
        return answer

    padding = "0x" + "00" * 200_000

    def padded(req: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        if req.get("method") == "eth_getTransactionReceipt" and isinstance(answer.get("result"), dict):
            fetched.append(req["params"][0])
            logs = answer["result"]["logs"] + [{**answer["result"]["logs"][0], "data": padding}] * 5
            return answer | {"result": answer["result"] | {"logs": logs}}
        return answer

    for rewrite, said in ((listed, "transactions, more than its sealed gas"), (padded, "more logs than")):
        fetched.clear()
        with fake_rpc(rpc, rewrite) as url:
            status, report = _verify(bundle, trust_path, url, gateway)
        step = report["steps"][-1]
        assert (status, report["verdict"], step["step"], step["status"]) == (1, "failed", "anchor", "failed")
        assert said in report["message"], report["message"]
        # refused before reading what the gas could not have paid for: no made-up receipt, one real at most
        assert len(set(fetched)) <= 1 and not set(fetched) & set(made_up), fetched
