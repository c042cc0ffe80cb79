"""JSON-RPC surface through unmodified web3.py: deploy, transact, events, logs, errors, batches."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from eth_utils import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from devnet.engines import EngineHandle
from tests.kit.node_probe import send


def _post(node: EngineHandle, body: bytes | str) -> object:
    return httpx.post(node.rpc_url, content=body, headers={"content-type": "application/json"}).json()


def test_basic_methods(w3: Web3, node: EngineHandle) -> None:
    assert w3.eth.chain_id == node.chain_id
    assert w3.net.version == str(node.chain_id)
    assert w3.client_version.startswith("shancheng-node/")
    assert w3.eth.accounts == []
    assert w3.eth.syncing is False
    assert w3.eth.gas_price > 0
    assert w3.eth.max_priority_fee > 0
    latest = w3.eth.get_block("latest")
    assert latest["baseFeePerGas"] > 0
    hist = w3.eth.fee_history(1, "latest", [50])
    assert len(hist["baseFeePerGas"]) == 2


def test_deploy_transact_events_and_logs(w3: Web3, node: EngineHandle, probe: Contract) -> None:
    admin, user = node.accounts[0], node.accounts[1]
    assert w3.eth.get_code(probe.address) != b""
    rcpts = [send(w3, user, probe.functions.anchor(i, bytes([i]) * 32)) for i in range(1, 4)]
    assert all(r["status"] == 1 for r in rcpts)
    events = probe.events.Anchored().process_receipt(rcpts[-1])
    assert events[0]["args"]["size"] == 3 and events[0]["args"]["by"] == user.address
    assert probe.functions.lastSize().call() == 3
    assert probe.functions.count().call() == 3
    # historical eth_call (block parameter) sees the state of that block
    assert probe.functions.lastSize().call(block_identifier=rcpts[0]["blockNumber"]) == 1
    # get_logs: by address+topic0, by indexed arg, by block range
    start = rcpts[0]["blockNumber"]
    all_logs = probe.events.Anchored().get_logs(from_block=start)
    assert [e["args"]["size"] for e in all_logs] == [1, 2, 3]
    only2 = probe.events.Anchored().get_logs(from_block=start, argument_filters={"size": 2})
    assert [e["args"]["size"] for e in only2] == [2]
    sig = keccak(text="Anchored(uint256,bytes32,address,uint256)")
    raw = w3.eth.get_logs({"fromBlock": start, "toBlock": rcpts[1]["blockNumber"], "topics": [sig]})
    assert len(raw) == 2
    by_user = w3.eth.get_logs(
        {
            "fromBlock": 0,
            "address": probe.address,
            "topics": [None, None, None, "0x" + "00" * 12 + user.address[2:]],
        }
    )
    assert len(by_user) == 3
    by_admin = w3.eth.get_logs(
        {"fromBlock": 0, "topics": [sig, None, None, "0x" + "00" * 12 + admin.address[2:].lower()]}
    )
    assert by_admin == []
    # receipts and transactions served back consistently
    tx = w3.eth.get_transaction(rcpts[0]["transactionHash"])
    assert tx["blockNumber"] == rcpts[0]["blockNumber"] and tx["from"] == user.address
    block = w3.eth.get_block(rcpts[0]["blockNumber"], full_transactions=True)
    assert block["transactions"][0]["hash"] == rcpts[0]["transactionHash"]
    assert block["transactions"][0] == tx  # the stored transaction, spliced in whole
    plain = w3.eth.get_block(block["number"])
    assert [t["hash"] for t in block["transactions"]] == plain["transactions"]
    assert {k: v for k, v in block.items() if k != "transactions"} == {
        k: v for k, v in plain.items() if k != "transactions"
    }
    assert w3.eth.get_block(block["hash"])["number"] == block["number"]
    assert w3.eth.get_storage_at(probe.address, 0) == (1 * 0 + 3).to_bytes(32, "big")


def test_legacy_transaction(w3: Web3, node: EngineHandle) -> None:
    a, b = node.accounts[2], node.accounts[3]
    before = w3.eth.get_balance(b.address)
    tx = {
        "to": b.address,
        "value": 12345,
        "gas": 21000,
        "gasPrice": w3.eth.gas_price,
        "chainId": node.chain_id,
    }
    tx["nonce"] = w3.eth.get_transaction_count(a.address, "pending")
    r = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(a.sign_transaction(tx).raw_transaction)
    )
    assert r["status"] == 1 and r["type"] == 0
    assert w3.eth.get_balance(b.address) == before + 12345


def test_reverts_decode_in_web3(w3: Web3, probe: Contract) -> None:
    with pytest.raises(ContractCustomError) as custom:
        probe.functions.failCustom(3).call()
    assert custom.value.data == probe.encode_abi("TooSmall", [3, 10])
    with pytest.raises(ContractLogicError, match="probe: nope"):
        probe.functions.failString().call()
    with pytest.raises(ContractLogicError, match="probe: nope"):
        probe.functions.failString().estimate_gas()


def test_simulated_calls_leave_no_trace(w3: Web3, node: EngineHandle, probe: Contract) -> None:
    """eth_call and eth_estimateGas run in one state kept per head: each must see the head exactly,
    never what an earlier simulation wrote (storage, counters, events, nonces, balances)."""
    user = node.accounts[5]
    send(w3, user, probe.functions.anchor(7, b"\x07" * 32))
    head = w3.eth.block_number
    before = (probe.functions.lastSize().call(), probe.functions.count().call())
    nonce, balance = w3.eth.get_transaction_count(user.address), w3.eth.get_balance(user.address)
    for i in range(3):
        fn = probe.functions.anchor(1000 + i, b"\xee" * 32)
        assert fn.estimate_gas({"from": user.address}) > 21_000
        fn.call({"from": user.address})  # a state-changing call, simulated
        probe.functions.setPermitted(user.address, True).call({"from": user.address})
        with pytest.raises(ContractLogicError, match="probe: nope"):
            probe.functions.failString().estimate_gas({"from": user.address})
        assert (probe.functions.lastSize().call(), probe.functions.count().call()) == before
        assert probe.functions.isPermitted(user.address).call() is False
    assert w3.eth.block_number == head
    assert w3.eth.get_transaction_count(user.address) == nonce
    assert w3.eth.get_balance(user.address) == balance
    # the gas a simulation measured is what the real transaction uses
    fn = probe.functions.anchor(8, b"\x08" * 32)
    est = fn.estimate_gas({"from": user.address})
    rcpt = send(w3, user, fn)
    assert rcpt["gasUsed"] <= est < rcpt["gasUsed"] + 25_000
    assert (probe.functions.lastSize().call(), probe.functions.count().call()) == (8, before[1] + 1)


def _send_with_gas(w3: Web3, account: Any, fn: Any, gas: int) -> Any:
    tx = fn.build_transaction(
        {
            "from": account.address,
            "gas": gas,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        }
    )
    return w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    )


def test_estimate_is_enough_and_tight(w3: Web3, node: EngineHandle, probe: Contract) -> None:
    """A transaction given exactly the estimate succeeds, whatever makes its gas need differ from what one
    run used: a cheap SSTORE near the end (EIP-2200's 2300 floor), code reading gasleft(), a sub-call (to
    the SM3 precompile) with its 63/64 rule; the plain case gets its measured need, no more."""
    user = node.accounts[6]
    send(w3, user, probe.functions.anchor(1, b"\x01" * 32))  # slots non-zero: later writes are cheap
    cases = {
        "anchor": probe.functions.anchor(2, b"\x02" * 32),
        "rewrite": probe.functions.rewrite(5),
        "spendIfRich": probe.functions.spendIfRich(3),
        "sm3": probe.functions.sm3(b"abc"),
        "setPermitted": probe.functions.setPermitted(user.address, True),
    }
    used = {}
    for name, fn in cases.items():
        est = fn.estimate_gas({"from": user.address})
        rcpt = _send_with_gas(w3, user, fn, est)
        assert rcpt["status"] == 1, f"{name}: the estimate {est} was not enough"
        used[name] = (est, rcpt["gasUsed"])
    est, gas_used = used["anchor"]
    assert est == gas_used  # one run, exact: no refunds, nothing gas-dependent
    # rewrite really is the hard case: exactly the gas it uses runs out at its second SSTORE
    est, gas_used = used["rewrite"]
    assert est > gas_used
    assert _send_with_gas(w3, user, probe.functions.rewrite(5), gas_used)["status"] == 0


def test_pending_nonce_and_many_in_flight(w3: Web3, node: EngineHandle, probe: Contract) -> None:
    user = node.accounts[4]
    base = w3.eth.get_transaction_count(user.address, "pending")
    raws = []
    for i in range(20):
        tx = probe.functions.anchor(100 + i, b"\x01" * 32).build_transaction(
            {"from": user.address, "nonce": base + i, "gas": 120_000}
        )
        raws.append(user.sign_transaction(tx).raw_transaction)
    # One JSON-RPC batch (web3.py refuses sends inside its batch helper): all arrive together, so the
    # miner packs them into few blocks.
    provider: Any = w3.provider
    resps = provider.make_batch_request([("eth_sendRawTransaction", [raw.to_0x_hex()]) for raw in raws])
    hashes = [HexBytes(r["result"]) for r in sorted(resps, key=lambda r: int(r["id"]))]
    assert w3.eth.get_transaction_count(user.address, "pending") >= base + 1
    rcpts = [w3.eth.wait_for_transaction_receipt(h) for h in hashes]
    assert all(r["status"] == 1 for r in rcpts)
    assert [r["transactionHash"] for r in rcpts] == list(hashes)
    assert w3.eth.get_transaction_count(user.address) == base + 20
    assert len({r["blockNumber"] for r in rcpts}) < 20  # batched: several per block


def test_batch_requests(w3: Web3, node: EngineHandle) -> None:
    with w3.batch_requests() as batch:
        batch.add(w3.eth.get_block(0))
        batch.add(w3.eth.get_balance(node.accounts[0].address))
        results = batch.execute()
    assert results[0]["number"] == 0 and results[1] > 0
    out = _post(
        node,
        '[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"nope"},'
        '{"jsonrpc":"2.0","method":"eth_chainId"},{"foo":1}]',
    )
    assert isinstance(out, list) and len(out) == 3  # the notification gets no answer
    assert out[0]["result"] == hex(node.chain_id)
    assert out[1]["error"]["code"] == -32601
    assert out[2]["error"]["code"] == -32600


def test_error_codes(node: EngineHandle) -> None:
    assert _post(node, b"{not json")["error"]["code"] == -32700  # type: ignore[index]
    assert _post(node, b"[]")["error"]["code"] == -32600  # type: ignore[index]
    bad = '{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x12"]}'
    assert _post(node, bad)["error"]["code"] == -32602  # type: ignore[index]
    raw = '{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0xdeadbeef"]}'
    assert _post(node, raw)["error"]["code"] == -32602  # type: ignore[index]


def test_get_logs_index_shapes(w3: Web3, node: EngineHandle, probe: Contract) -> None:
    """Every filter shape picks an index and still applies the whole filter."""
    user = node.accounts[6]
    ra, rb = b"\xaa" * 32, b"\xbb" * 32
    r1 = send(w3, user, probe.functions.emitMany(0, 50, ra))
    r2 = send(w3, user, probe.functions.emitMany(100, 30, rb))
    sig = "0x" + keccak(text="Anchored(uint256,bytes32,address,uint256)").hex()
    a, b = "0x" + ra.hex(), "0x" + rb.hex()
    lo, hi = r1["blockNumber"], r2["blockNumber"]

    def count(flt: dict[str, Any]) -> int:
        return len(w3.eth.get_logs({"fromBlock": lo, "toBlock": hi, **flt}))  # type: ignore[typeddict-item]

    assert count({"address": probe.address, "topics": [sig, None, [a, b]]}) == 80
    assert count({"address": [probe.address, node.accounts[0].address], "topics": [sig]}) == 80
    assert count({"topics": [None, None, b]}) == 30  # topic index at position 2, no address
    assert count({"topics": [[sig], None, a]}) == 50
    assert count({"address": probe.address}) == 80
    assert count({}) == 80
    # Many addresses x many topic0 values: served from the address index, the whole filter still applied.
    others = ["0x" + f"{i:040x}" for i in range(1, 200)]
    other_topics = ["0x" + f"{i:064x}" for i in range(1, 100)]

    def raw_count(flt: dict[str, Any]) -> int:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_getLogs",
            "params": [{"fromBlock": hex(lo), "toBlock": hex(hi), **flt}],
        }
        out = _post(node, json.dumps(body))
        assert isinstance(out, dict)
        return len(out["result"])

    assert raw_count({"address": [*others, probe.address], "topics": [[*other_topics, sig], None, b]}) == 30
    assert raw_count({"address": [*others, probe.address], "topics": [other_topics]}) == 0
    only_second = w3.eth.get_logs({"blockHash": r2["blockHash"]})
    assert len(only_second) == 30 and only_second[0]["logIndex"] == 0
    sizes = [e["args"]["size"] for e in probe.events.Anchored().get_logs(from_block=lo, to_block=hi)]
    assert sizes == list(range(50)) + list(range(100, 130))  # chain order
