"""Hypothesis against the node's JSON-RPC port: whatever arrives, the node answers in JSON-RPC 2.0 and lives.

Random and adversarial bodies (bytes, invalid UTF-8, deep nesting with and without escapes in strings,
huge numbers and strings, oversize bodies), requests of every method the node serves with wrong, missing,
extra and mistyped params and ids, and batches (empty, nested, of notifications). For every body: an
answer within the call deadline (an HTTP timeout would fail the test), that is valid JSON-RPC 2.0: one
response object per answered request, with exactly one of ``result`` / ``error``, the request's id echoed
(null when it had none or an invalid one), never ``-32603`` (an internal error is a bug the fuzzer found).
The node process is alive and answering at the end. Also: the depth scan in front of the decoder
(``provenance.limits.json_depth_exceeds``, shared with the gateway) against real depths.

Bounded: ``--fuzz-examples N`` per test (default 60, well under a minute in all).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain_node.rpc import Rpc
from devnet.engines import EngineHandle
from provenance.limits import json_depth_exceeds
from tests.kit.node import assert_alive, start_node
from tests.kit.node import request as request_obj
from tests.security.fuzzing import fuzz_settings

EVM_TIMEOUT = 2.0
HTTP_TIMEOUT = EVM_TIMEOUT + 10  # the deadline, its grace, and a loaded machine: a hang fails here
MAX_DEPTH = 32  # the default rpc_max_json_depth
MAX_BODY = 5 << 20  # the default rpc_max_body_bytes
INTERNAL_ERROR = -32603
METHODS = sorted({**Rpc.CONSTANTS, **Rpc.METHODS})  # every method a node serves without --dev-rpc


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineHandle]:
    handle = start_node(tmp_path_factory.mktemp("fuzz-node"), rpc_evm_timeout=str(EVM_TIMEOUT))
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def http(node: EngineHandle) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=HTTP_TIMEOUT, headers={"content-type": "application/json"}) as client:
        yield client


@pytest.fixture
def examples(request: pytest.FixtureRequest) -> int:
    opt = request.config.getoption("--fuzz-examples", default=None)
    return 60 if opt is None else int(opt)


# -- strategies ------------------------------------------------------------------------------------------

hexes = st.from_regex(r"\A0x[0-9a-fA-F]{0,70}\Z") | st.sampled_from(
    ["0x", "0x0", "0x00", "0x" + "f" * 64, "0x" + "f" * 65, "0x-1", "0x1_0", "0X1", "0xzz", "latest"]
)
big_ints = st.integers() | st.sampled_from([-1, 2**63, 2**64, 2**256, 2**256 - 1, 10**4000])
scalars = (
    st.none()
    | st.booleans()
    | big_ints
    | st.floats(allow_nan=False, allow_infinity=False)  # NaN / Infinity: in hostile_bodies
    | st.text(max_size=20)
    | hexes
    | st.sampled_from(["latest", "pending", "earliest", "safe", "finalized"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Typed atoms, as a client means them: most params are made of these, some of anything at all.
quantities = st.integers(0, 2**70).map(hex) | st.sampled_from(["0x0", "0x1", "0x1c9c380", "0x2faf080"])
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()) | st.sampled_from(
    ["0x" + "00" * 19 + f"{n:02x}" for n in (1, 2, 5, 8, 9, 10)]
    + ["0x" + "00" * 18 + "5001", "0x" + "00" * 18 + "5002"]
)
hashes = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
tags = st.sampled_from(["latest", "pending", "earliest", "safe", "finalized"]) | quantities
code = st.binary(max_size=40).map(lambda b: "0x" + b.hex()) | st.sampled_from(["0x5b600056", "0xfe", "0x00"])
atoms = quantities | addresses | hashes | tags | code | st.booleans()
call_objects = st.dictionaries(
    st.sampled_from(["from", "to", "gas", "gasPrice", "value", "data", "input", "nonce", "extra"]),
    atoms | hexes | json_values,
    max_size=6,
) | st.fixed_dictionaries(
    {"to": addresses, "data": code}, optional={"from": addresses, "gas": quantities, "value": quantities}
)
filters = st.dictionaries(
    st.sampled_from(["fromBlock", "toBlock", "address", "topics", "blockHash", "extra"]),
    atoms | json_values | st.lists(hashes | st.none() | st.lists(hashes, max_size=3), max_size=5),
    max_size=5,
)
params = (
    st.lists(
        atoms
        | call_objects
        | filters
        | st.sampled_from([{"blockNumber": "0x0"}, {"blockHash": "0x" + "00" * 32}]),
        max_size=4,
    )
    | st.lists(atoms | hexes | json_values, max_size=5)
    | json_values  # params that are not an array: a scalar, or an object (by-name)
)
valid_ids = st.none() | st.integers() | st.text(max_size=12)
ids = (
    big_ints
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)
_MISSING = object()


def _mostly(draw: st.DrawFn, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
    """One field: usually right, so that the request gets past it to what follows."""
    return draw(bad if draw(st.integers(0, 9)) == 0 else good)


# a type byte (0x00-0x7f: typed, of which only 1-3 exist; 0xc0 and up: legacy RLP list) and anything after
raw_txs = st.builds(
    lambda t, b: "0x" + bytes([t]).hex() + b.hex(), st.integers(0, 255), st.binary(max_size=120)
)
percentiles = st.lists(st.floats(0, 100) | json_values, max_size=4)
# What each method takes, as a well-meaning client would send it (then mutated in `requests`).
SHAPES: dict[str, list[st.SearchStrategy[Any]]] = {
    "eth_getBalance": [addresses, tags],
    "eth_getTransactionCount": [addresses, tags],
    "eth_getCode": [addresses, tags],
    "eth_getStorageAt": [addresses, quantities, tags],
    "eth_call": [call_objects, tags],
    "eth_estimateGas": [call_objects, tags],
    "eth_getLogs": [filters],
    "eth_getBlockByNumber": [tags, st.booleans()],
    "eth_getBlockByHash": [hashes, st.booleans()],
    "eth_getTransactionByHash": [hashes],
    "eth_getTransactionReceipt": [hashes],
    "eth_sendRawTransaction": [raw_txs],
    "eth_feeHistory": [quantities, tags, percentiles],
    "gm_getSeal": [tags],
    "gm_sealedBlock": [tags],
}
assert set(SHAPES) <= set(METHODS)


@st.composite
def shaped_params(draw: st.DrawFn, method: str) -> Any:
    """The method's params, then maybe one mutation: one dropped, one extra, or one of another type."""
    out = [draw(s) for s in SHAPES.get(method, [])]
    mutation = draw(st.integers(0, 5))
    if mutation == 1 and out:
        out.pop(draw(st.integers(0, len(out) - 1)))
    elif mutation == 2:
        out.append(draw(atoms | json_values))
    elif mutation == 3 and out:
        out[draw(st.integers(0, len(out) - 1))] = draw(atoms | hexes | json_values)
    return out


