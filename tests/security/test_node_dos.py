"""Issue #23, node findings: what one unauthenticated JSON-RPC client could do to the node, and what stops it.

Each test drives a real node process (``tests.kit.node.start_node``) and ends by checking that the process is
alive and answering. Findings: 1 (a deep body crashed the node; the recursion limit of every entry point),
2 (eth_call / eth_estimateGas without gas cap or deadline, blocking the node; batch work), 12 (pre-EIP-155
transactions).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from web3 import Web3

from devnet.engines import EngineHandle
from provenance.limits import RECURSION_LIMIT
from provenance.manifest import Manifest
from tests.kit.gateway import Harness, error_code
from tests.kit.node import (
    BLAKE2F,
    BURN_ALL,
    LOOP,
    RETURN_42,
    assert_alive,
    blake2f_input,
    post,
    request,
    rpc_error,
    start_node,
)

REPO = Path(__file__).resolve().parents[2]
EVM_TIMEOUT = 3  # shorter than the default 5 s: the tests that run into it stay short
RESPONSE_BUDGET = 64 << 10
GAS_CAP = 50_000_000  # the default rpc_gas_cap
BATCH_GAS = 100_000_000  # the default rpc_batch_gas
WORKERS = 2  # the default rpc_call_workers


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineHandle]:
    handle = start_node(
        tmp_path_factory.mktemp("dos-node"),
        rpc_evm_timeout=str(EVM_TIMEOUT),
        rpc_batch_response_bytes=str(RESPONSE_BUDGET),
    )
    yield handle
    handle.stop()


def _assert_limit(resp: httpx.Response, code: str, status: int = 200) -> None:
    assert resp.status_code == status, resp.text
    err = rpc_error(resp)
    assert err["code"] == -32005 and err["data"]["code"] == code, err
    assert resp.json()["id"] is None


# -- finding 1: one request killed the node --------------------------------------------------------------


def test_node_deep_nesting_body_gets_jsonrpc_error_and_node_stays_up(node: EngineHandle) -> None:
    """100,000 `[` segfaulted the node in the C JSON decoder; now any depth gets a JSON-RPC error."""
    deep_valid = b"[" * 100_000 + b"]" * 100_000
    bodies = [
        b"[" * 100_000,  # the finding, byte for byte
        b'{"a":' * 50_000,
        deep_valid,
        # a string ending in an escape must not hide the nesting after it (the scan's old blind spot)
        b'["\\n", ' + deep_valid + b"]",
        b'["\\\\", "\\"", ' + deep_valid + b"]",
        b'{"jsonrpc":"2.0","id":1,"method":"eth_call","params":' + deep_valid + b"}",
    ]
    for body in bodies:
        _assert_limit(post(node, body), "BODY_TOO_DEEP")
        assert_alive(node)
    # Brackets inside strings are data: 100,000 of them are an ordinary (invalid) parameter.
    r = post(node, request("eth_getBalance", ["[" * 100_000, "latest"]))
    assert r.status_code == 200 and rpc_error(r)["code"] == -32602
    # At the limit, a request is decoded and answered as usual.
    nested: Any = "0x00"
    for _ in range(29):  # 29 lists inside params inside the request object: 31 levels
        nested = [nested]
    assert rpc_error(post(node, request("eth_getBalance", [nested])))["code"] == -32602

    # Oversize bodies: refused on their declared length, and when streamed without one (chunked).
    limit = 5 << 20
    _assert_limit(post(node, b"[" + b" " * limit + b"]"), "BODY_TOO_LARGE", status=413)

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    r = httpx.post(node.rpc_url, content=chunks(), headers={"content-type": "application/json"}, timeout=30)
    _assert_limit(r, "BODY_TOO_LARGE", status=413)
    # Not JSON at all, and numbers too long for Python's int parser: parse errors.
    for body in [b"\xff\xfe[", b"1" * 5000, b'{"jsonrpc":"2.0","id":NaN,"method":"eth_chainId"}']:
        r = post(node, body)
        assert r.status_code == 200 and rpc_error(r)["code"] == -32700
    assert_alive(node)


ENTRY_POINTS = [
    "provenance",  # the SDK
    "provenance.cli",  # `provenance` (and its `node`, `chain`, `devnet` groups below)
    "chain_node.cli",  # `python -m chain_node`, `provenance node`
    "chain_node.server",  # what `node run` imports: py-evm
    "gateway.__main__",  # `python -m gateway`
    "gateway.main",  # the ASGI app
    "devnet.cli",  # `python -m devnet`, `provenance devnet`, `make run`
    "devnet.network",
    "provenance.cli.chain",  # `provenance chain`
]


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_recursion_limit_held_by_every_entry_point(module: str) -> None:
    """py_ecc sets 100,000 and py-evm 12,288 at import: after any entry point and both of them, the
    limit is the one the C stack holds, and at it a deep decode raises RecursionError instead of SIGSEGV."""
    probe = (
        f"import sys, json; import {module}; after_entry = sys.getrecursionlimit(); import py_ecc, eth\n"
        "try:\n"
        "    json.loads('[' * 100_000)\n"
        "except RecursionError:\n"
        "    pass\n"
        "print(after_entry, sys.getrecursionlimit())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, f"{module}: exit {out.returncode}\n{out.stderr[-2000:]}"
    assert out.stdout.split() == [str(RECURSION_LIMIT)] * 2, out.stdout


# Returns the deepest call depth it reached: depth d (calldata) calls itself with d + 1 and returns the
# child's answer, or d when that call fails (the EVM's 1,024 limit).
DEEPEST = (
    "600035806001016000526020600060206000600030"  # d; mem[0] = d + 1; CALL(gas, self, 0, 0, 32, 0, 32)
    "5af1602257600052602060"
    "00f35b5060206000f3"  # ok: return the child's answer; else return d
)


def _deploy_deepest(node: EngineHandle) -> str:
    w3 = Web3(Web3.HTTPProvider(node.rpc_url, request_kwargs={"timeout": 60}))
    admin = node.accounts[0]
    runtime = bytes.fromhex(DEEPEST)
    init = bytes([0x60, len(runtime), 0x60, 12, 0x60, 0, 0x39, 0x60, len(runtime), 0x60, 0, 0xF3]) + runtime
    tx = {
        "data": init,
        "gas": 200_000,
        "gasPrice": w3.eth.gas_price,
        "nonce": w3.eth.get_transaction_count(admin.address, "pending"),
        "chainId": node.chain_id,
    }
    raw = admin.sign_transaction(tx).raw_transaction
    address: str = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw))["contractAddress"]
    return address


def test_deepest_call_within_the_gas_cap_fits_the_recursion_limit(node: EngineHandle, tmp_path: Path) -> None:
    """The limit that keeps the C stack safe (6,000) holds the deepest call the gas cap allows (the 63/64
    rule stops it near depth 540, ~3,300 levels of Python); only a cap raised far past the default could
    nest deeper, and then the call gets a JSON-RPC error, not a crash."""
    deepest = _call(node, {"to": _deploy_deepest(node), "data": "0x" + "00" * 32, "gas": hex(GAS_CAP)})
    assert 500 < int(deepest.json()["result"], 16) < 1024, deepest.text
    assert_alive(node)

    raised = start_node(tmp_path / "raised-cap", rpc_gas_cap=str(10**13), rpc_evm_timeout="60")
    try:
        target = _deploy_deepest(raised)
        r = post(
            raised,
            request("eth_call", [{"to": target, "data": "0x" + "00" * 32, "gas": hex(10**12)}]),
            timeout=90,
        )
        err = rpc_error(r)
        assert err["code"] == -32000 and err["data"] == {"code": "CALL_TOO_DEEP"}, err
        assert int(_call(raised, {"data": RETURN_42}).json()["result"], 16) == 42  # a fresh runner served it
        assert_alive(raised)
    finally:
        raised.stop()


def test_gateway_depth_guard_holds_for_escaped_strings(harness: Harness) -> None:
    """The gateway's body guard shares the node's scan: an escape before deep nesting does not hide it."""
    h = harness.client("station-1")
    deep = b"[" * 100_000 + b"]" * 100_000
    for body in [b'{"records": ["\\n", ' + deep + b"]}", b'{"a": "\\\\", "b": ' + deep + b"}"]:
        r = harness.http.post(
            "/api/v1/records:bulk",
            content=body,
            headers={**h.headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 400 and error_code(r) == "BODY_TOO_DEEP", r.text
    assert harness.http.get("/healthz").status_code == 200


# -- finding 2: eth_call / eth_estimateGas without bounds --------------------------------------------------


def _call(node: EngineHandle, call: dict[str, Any], method: str = "eth_call") -> httpx.Response:
    return post(node, request(method, [call, "latest"]))


def test_eth_call_gas_cap_and_timeout(node: EngineHandle) -> None:
    """Gas above the cap is refused; a call past the deadline is stopped, loop or precompile alike."""
    for method in ("eth_call", "eth_estimateGas"):
        for gas in (2**62, GAS_CAP + 1):
            err = rpc_error(_call(node, {"data": RETURN_42, "gas": hex(gas)}, method))
            assert err["code"] == -32000 and err["data"] == {"code": "GAS_CAP_EXCEEDED", "cap": GAS_CAP}
    ok = _call(node, {"data": RETURN_42, "gas": hex(GAS_CAP)}).json()
    assert int(ok["result"], 16) == 42

    timeout = {"code": "EXECUTION_TIMEOUT", "timeout": EVM_TIMEOUT}
    for call, method in [
        ({"data": LOOP, "gas": hex(GAS_CAP)}, "eth_call"),  # ~10 s of py-evm at the cap
        ({"data": LOOP}, "eth_estimateGas"),  # searches up to the ceiling: as long
        # one opcode, no loop to check a clock in: 40 M rounds of pure-Python blake2f compression
        ({"to": BLAKE2F, "data": blake2f_input(40_000_000), "gas": hex(GAS_CAP)}, "eth_call"),
    ]:
        err = rpc_error(_call(node, call, method))
        assert err["code"] == -32000 and err["data"] == timeout, (method, err)
        assert_alive(node)
    # The interrupted threads' py-evm state was replaced: calls are right again afterwards.
    for _ in range(WORKERS * 2):
        assert int(_call(node, {"data": RETURN_42}).json()["result"], 16) == 42
    assert int(_call(node, {"data": RETURN_42}, "eth_estimateGas").json()["result"], 16) > 53_000


def test_long_eth_call_does_not_stall_block_number(node: EngineHandle) -> None:
    """While every call thread runs a call to its deadline, reads, sends and block production go on."""
    w3 = Web3(Web3.HTTPProvider(node.rpc_url, request_kwargs={"timeout": 30}))
    answers: list[httpx.Response] = []

    def long_call() -> None:
        answers.append(_call(node, {"data": LOOP, "gas": hex(GAS_CAP)}))

    callers = [threading.Thread(target=long_call) for _ in range(WORKERS + 1)]  # one more waits queued
    for t in callers:
        t.start()
    time.sleep(0.3)  # the calls are running
    head = w3.eth.block_number
    sender, to = node.accounts[3], node.accounts[4]
    tx = {
        "to": to.address,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 2 * w3.eth.gas_price,
        "maxPriorityFeePerGas": 1,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": node.chain_id,
    }
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction), timeout=30
    )
    assert receipt["status"] == 1 and receipt["blockNumber"] > head
    assert w3.eth.get_balance(to.address) > 0
    assert not answers, "a call was answered before the reads and the block: it did not run that long"
    for t in callers:
        t.join()
    for r in answers:
        assert rpc_error(r)["data"]["code"] == "EXECUTION_TIMEOUT"
    assert_alive(node)


def test_batch_work_bounded(node: EngineHandle) -> None:
    """A batch is bounded in requests, in the gas its calls burn, and in the bytes of its answer."""
    _assert_limit(post(node, [request("eth_blockNumber", rid=i) for i in range(1001)]), "BATCH_TOO_LARGE")

    # 40 calls of 10 M gas that burn it all at once: the batch's 100 M gas runs out after ~10 of them.
    burn = [request("eth_call", [{"data": BURN_ALL, "gas": hex(10_000_000)}], rid=i) for i in range(40)]
    out = post(node, burn).json()
    assert sorted(a["id"] for a in out) == list(range(40))
    ran = [a for a in out if a["error"]["code"] == -32000]
    refused = [a for a in out if a["error"]["code"] == -32005]
    assert all(a["error"]["message"].startswith("execution failed") for a in ran)
    assert all(a["error"]["data"]["code"] == "BATCH_GAS_EXCEEDED" for a in refused)
    assert BATCH_GAS // 10_000_000 <= len(ran) <= BATCH_GAS // 10_000_000 + WORKERS
    assert len(ran) + len(refused) == 40

    # An ordinary batch of many small calls is not refused.
    small = [request("eth_call", [{"data": RETURN_42}], rid=i) for i in range(200)]
    assert all(int(a["result"], 16) == 42 for a in post(node, small).json())

    # Calls that all run into the deadline: every one answered, by the batch's one deadline.
    loops = [request("eth_call", [{"data": LOOP, "gas": hex(GAS_CAP)}], rid=i) for i in range(8)]
    out = post(node, loops).json()
    assert sorted(a["id"] for a in out) == list(range(8))
    assert all(a["error"]["data"]["code"] == "EXECUTION_TIMEOUT" for a in out)

    # Scans (logs, fee history) run on the call threads under the batch's deadline too: all answered.
    scans = [
        request("eth_getLogs", [{"fromBlock": "0x0"}], rid=i)
        if i % 2
        else request("eth_feeHistory", ["0x400", "latest", [50]], rid=i)
        for i in range(500)
    ]
    out = post(node, scans).json()
    assert sorted(a["id"] for a in out) == list(range(500))
    assert all("result" in a or a["error"]["code"] in (-32000, -32005) for a in out)

    # The answer's bytes: blocks until the budget is spent, then a limit error per request.
    blocks = [request("eth_getBlockByNumber", ["0x0", False], rid=i) for i in range(200)]
    out = post(node, blocks).json()
    served = [a for a in out if "result" in a]
    refused = [a for a in out if "error" in a]
    assert served and refused and len(served) + len(refused) == 200
    assert sum(len(str(a)) for a in served) <= RESPONSE_BUDGET * 2  # str() of a dict: about its JSON size
    assert all(a["error"]["data"]["code"] == "BATCH_RESPONSE_TOO_LARGE" for a in refused)
    assert_alive(node)


def test_get_logs_filter_bounded(node: EngineHandle) -> None:
    """eth_getLogs looked up every address x topic pair: 2,000 x 2,000 took 1.2 s of the event loop, and a
    5 MiB filter would have asked for billions. Now at most 1,000 values a field, and long pairs lists are
    served from the address index."""
    many = [f"0x{i:040x}" for i in range(1001)]
    topics = [f"0x{i:064x}" for i in range(1001)]
    for flt in [{"address": many}, {"topics": [topics]}, {"topics": [None, None, topics]}]:
        err = rpc_error(post(node, request("eth_getLogs", [{"fromBlock": "0x0", **flt}])))
        assert err["code"] == -32005 and err["data"] == {"code": "FILTER_TOO_LARGE", "limit": 1000}
    r = post(
        node,
        request("eth_getLogs", [{"fromBlock": "0x0", "address": many[:1000], "topics": [topics[:1000]]}]),
    )
    assert r.json()["result"] == []
    assert_alive(node)


# -- finding 12: transactions without replay protection ---------------------------------------------------


def _transfer(w3: Web3, sender: Any, to: str, *, chain_id: int | None) -> bytes:
    tx: dict[str, Any] = {
        "to": to,
        "value": 7,
        "gas": 21_000,
        "gasPrice": w3.eth.gas_price,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
    }
    if chain_id is not None:
        tx["chainId"] = chain_id
    return bytes(Account.sign_transaction(tx, sender.key).raw_transaction)


def test_pre_eip155_tx_refused(node: EngineHandle, tmp_path: Path) -> None:
    """A transaction without a chain id (replayable on any chain) is refused unless the operator allows it."""
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    sender, to = node.accounts[5], node.accounts[6].address
    nonce = w3.eth.get_transaction_count(sender.address, "pending")
    raw = _transfer(w3, sender, to, chain_id=None)
    r = post(node, request("eth_sendRawTransaction", ["0x" + raw.hex()]))
    err = rpc_error(r)
    assert err["code"] == -32000 and err["data"] == {"code": "UNPROTECTED_TX"}
    assert err["message"] == "only replay-protected (EIP-155) transactions allowed over RPC"
    assert w3.eth.get_transaction_count(sender.address, "pending") == nonce  # nothing was queued
    protected = _transfer(w3, sender, to, chain_id=node.chain_id)
    assert w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(protected))["status"] == 1
    assert_alive(node)

    # Only an explicit setting lets them in.
    permissive = start_node(tmp_path / "permissive", allow_unprotected_txs="true")
    try:
        w3p = Web3(Web3.HTTPProvider(permissive.rpc_url))
        raw = _transfer(w3p, permissive.accounts[5], to, chain_id=None)
        assert w3p.eth.wait_for_transaction_receipt(w3p.eth.send_raw_transaction(raw))["status"] == 1
    finally:
        permissive.stop()


def test_devnet_deployment_is_replay_protected(engine: EngineHandle, deployed: Manifest) -> None:
    """The devnet's own deployment (contracts, committee votes, organisations) signs every transaction
    with the chain id, so it runs on nodes that refuse the others (ours by default; any geth, Besu)."""
    w3 = Web3(Web3.HTTPProvider(engine.rpc_url))
    seen = 0
    for n in range(w3.eth.block_number + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            assert isinstance(tx, Mapping) and int(tx["chainId"]) == engine.chain_id, tx
            seen += 1
    assert seen > 10  # the deployment's transactions are there
