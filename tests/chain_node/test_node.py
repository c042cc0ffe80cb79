"""Node behaviour only our engine has: permissioning, precompiles, restart and crash durability."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import Web3RPCError

from devnet import engines
from devnet.embedded import create_address, start_embedded
from devnet.engines import EngineHandle
from provenance.crypto import SM2PrivateKey, sm3
from tests.kit.node_probe import deploy_probe, send, transfer

pytestmark = pytest.mark.embedded_only


def _rpc_error(w3: Web3, raw: bytes) -> dict[str, object]:
    with pytest.raises(Web3RPCError) as exc:
        w3.eth.send_raw_transaction(raw)
    err = exc.value.rpc_response["error"]  # type: ignore[index]
    assert isinstance(err, dict)
    return err


def test_unpermitted_sender_refused(w3: Web3, node: EngineHandle) -> None:
    stranger = Account.create()
    tx = transfer(node, to=node.accounts[0].address, nonce=0)
    err = _rpc_error(w3, stranger.sign_transaction(tx).raw_transaction)
    assert err["code"] == -32003
    assert "not permitted" in str(err["message"])


def test_contract_creation_admins_only(w3: Web3, node: EngineHandle) -> None:
    user = node.accounts[1]  # funded and permitted, not an admin
    nonce = w3.eth.get_transaction_count(user.address, "pending")
    tx = transfer(node, to=None, nonce=nonce, data="0x6000", gas=100_000)
    err = _rpc_error(w3, user.sign_transaction(tx).raw_transaction)
    assert err["code"] == -32010


def test_nonce_errors(w3: Web3, node: EngineHandle) -> None:
    user = node.accounts[5]
    n = w3.eth.get_transaction_count(user.address, "pending")
    base = transfer(node, to=user.address, nonce=n)
    assert "nonce too high" in str(
        _rpc_error(w3, user.sign_transaction({**base, "nonce": n + 5}).raw_transaction)["message"]
    )
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(user.sign_transaction({**base, "nonce": n}).raw_transaction)
    )
    replay = user.sign_transaction({**base, "nonce": n, "value": 1}).raw_transaction  # same nonce, new tx
    assert "nonce too low" in str(_rpc_error(w3, replay)["message"])


def test_sm3_precompile(probe: Contract) -> None:
    for msg in (b"", b"abc", b"x" * 1000):
        assert probe.functions.sm3(msg).call() == sm3(msg)


def test_sm2_verify_precompile(probe: Contract) -> None:
    key = SM2PrivateKey.generate()
    msg = b"prescription rx:42 dispensed"
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(key.sign(msg))
    prefix = key.public_key().raw() + r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert probe.functions.sm2Verify(prefix + msg).call() is True
    assert probe.functions.sm2Verify(prefix + msg + b"!").call() is False
    assert probe.functions.sm2Verify(b"short").call() is False


def test_restart_keeps_state(tmp_path: Path) -> None:
    h = start_embedded(data_dir=tmp_path / "n")
    w3 = Web3(Web3.HTTPProvider(h.rpc_url))
    probe = deploy_probe(w3, h)
    r = send(w3, h.accounts[1], probe.functions.anchor(7, b"\x07" * 32))
    balances = [w3.eth.get_balance(a.address) for a in h.accounts[:3]]
    head = w3.eth.block_number
    h.stop()
    h2 = start_embedded(data_dir=tmp_path / "n")
    try:
        w3 = Web3(Web3.HTTPProvider(h2.rpc_url))
        assert w3.eth.block_number == head
        assert [w3.eth.get_balance(a.address) for a in h2.accounts[:3]] == balances
        assert w3.eth.get_transaction_receipt(r["transactionHash"])["blockHash"] == r["blockHash"]
        probe2 = w3.eth.contract(address=probe.address, abi=probe.abi)
        assert probe2.functions.lastSize().call() == 7
        assert len(probe2.events.Anchored().get_logs(from_block=0)) == 1
        r2 = send(w3, h2.accounts[1], probe2.functions.anchor(8, b"\x08" * 32))  # and the chain goes on
        assert r2["blockNumber"] == head + 1
    finally:
        h2.stop()


def test_kill_9_after_send_loses_nothing(tmp_path: Path) -> None:
    h = start_embedded(data_dir=tmp_path / "n")
    w3 = Web3(Web3.HTTPProvider(h.rpc_url))
    user = h.accounts[2]
    hashes = []
    for i in range(30):
        tx = transfer(h, to=h.accounts[3].address, nonce=i, value=i + 1)
        hashes.append(w3.eth.send_raw_transaction(user.sign_transaction(tx).raw_transaction))
    assert h.process is not None
    os.kill(h.process.pid, signal.SIGKILL)  # right after the last hash came back
    h.process.wait()
    h2 = start_embedded(data_dir=tmp_path / "n")
    try:
        w3 = Web3(Web3.HTTPProvider(h2.rpc_url))
        rcpts = [w3.eth.wait_for_transaction_receipt(x, timeout=30) for x in hashes]
        assert all(r["status"] == 1 for r in rcpts)
        assert w3.eth.get_transaction_count(user.address) == 30
    finally:
        h2.stop()


def test_get_is_refused(node: EngineHandle) -> None:
    assert httpx.get(node.rpc_url).status_code == 405


def test_cors_preflight_and_headers(node: EngineHandle) -> None:
    """A browser page (the /verify page) may call the node: the preflight of a JSON POST is answered and
    the JSON-RPC answer carries Access-Control-Allow-Origin (docs/security.md, the page's chain lookup)."""
    origin = {"origin": "http://127.0.0.1:9"}
    pre = httpx.options(
        node.rpc_url,
        headers={
            **origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "*"
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "content-type" in pre.headers["access-control-allow-headers"].lower()
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    r = httpx.post(node.rpc_url, json=body, headers=origin)
    assert r.status_code == 200 and r.json()["result"].startswith("0x")
    assert r.headers["access-control-allow-origin"] == "*"
    # A refusal is readable by the page too (it can tell a refused request from an unreachable node).
    big = httpx.post(node.rpc_url, content=b"x" * ((5 << 20) + 1), headers=origin)
    assert big.status_code == 413 and big.headers["access-control-allow-origin"] == "*"


def test_permission_contract_hook(tmp_path: Path) -> None:
    """A sender unknown to genesis is accepted once the named contract's isPermitted(sender) is true."""
    admin = engines.test_accounts(1)[0]
    # the genesis names the admin's first deployment (here the probe) as the permission contract
    h = start_embedded(data_dir=tmp_path / "n", accounts=[admin], registry_permits=True)
    try:
        w3 = Web3(Web3.HTTPProvider(h.rpc_url))
        probe = deploy_probe(w3, h)
        assert probe.address == create_address(admin.address, 0)
        stranger = Account.create()
        fund = transfer(h, to=stranger.address, nonce=1, value=10**18)
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(admin.sign_transaction(fund).raw_transaction)
        )
        raw = stranger.sign_transaction(transfer(h, to=admin.address, nonce=0, value=1)).raw_transaction
        assert _rpc_error(w3, raw)["code"] == -32003
        send(w3, admin, probe.functions.setPermitted(stranger.address, True))
        assert w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw))["status"] == 1
    finally:
        h.stop()