@st.composite
def requests(draw: st.DrawFn) -> Any:
    """One request object: mostly well-formed, with any field wrong, missing or extra."""
    method = _mostly(
        draw,
        st.sampled_from(METHODS) | st.sampled_from(sorted(SHAPES)),  # half of them: methods with params
        st.sampled_from(["evm_mine", "evm_increaseTime", "eth_nope", ""])
        | st.text(max_size=30)
        | json_values,
    )
    req: dict[str, Any] = {
        "jsonrpc": _mostly(draw, st.just("2.0"), st.sampled_from(["1.0", 2.0, _MISSING, None])),
        "id": _mostly(draw, valid_ids, ids | st.just(_MISSING)),
        "method": method,
        "params": _mostly(
            draw,
            shaped_params(method if isinstance(method, str) else ""),
            params | st.just(_MISSING) | json_values,
        ),
    }
    if draw(st.integers(0, 9)) == 0:
        req[draw(st.text(max_size=8))] = draw(json_values)
    body = {k: v for k, v in req.items() if v is not _MISSING}
    return body if draw(st.integers(0, 19)) else draw(json_values)  # sometimes not an object at all


batches = st.lists(requests() | st.lists(requests(), max_size=2), max_size=12)


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    """Bodies no client would send: broken bytes, deep nesting, huge numbers and strings."""
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:  # invalid UTF-8 inside otherwise plausible JSON
        junk = draw(st.binary(min_size=1, max_size=8).filter(_not_utf8))
        return b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":["' + junk + b'"]}'
    if kind == 2:  # nesting, around the limit and far past it, with escapes in strings before it
        depth = draw(st.sampled_from([MAX_DEPTH - 3, MAX_DEPTH, MAX_DEPTH + 1, 1000, 200_000]))
        opener = draw(st.sampled_from([b"[", b'{"a":', b'["\\n",', b'["\\\\",', b'["\\"",', b'[{"x":"[",']))
        closed = draw(st.booleans())
        inner = b"1" + (b"]" * depth if closed and opener == b"[" else b"")
        return b'{"jsonrpc":"2.0","id":7,"method":"eth_call","params":' + opener * depth + inner + b"}"
    if kind == 3:  # numbers beyond Python's int parser and float range
        n = draw(st.sampled_from([b"9" * 5000, b"1e999999", b"-0", b"1" * 4300, b"0x10"]))
        return b'{"jsonrpc":"2.0","id":' + n + b',"method":"eth_blockNumber"}'
    if kind == 4:  # a huge string as method, id or param
        s = draw(st.sampled_from(["x", "[", "\x00", '"', "\\", "é"])) * draw(st.integers(1000, 400_000))
        where = draw(st.sampled_from(["method", "id", "params"]))
        req: dict[str, Any] = {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": ["0x00"]}
        req[where] = [s] if where == "params" else s
        return json.dumps(req, ensure_ascii=draw(st.booleans())).encode()
    if kind == 5:  # NaN / Infinity literals, trailing garbage, empty
        return draw(st.sampled_from([b"", b" ", b"NaN", b'{"id":Infinity}', b"[1,]", b"{}{}", b"\x00"]))
    if kind == 6:  # a raw transaction of RLP lists nested 100,000 deep (the decoder recurses)
        raw = b"\xc0"
        for _ in range(100_000):
            n = len(raw).to_bytes((len(raw).bit_length() + 7) // 8, "big")
            raw = (bytes([0xC0 + len(raw)]) if len(raw) < 56 else bytes([0xF7 + len(n)]) + n) + raw
        return json.dumps(request_obj("eth_sendRawTransaction", ["0x" + raw.hex()])).encode()
    return b"[" + b" " * (MAX_BODY + 1) + b"]"  # oversize


def _not_utf8(b: bytes) -> bool:
    try:
        b.decode()
    except UnicodeDecodeError:
        return True
    return False


# -- what every answer must look like ------------------------------------------------------------------------


def _valid_id(rid: Any) -> bool:
    if rid is None or isinstance(rid, str):
        return True
    return not isinstance(rid, bool) and (
        isinstance(rid, int) or (isinstance(rid, float) and math.isfinite(rid))
    )


def _answered(req: Any) -> bool:
    """A valid notification (no id) gets no answer; everything else does."""
    return not (
        isinstance(req, dict)
        and "id" not in req
        and req.get("jsonrpc") == "2.0"
        and isinstance(req.get("method"), str)
        and isinstance(req.get("params", []), list | dict)
    )


def _expected_id(req: Any) -> Any:
    if isinstance(req, dict) and _valid_id(req.get("id")):
        return req.get("id")
    return None


def _check_response(resp: Any, expected_id: Any = ...) -> None:
    assert isinstance(resp, dict) and resp.get("jsonrpc") == "2.0", resp
    assert set(resp) in ({"jsonrpc", "id", "result"}, {"jsonrpc", "id", "error"}), resp
    if expected_id is not ...:
        assert resp["id"] == expected_id, (resp["id"], expected_id)
    if "error" in resp:
        err = resp["error"]
        assert (
            isinstance(err, dict) and isinstance(err.get("code"), int) and isinstance(err.get("message"), str)
        )
        assert set(err) <= {"code", "message", "data"}, err
        assert err["code"] != INTERNAL_ERROR, f"internal error: {err}"


def _post(http: httpx.Client, node: EngineHandle, body: bytes) -> httpx.Response:
    r = http.post(node.rpc_url, content=body)
    assert r.status_code in (200, 413), (r.status_code, r.text[:300])
    return r


def _check_requests(http: httpx.Client, node: EngineHandle, payload: Any) -> None:
    r = _post(http, node, json.dumps(payload).encode())
    if isinstance(payload, list) and payload:
        expected = [_expected_id(q) for q in payload if _answered(q)]
        if not expected:
            assert r.content == b"", r.text[:300]
            return
        answers = r.json()
        assert isinstance(answers, list) and len(answers) == len(expected), r.text[:500]
        for a in answers:
            _check_response(a)
        got = sorted(json.dumps(a["id"]) for a in answers)
        assert got == sorted(json.dumps(i) for i in expected)
    elif isinstance(payload, list):  # the empty batch: one error
        _check_response(r.json(), None)
        assert r.json()["error"]["code"] == -32600
    elif _answered(payload):
        _check_response(r.json(), _expected_id(payload))
    else:
        assert r.content == b"", r.text[:300]


# -- the fuzz tests --------------------------------------------------------------------------------------


def test_fuzz_single_requests(node: EngineHandle, http: httpx.Client, examples: int) -> None:
    """Every method with wrong, missing, extra and mistyped params and ids."""

    @fuzz_settings(examples * 3)
    @given(req=requests())
    def fuzz(req: Any) -> None:
        _check_requests(http, node, req)

    fuzz()
    assert_alive(node)


def test_fuzz_batches(node: EngineHandle, http: httpx.Client, examples: int) -> None:
    """Batches of such requests, including empty ones, nested ones and ones of notifications only."""

    @fuzz_settings(examples)
    @given(batch=batches)
    def fuzz(batch: list[Any]) -> None:
        _check_requests(http, node, batch)

    fuzz()
    assert_alive(node)


def test_fuzz_hostile_bodies(node: EngineHandle, http: httpx.Client, examples: int) -> None:
    """Bodies that are not, or hardly, JSON: one JSON-RPC error object each (HTTP 413 when oversize)."""

    @fuzz_settings(examples)
    @given(body=hostile_bodies())
    def fuzz(body: bytes) -> None:
        r = _post(http, node, body)
        answer = r.json()
        if isinstance(answer, list):  # a body that happened to be a valid batch
            for a in answer:
                _check_response(a)
        else:
            _check_response(answer)
        if r.status_code == 413:
            assert answer["error"]["data"]["code"] == "BODY_TOO_LARGE"
        assert node.process is not None and node.process.poll() is None

    fuzz()
    assert_alive(node)


def _depth(v: Any) -> int:
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    return 0


tricky_text = st.text(alphabet=st.sampled_from(list('[]{}"\\\n\t az\u00e9\u4e2d')), max_size=12)
documents = st.recursive(
    st.none() | st.integers() | tricky_text,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(tricky_text, c, max_size=3),
    max_leaves=30,
)


def test_depth_scan_matches_real_depth(examples: int) -> None:
    """The scan that runs before the decoder reads strings exactly as JSON does (escapes included)."""

    @fuzz_settings(examples * 5)
    @given(doc=documents, limit=st.integers(0, 8), ascii_only=st.booleans())
    def fuzz(doc: Any, limit: int, ascii_only: bool) -> None:
        body = json.dumps(doc, ensure_ascii=ascii_only).encode()
        assert json_depth_exceeds(body, limit) == (_depth(doc) > limit), body

    fuzz()
