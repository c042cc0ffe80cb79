"""JSON-RPC 2.0 dispatch: the method table, parameter parsing, batch handling, error mapping."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address

from chain_node.errors import Code, RpcError, to_rpc_error
from chain_node.node import PRIORITY_FEE, Node, hx, qty

log = logging.getLogger("chain_node.rpc")

CLIENT_VERSION = "shancheng-node/0.1.0/py-evm-0.12.1b1"
MAX_BATCH = 1000
MAX_LOGS = 100_000


@dataclass(frozen=True, slots=True)
class Raw:
    """A result that is already JSON bytes (stored records are spliced in without re-encoding)."""

    data: bytes


# -- parameter parsing ----------------------------------------------------------------------------------


def _param(params: list[Any], i: int, default: Any = ...) -> Any:
    if i < len(params):
        return params[i]
    if default is ...:
        raise RpcError(Code.INVALID_PARAMS, f"missing parameter {i}")
    return default


_QUANTITY = re.compile(r"0x[0-9a-fA-F]+")
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")


def p_quantity(v: Any, what: str = "quantity") -> int:
    """A 0x-hex quantity (ints tolerated)."""
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    # fullmatch, not int(v, 16) alone: that also takes "0x1\n", " 0x1", "0x_1".
    if isinstance(v, str) and _QUANTITY.fullmatch(v):
        return int(v, 16)
    raise RpcError(Code.INVALID_PARAMS, f"invalid {what}: {v!r}")


def p_data(v: Any, what: str = "data", size: int | None = None) -> bytes:
    """0x-hex bytes, optionally of a fixed size."""
    # fullmatch, not bytes.fromhex alone: that skips whitespace ("0xab cd\n").
    if isinstance(v, str) and _DATA.fullmatch(v):
        b = bytes.fromhex(v[2:])
        if size is None or len(b) == size:
            return b
    raise RpcError(Code.INVALID_PARAMS, f"invalid {what}: {v!r}")


def p_address(v: Any) -> bytes:
    """A 20-byte address."""
    return p_data(v, "address", 20)


def p_hash(v: Any) -> bytes:
    """A 32-byte hash."""
    return p_data(v, "hash", 32)


class Rpc:
    """The method table bound to one node; everything runs on the server's event loop."""

    def __init__(self, node: Node, *, receipt_wait: float = 2.0, dev_rpc: bool = False) -> None:
        self.node = node
        self.receipt_wait = receipt_wait
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = defaultdict(list)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._commit: asyncio.Future[None] | None = None  # the group commit of the sends staged so far
        # set by the server: whether a send should be mined at once (a lone client, instant mode)
        self.mine_on_send: Callable[[], bool] = lambda: False
        # receipts clients asked for (recent, bounded): tells a waiting client from a streaming one
        self.asked: dict[bytes, None] = {}
        evm: Callable[..., Any] = self._evm
        self.methods: dict[str, Callable[[list[Any]], Awaitable[Any]]] = {
            "web3_clientVersion": self._const(CLIENT_VERSION),
            "net_version": self._const(str(node.chain_id)),
            "net_listening": self._const(True),
            "eth_chainId": self._const(qty(node.chain_id)),
            "eth_accounts": self._const([]),
            "eth_syncing": self._const(False),
            "eth_mining": self._const(True),
            "eth_blockNumber": self._direct(lambda p: qty(self.node.head_number)),
            "eth_gasPrice": self._direct(lambda p: qty(self.node.next_base_fee() + PRIORITY_FEE)),
            "eth_maxPriorityFeePerGas": self._const(qty(PRIORITY_FEE)),
            "eth_feeHistory": self._direct(self.fee_history),
            "eth_getBlockByNumber": self._direct(self.get_block_by_number),
            "eth_getBlockByHash": self._direct(self.get_block_by_hash),
            "eth_getTransactionByHash": self._direct(self.get_transaction),
            "eth_getTransactionReceipt": self.get_receipt,
            "eth_getLogs": self._direct(self.get_logs),
            "eth_getBalance": evm(self.get_balance),
            "eth_getTransactionCount": evm(self.get_transaction_count),
            "eth_getCode": evm(self.get_code),
            "eth_getStorageAt": evm(self.get_storage_at),
            "eth_call": evm(self.call),
            "eth_estimateGas": evm(self.estimate_gas),
            "eth_sendRawTransaction": self.send_raw_transaction,
            "gm_getSeal": self._direct(self.get_seal),
            "gm_sealedBlock": self._direct(self.sealed_block),
            "gm_validators": self._direct(self.validators),
            "gm_nodeInfo": self._direct(self.node_info),
        }
        if dev_rpc:  # test/devnet only: lets suites written for anvil move time forward
            self.methods["evm_increaseTime"] = self._direct(self.increase_time)
            self.methods["evm_mine"] = self._direct(self.mine)
        node.add_listener(self._on_block)

    # -- plumbing --------------------------------------------------------------------------------------

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the server's event loop (block listeners wake receipt waiters through it)."""
        self._loop = loop

    @staticmethod
    def _const(value: Any) -> Callable[[list[Any]], Awaitable[Any]]:
        async def handler(params: list[Any]) -> Any:
            return value

        return handler

    @staticmethod
    def _direct(fn: Callable[[list[Any]], Any]) -> Callable[[list[Any]], Awaitable[Any]]:
        async def handler(params: list[Any]) -> Any:
            return fn(params)

        return handler

    def _evm(self, fn: Callable[[list[Any]], Any]) -> Callable[[list[Any]], Awaitable[Any]]:
        # Runs inline on the event loop, like block production: on a small shared machine every
        # thread hand-off costs a scheduler slice, more than the py-evm work itself.
        return self._direct(fn)

    def clients_waiting_on_last_block(self) -> bool:
        """Whether someone asked for a receipt of the last block's transactions (a one-at-a-time client)."""
        return any(h in self.asked for h in self.node.last_block_hashes)

    def _on_block(self, included: list[bytes], dropped: list[bytes]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_waiters, included + dropped)

    def _wake_waiters(self, hashes: list[bytes]) -> None:
        for h in hashes:
            for fut in self._waiters.pop(h, []):
                if not fut.done():
                    fut.set_result(None)

    # -- dispatch --------------------------------------------------------------------------------------

    async def handle_body(self, body: bytes) -> bytes | None:
        """Handle one HTTP body (single or batch); None when nothing is to be answered."""
        try:
            req = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _encode(None, error=RpcError(Code.PARSE_ERROR))
        if isinstance(req, list):
            if not req:
                return _encode(None, error=RpcError(Code.INVALID_REQUEST, "empty batch"))
            if len(req) > MAX_BATCH:
                return _encode(None, error=RpcError(Code.LIMIT_EXCEEDED, f"batch larger than {MAX_BATCH}"))
            parts = await asyncio.gather(*(self.handle_one(r) for r in req))
            answered = [p for p in parts if p is not None]
            return b"[" + b",".join(answered) + b"]" if answered else None
        return await self.handle_one(req)

    async def handle_one(self, req: Any) -> bytes | None:
        """Handle one request object."""
        if not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or not isinstance(req.get("method"), str):
            rid = req.get("id") if isinstance(req, dict) else None
            return _encode(rid, error=RpcError(Code.INVALID_REQUEST))
        notification = "id" not in req
        rid = req.get("id")
        params = req.get("params", [])
        if isinstance(params, dict):
            params = [params]
        if not isinstance(params, list):
            return _encode(rid, error=RpcError(Code.INVALID_PARAMS, "params must be an array"))
        method = self.methods.get(req["method"])
        if method is None:
            out = _encode(rid, error=RpcError(Code.METHOD_NOT_FOUND, f"method not found: {req['method']}"))
        else:
            try:
                out = _encode(rid, result=await method(params))
            except Exception as exc:
                err = to_rpc_error(exc)
                if err.code == Code.INTERNAL_ERROR:
                    log.exception("internal error in %s", req["method"])
                out = _encode(rid, error=err)
        return None if notification else out

    # -- blocks and transactions -----------------------------------------------------------------------

    def _block_tag(self, v: Any) -> int | None:
        """Block number for a tag; None means latest."""
        if v in (None, "latest", "pending", "safe", "finalized"):
            return None
        if v == "earliest":
            return 0
        if isinstance(v, dict):  # EIP-1898
            if "blockNumber" in v:
                return p_quantity(v["blockNumber"], "block number")
            if "blockHash" in v:
                n = self.node.block_number_by_hash(p_hash(v["blockHash"]))
                if n is None:
                    raise RpcError(Code.RESOURCE_NOT_FOUND, "block not found")
                return n
        return p_quantity(v, "block number")

    def _block(self, number: int, full: bool) -> Any:
        raw = self.node.get_block_raw(number)
        if raw is None:
            return None
        if not full:
            return Raw(raw)
        block = json.loads(raw)
        block["transactions"] = [
            json.loads(self.node.get_tx_raw(bytes.fromhex(h[2:])) or b"null") for h in block["transactions"]
        ]
        return block

    def get_block_by_number(self, params: list[Any]) -> Any:
        """eth_getBlockByNumber."""
        n = self._block_tag(_param(params, 0))
        return self._block(self.node.head_number if n is None else n, bool(_param(params, 1, False)))

    def get_block_by_hash(self, params: list[Any]) -> Any:
        """eth_getBlockByHash."""
        n = self.node.block_number_by_hash(p_hash(_param(params, 0)))
        return None if n is None else self._block(n, bool(_param(params, 1, False)))

    def get_transaction(self, params: list[Any]) -> Any:
        """eth_getTransactionByHash (mempool transactions have null block fields)."""
        h = p_hash(_param(params, 0))
        raw = self.node.get_tx_raw(h)
        return Raw(raw) if raw is not None else self.node.pending_tx_json(h)

    async def get_receipt(self, params: list[Any]) -> Any:
        """eth_getTransactionReceipt; for a mempool transaction, waits briefly for its block (long poll)."""
        h = p_hash(_param(params, 0))
        self.asked[h] = None
        if len(self.asked) > 10_000:
            self.asked.pop(next(iter(self.asked)))
        raw = self.node.get_receipt_raw(h)
        if raw is None and self.node.in_mempool(h) and self.receipt_wait > 0:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters[h].append(fut)
            try:
                raw = self.node.get_receipt_raw(h)  # re-check: the block may have landed meanwhile
                if raw is None and self.node.in_mempool(h):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(fut, self.receipt_wait)
                    raw = self.node.get_receipt_raw(h)
            finally:
                lst = self._waiters.get(h)
                if lst is not None and fut in lst:
                    lst.remove(fut)
                    if not lst:
                        self._waiters.pop(h, None)
        return Raw(raw) if raw is not None else None

    def fee_history(self, params: list[Any]) -> Any:
        """eth_feeHistory over stored blocks."""
        count = min(p_quantity(_param(params, 0), "block count"), 1024)
        newest = self._block_tag(_param(params, 1, "latest"))
        newest = self.node.head_number if newest is None else min(newest, self.node.head_number)
        percentiles = _param(params, 2, None) or []
        oldest = max(0, newest - count + 1)
        fees, ratios = [], []
        for n in range(oldest, newest + 1):
            b = json.loads(self.node.get_block_raw(n) or b"{}")
            fees.append(b["baseFeePerGas"])
            ratios.append(int(b["gasUsed"], 16) / int(b["gasLimit"], 16))
        fees.append(qty(self.node.next_base_fee()))
        out: dict[str, Any] = {"oldestBlock": qty(oldest), "baseFeePerGas": fees, "gasUsedRatio": ratios}
        if percentiles:
            out["reward"] = [[qty(PRIORITY_FEE)] * len(percentiles) for _ in ratios]
        return out

    def get_logs(self, params: list[Any]) -> Any:
        """eth_getLogs over the address/topic indexes."""
        f = _param(params, 0)
        if not isinstance(f, dict):
            raise RpcError(Code.INVALID_PARAMS, "filter must be an object")
        head = self.node.head_number
        if f.get("blockHash") is not None:
            n = self.node.block_number_by_hash(p_hash(f["blockHash"]))
            if n is None:
                raise RpcError(Code.RESOURCE_NOT_FOUND, "block not found")
            lo = hi = n
        else:
            a = self._block_tag(f.get("fromBlock"))
            b = self._block_tag(f.get("toBlock"))
            lo = head if a is None else a
            hi = head if b is None else min(b, head)
        addr = f.get("address")
        addresses = (
            [] if addr is None else [p_address(a) for a in (addr if isinstance(addr, list) else [addr])]
        )
        topics: list[list[bytes] | None] = []
        for t in f.get("topics") or []:
            if t is None:
                topics.append(None)
            elif isinstance(t, list):
                topics.append([p_hash(x) for x in t] or None)
            else:
                topics.append([p_hash(t)])
        if lo > hi:
            return []
        logs = self.node.get_logs(
            from_block=lo, to_block=hi, addresses=addresses, topics=topics, limit=MAX_LOGS
        )
        return Raw(b"[" + b",".join(logs) + b"]")

    # -- state (py-evm reads over committed data) ---------------------------------------------------------

    def get_balance(self, params: list[Any]) -> Any:
        """eth_getBalance."""
        return qty(
            self.node.account(
                p_address(_param(params, 0)), self._block_tag(_param(params, 1, None)), "balance"
            )
        )

    def get_transaction_count(self, params: list[Any]) -> Any:
        """eth_getTransactionCount; "pending" counts the mempool."""
        addr = p_address(_param(params, 0))
        tag = _param(params, 1, None)
        if tag == "pending":
            return qty(self.node.pending_nonce(addr))
        return qty(self.node.account(addr, self._block_tag(tag), "nonce"))

    def get_code(self, params: list[Any]) -> Any:
        """eth_getCode."""
        return hx(
            self.node.account(p_address(_param(params, 0)), self._block_tag(_param(params, 1, None)), "code")
        )

    def get_storage_at(self, params: list[Any]) -> Any:
        """eth_getStorageAt."""
        addr = p_address(_param(params, 0))
        slot = p_quantity(_param(params, 1), "slot")
        value = self.node.account(addr, self._block_tag(_param(params, 2, None)), "storage", slot)
        return hx(int(value).to_bytes(32, "big"))

    def _call_params(self, v: Any) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise RpcError(Code.INVALID_PARAMS, "call object expected")
        call: dict[str, Any] = {}
        if v.get("from"):
            call["from"] = p_address(v["from"])
        if v.get("to"):
            call["to"] = p_address(v["to"])
        if v.get("gas") is not None:
            call["gas"] = p_quantity(v["gas"], "gas")
        if v.get("value") is not None:
            call["value"] = p_quantity(v["value"], "value")
        data = v.get("data", v.get("input"))
        if data is not None:
            call["data"] = p_data(data)
        return call

    def call(self, params: list[Any]) -> Any:
        """eth_call."""
        return hx(
            self.node.call(self._call_params(_param(params, 0)), self._block_tag(_param(params, 1, None)))
        )

    def estimate_gas(self, params: list[Any]) -> Any:
        """eth_estimateGas."""
        call = self._call_params(_param(params, 0))
        call.pop("gas", None)
        return qty(self.node.estimate_gas(call, self._block_tag(_param(params, 1, None))))

    async def send_raw_transaction(self, params: list[Any]) -> Any:
        """eth_sendRawTransaction: returns the hash once the transaction is durable."""
        p = self.node.stage(p_data(_param(params, 0), "raw transaction"))
        if isinstance(p, bytes):
            return hx(p)
        if self._commit is None and self.mine_on_send() and self.node.mine_staged_now(p):
            return hx(p.hash)
        await self._group_commit()
        return hx(p.hash)

    def _group_commit(self) -> asyncio.Future[None]:
        """The commit that will make the sends staged so far durable.

        Sends arriving together (one turn of the loop: several clients, or a batch request) are staged
        first and written by one LMDB commit right after, instead of one commit and two fsyncs each:
        under a stream of sends that per-send fsync was half of the loop's time.
        """
        if self._commit is None:
            loop = asyncio.get_running_loop()
            self._commit = loop.create_future()
            loop.call_soon(self._flush)
        return self._commit

    def _flush(self) -> None:
        fut, self._commit = self._commit, None
        assert fut is not None
        try:
            self.node.commit_staged()
        except Exception as exc:
            log.exception("pending transactions could not be written")
            fut.set_exception(exc)
        else:
            fut.set_result(None)

    # -- dev namespace (only with dev_rpc) --------------------------------------------------------------

    def increase_time(self, params: list[Any]) -> Any:
        """evm_increaseTime(seconds): later blocks are stamped that much later; returns the total offset."""
        seconds = p_quantity(_param(params, 0), "seconds")
        self.node.time_offset += seconds
        # relative to the head too: burst blocks may already be stamped ahead of the wall clock
        head = json.loads(self.node.get_block_raw(self.node.head_number) or b"{}")
        self.node.timestamp_floor = int(head["timestamp"], 16) + seconds
        return self.node.time_offset

    def mine(self, params: list[Any]) -> Any:
        """evm_mine: produce a block now, empty if nothing is pending."""
        self.node.mine_once(allow_empty=True)
        return "0x0"

    # -- gm_ namespace ---------------------------------------------------------------------------------

    def get_seal(self, params: list[Any]) -> Any:
        """gm_getSeal(blockNumber): the block's seal (see provenance.ledger.seal)."""
        n = self._block_tag(_param(params, 0, "latest"))
        raw = self.node.get_seal_json(self.node.head_number if n is None else n)
        return None if raw is None else Raw(raw)

    def sealed_block(self, params: list[Any]) -> Any:
        """gm_sealedBlock(blockNumber): {"block", "seal"} in one answer."""
        n = self._block_tag(_param(params, 0, "latest"))
        n = self.node.head_number if n is None else n
        block, seal = self.node.get_block_raw(n), self.node.get_seal_json(n)
        if block is None or seal is None:
            return None
        return Raw(b'{"block":' + block + b',"seal":' + seal + b"}")

    def validators(self, params: list[Any]) -> Any:
        """gm_validators: the genesis validators (id and SM2 public key PEM)."""
        return [v.model_dump() for v in self.node.genesis.validators]

    def node_info(self, params: list[Any]) -> Any:
        """gm_nodeInfo: chain id, head, admins, permissioning, precompile addresses."""
        g = self.node.genesis
        return {
            "chainId": qty(g.chain_id),
            "head": qty(self.node.head_number),
            "blockTime": self.node.block_time,
            "admins": g.admins,
            "permissionContract": g.permission_contract,
            "precompiles": {
                "sm3": to_checksum_address("0x" + "00" * 18 + "5001"),
                "sm2Verify": to_checksum_address("0x" + "00" * 18 + "5002"),
            },
        }


def _encode(rid: Any, *, result: Any = None, error: RpcError | None = None) -> bytes:
    head = b'{"jsonrpc":"2.0","id":' + json.dumps(rid).encode()
    if error is not None:
        return head + b',"error":' + json.dumps(error.to_json()).encode() + b"}"
    if isinstance(result, Raw):
        return head + b',"result":' + result.data + b"}"
    return head + b',"result":' + json.dumps(result, separators=(",", ":")).encode() + b"}"