def test_block_time_packs_transactions(tmp_path: Path) -> None:
    h = start_embedded(data_dir=tmp_path / "n", block_time=1.0)
    try:
        w3 = Web3(Web3.HTTPProvider(h.rpc_url))
        user = h.accounts[1]
        hashes = []
        for i in range(5):
            tx = transfer(h, to=h.accounts[2].address, nonce=i, value=1)
            hashes.append(w3.eth.send_raw_transaction(user.sign_transaction(tx).raw_transaction))
        blocks = {w3.eth.wait_for_transaction_receipt(x, timeout=10)["blockNumber"] for x in hashes}
        assert len(blocks) <= 2  # one tick's worth (or two if the sends straddled a tick)
    finally:
        h.stop()


def test_dev_rpc_moves_time(w3: Web3) -> None:
    """start_embedded enables the dev RPC (evm_increaseTime, evm_mine) for anvil-style suites."""
    before = w3.eth.get_block("latest")
    provider: Any = w3.provider
    assert "error" not in provider.make_request("evm_increaseTime", [3600])
    assert "error" not in provider.make_request("evm_mine", [])
    after = w3.eth.get_block("latest")
    assert after["number"] == before["number"] + 1 and after["transactions"] == []
    assert after["timestamp"] >= before["timestamp"] + 3600


def test_lone_send_is_mined_before_its_hash_returns(w3: Web3, node: EngineHandle) -> None:
    # A client waiting on each receipt gets its transaction mined at once: the block commit is what
    # makes it durable, so it is already in a block when the hash comes back.
    user = node.accounts[6]
    tx = transfer(node, to=user.address, nonce=w3.eth.get_transaction_count(user.address, "pending"))
    time.sleep(0.1)  # no stream in progress
    h = w3.eth.send_raw_transaction(user.sign_transaction(tx).raw_transaction)
    assert w3.eth.get_transaction(h)["blockNumber"] is not None


def test_same_send_twice_in_one_group_commit(w3: Web3, node: EngineHandle) -> None:
    user = node.accounts[7]
    n = w3.eth.get_transaction_count(user.address, "pending")
    base = transfer(node, to=user.address, nonce=n)
    a, b = (user.sign_transaction({**base, "nonce": n + i}).raw_transaction.to_0x_hex() for i in range(2))
    provider: Any = w3.provider
    resps = provider.make_batch_request([("eth_sendRawTransaction", [raw]) for raw in (a, b, b)])
    results = [r["result"] for r in sorted(resps, key=lambda r: int(r["id"]))]
    assert results[1] == results[2]  # the duplicate waited for the same commit, no "nonce too low"
    for h in results[:2]:
        assert w3.eth.wait_for_transaction_receipt(h)["status"] == 1
    assert w3.eth.get_transaction_count(user.address) == n + 2
