"""JSON-RPC 2.0 dispatch: the method table, parameter parsing, batch handling, error mapping."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from eth_utils.address import to_checksum_address

from chain_node.calls import CallRunner
from chain_node.config import NodeSettings
from chain_node.errors import Code, RpcError, show, to_rpc_error
from chain_node.node import PRIORITY_FEE, Node, hx, qty
from chain_node.params import U64_END, p_address, p_data, p_hash, p_quantity, param
from chain_node.rpc_limits import BatchBudget, CallPool, decode_body, valid_id

log = logging.getLogger("chain_node.rpc")

CLIENT_VERSION = "shancheng-node/0.1.0/py-evm-0.12.1b1"
MAX_LOGS = 100_000
MAX_FILTER_ITEMS = 1000  # addresses, and alternatives per topic position, in one eth_getLogs (geth's bound)

T = TypeVar("T")
Handler = Callable[[list[Any], BatchBudget], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Raw:
    """A result that is already JSON bytes (stored records are spliced in without re-encoding)."""

    data: bytes


class Rpc:
    """The method table bound to one node; requests run on the server's event loop, calls and scans on
    its pool."""

    # Answers computed from the node alone, whatever the params.
    CONSTANTS: ClassVar[dict[str, Callable[[Node], Any]]] = {
        "web3_clientVersion": lambda n: CLIENT_VERSION,
        "net_version": lambda n: str(n.chain_id),
        "net_listening": lambda n: True,
        "eth_chainId": lambda n: qty(n.chain_id),
        "eth_accounts": lambda n: [],  # the node holds no user keys
        "eth_syncing": lambda n: False,
        "eth_mining": lambda n: True,
        "eth_blockNumber": lambda n: qty(n.head_number),
        "eth_gasPrice": lambda n: qty(n.next_base_fee() + PRIORITY_FEE),
        "eth_maxPriorityFeePerGas": lambda n: qty(PRIORITY_FEE),
    }
    # JSON-RPC name -> handler. A handler takes the params list; a coroutine is awaited; the rest run
    # inline on the loop (bounded index and state reads: on a small shared machine a thread hand-off costs
    # more than they do). Calls, estimates and scans take the batch's budget too and run on the pool.
    METHODS: ClassVar[dict[str, str]] = {
        "eth_feeHistory": "fee_history",
        "eth_getBlockByNumber": "get_block_by_number",
        "eth_getBlockByHash": "get_block_by_hash",
        "eth_getTransactionByHash": "get_transaction",
        "eth_getTransactionReceipt": "get_receipt",
        "eth_getLogs": "get_logs",
        "eth_getBalance": "get_balance",
        "eth_getTransactionCount": "get_transaction_count",
        "eth_getCode": "get_code",
        "eth_getStorageAt": "get_storage_at",
        "eth_call": "call",
        "eth_estimateGas": "estimate_gas",
        "eth_sendRawTransaction": "send_raw_transaction",
        "gm_getSeal": "get_seal",
        "gm_sealedBlock": "sealed_block",
        "gm_validators": "validators",
        "gm_nodeInfo": "node_info",
    }
    # test/devnet only (--dev-rpc): lets suites written for anvil move time forward
    DEV_METHODS: ClassVar[dict[str, str]] = {"evm_increaseTime": "increase_time", "evm_mine": "mine"}
    _BUDGETED: ClassVar[frozenset[str]] = frozenset({"call", "estimate_gas", "get_logs", "fee_history"})

    def __init__(self, node: Node, settings: NodeSettings) -> None:
        self.node = node
        self.settings = settings
        self.receipt_wait = settings.receipt_wait
        self.calls = CallPool(
            workers=settings.rpc_call_workers,
            timeout=settings.rpc_evm_timeout,
        )
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = defaultdict(list)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._commit: asyncio.Future[None] | None = None  # the group commit of the sends staged so far
        # set by the server: whether a send should be mined at once (a lone client, instant mode)
        self.mine_on_send: Callable[[], bool] = lambda: False
        # receipts clients asked for (recent, bounded): tells a waiting client from a streaming one
        self.asked: dict[bytes, None] = {}
        table = {**self.METHODS, **(self.DEV_METHODS if settings.dev_rpc else {})}
        self.methods: dict[str, Handler] = {
            name: getattr(self, attr) if attr in self._BUDGETED else _handler(getattr(self, attr))
            for name, attr in table.items()
        }
        for name, fn in self.CONSTANTS.items():
            self.methods[name] = _handler(_of_node(fn, node))
        node.add_listener(self._on_block)

    # -- plumbing --------------------------------------------------------------------------------------

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the server's event loop (block listeners wake receipt waiters through it)."""
        self._loop = loop

    def close(self) -> None:
        """Stop the call pool."""
        self.calls.close()

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

    def _budget(self, *, batch: bool) -> BatchBudget:
        s = self.settings
        return BatchBudget(
            # a single request is a batch of one: its gas is bounded by the cap, its answer by MAX_LOGS
            gas=s.rpc_batch_gas if batch else max(s.rpc_batch_gas, s.rpc_gas_cap),
            response_bytes=s.rpc_batch_response_bytes if batch else sys.maxsize,
            deadline=self.calls.deadline(),
        )

    async def handle_body(self, body: bytes) -> bytes | None:
        """Handle one HTTP body (single or batch); None when nothing is to be answered."""
        try:
            req = decode_body(body, max_depth=self.settings.rpc_max_json_depth)
        except RpcError as exc:
            return _encode(None, error=exc)
        if isinstance(req, list):
            if not req:
                return _encode(None, error=RpcError(Code.INVALID_REQUEST, "empty batch"))
            limit = self.settings.rpc_batch_limit
            if len(req) > limit:
                err = RpcError(
                    Code.LIMIT_EXCEEDED,
                    f"batch of {len(req)} requests, more than {limit}",
                    {"code": "BATCH_TOO_LARGE", "limit": limit},
                )
                return _encode(None, error=err)
            budget = self._budget(batch=True)
            parts = await asyncio.gather(*(self.handle_one(r, budget) for r in req))
            answered = [p for p in parts if p is not None]
            return b"[" + b",".join(answered) + b"]" if answered else None
        return await self.handle_one(req, self._budget(batch=False))

    async def handle_one(self, req: Any, budget: BatchBudget) -> bytes | None:
        """Handle one request object."""
        if not isinstance(req, dict):
            return _encode(None, error=RpcError(Code.INVALID_REQUEST, "request must be an object"))
        rid = req.get("id")
        if not valid_id(rid):
            return _encode(None, error=RpcError(Code.INVALID_REQUEST, "id must be a string, number or null"))
        method = req.get("method")
        if req.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return _encode(rid, error=RpcError(Code.INVALID_REQUEST))
        notification = "id" not in req
        params = req.get("params", [])
        if isinstance(params, dict):
            params = [params]
        if not isinstance(params, list):
            return _encode(rid, error=RpcError(Code.INVALID_PARAMS, "params must be an array"))
        handler = self.methods.get(method)
        if budget.response_bytes <= 0:  # the batch's answer is full: the rest is not even run
            out = _encode(rid, error=self._response_too_large())
        elif handler is None:
            out = _encode(rid, error=RpcError(Code.METHOD_NOT_FOUND, f"method not found: {show(method)}"))
        else:
            try:
                out = _encode(rid, result=await handler(params, budget))
            except Exception as exc:
                err = to_rpc_error(exc)
                if err.code == Code.INTERNAL_ERROR:
                    log.exception("internal error in %s", method)
                out = _encode(rid, error=err)
        if notification:
            return None
        if not budget.take_bytes(len(out)):
            out = _encode(rid, error=self._response_too_large())
        return out

    def _response_too_large(self) -> RpcError:
        return RpcError(
            Code.LIMIT_EXCEEDED,
            "batch response too large",
            {"code": "BATCH_RESPONSE_TOO_LARGE", "limit": self.settings.rpc_batch_response_bytes},
        )

    # -- blocks and transactions -----------------------------------------------------------------------

    def _block_tag(self, v: Any) -> int | None:
        """Block number for a tag; None means latest."""
        if v in (None, "latest", "pending", "safe", "finalized"):
            return None
        if v == "earliest":
            return 0
        if isinstance(v, dict):  # EIP-1898
            if "blockNumber" in v:
                return p_quantity(v["blockNumber"], "block number", U64_END)
            if "blockHash" in v:
                n = self.node.block_number_by_hash(p_hash(v["blockHash"]))
                if n is None:
                    raise RpcError(Code.RESOURCE_NOT_FOUND, "block not found")
                return n
        return p_quantity(v, "block number", U64_END)

    def _block(self, number: int, full: bool) -> Any:
        raw = self.node.get_block_raw(number)
        if raw is None:
            return None
        if not full:
            return Raw(raw)
        # The stored transactions spliced in for their hashes, unparsed: "transactions" ends the block
        # record (header_json), and a block may hold 1,400 transactions.
        cut = raw.rindex(b'"transactions":')
        hashes = json.loads(raw[cut + len(b'"transactions":') : -1])
        txs = [self.node.get_tx_raw(bytes.fromhex(h[2:])) or b"null" for h in hashes]
        return Raw(raw[:cut] + b'"transactions":[' + b",".join(txs) + b"]}")

    def get_block_by_number(self, params: list[Any]) -> Any:
        """eth_getBlockByNumber."""
        n = self._block_tag(param(params, 0))
        return self._block(self.node.head_number if n is None else n, bool(param(params, 1, False)))

    def get_block_by_hash(self, params: list[Any]) -> Any:
        """eth_getBlockByHash."""
        n = self.node.block_number_by_hash(p_hash(param(params, 0)))
        return None if n is None else self._block(n, bool(param(params, 1, False)))

    def get_transaction(self, params: list[Any]) -> Any:
        """eth_getTransactionByHash (mempool transactions have null block fields)."""
        h = p_hash(param(params, 0))
        raw = self.node.get_tx_raw(h)
        return Raw(raw) if raw is not None else self.node.pending_tx_json(h)

    async def get_receipt(self, params: list[Any]) -> Any:
        """eth_getTransactionReceipt; for a mempool transaction, waits briefly for its block (long poll)."""
        h = p_hash(param(params, 0))
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

    async def fee_history(self, params: list[Any], budget: BatchBudget) -> Any:
        """eth_feeHistory over stored blocks (up to 1,024 of them: on the pool, under the deadline)."""
        count = min(p_quantity(param(params, 0), "block count"), 1024)
        newest = self._block_tag(param(params, 1, "latest"))
        newest = self.node.head_number if newest is None else min(newest, self.node.head_number)
        percentiles = param(params, 2, None) or []
        if not isinstance(percentiles, list):
            raise RpcError(Code.INVALID_PARAMS, f"invalid reward percentiles: {show(percentiles)}")
        oldest = max(0, newest - count + 1)

        def scan() -> tuple[list[str], list[float]]:
            fees, ratios = [], []
            for n in range(oldest, newest + 1):
                b = json.loads(self.node.get_block_raw(n) or b"{}")
                fees.append(b["baseFeePerGas"])
                ratios.append(int(b["gasUsed"], 16) / int(b["gasLimit"], 16))
            return fees, ratios

        fees, ratios = await self.calls.run(scan, budget.deadline)
        fees.append(qty(self.node.next_base_fee()))
        out: dict[str, Any] = {"oldestBlock": qty(oldest), "baseFeePerGas": fees, "gasUsedRatio": ratios}
        if percentiles:
            out["reward"] = [[qty(PRIORITY_FEE)] * len(percentiles) for _ in ratios]
        return out

    async def get_logs(self, params: list[Any], budget: BatchBudget) -> Any:
        """eth_getLogs over the address/topic indexes (up to MAX_LOGS: on the pool, under the deadline)."""
        f = param(params, 0)
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
            []
            if addr is None
            else [p_address(a) for a in _filter_items(addr if isinstance(addr, list) else [addr])]
        )
        topics: list[list[bytes] | None] = []
        for t in f.get("topics") or []:
            if t is None:
                topics.append(None)
            elif isinstance(t, list):
                topics.append([p_hash(x) for x in _filter_items(t)] or None)
            else:
                topics.append([p_hash(t)])
        if lo > hi:
            return []
        logs = await self.calls.run(
            lambda: self.node.get_logs(
                from_block=lo, to_block=hi, addresses=addresses, topics=topics, limit=MAX_LOGS
            ),
            budget.deadline,
        )
        return Raw(b"[" + b",".join(logs) + b"]")

    # -- state (py-evm reads over committed data) ---------------------------------------------------------

    def get_balance(self, params: list[Any]) -> Any:
        """eth_getBalance."""
        return qty(
            self.node.account(p_address(param(params, 0)), self._block_tag(param(params, 1, None)), "balance")
        )

    def get_transaction_count(self, params: list[Any]) -> Any:
        """eth_getTransactionCount; "pending" counts the mempool."""
        addr = p_address(param(params, 0))
        tag = param(params, 1, None)
        if tag == "pending":
            return qty(self.node.pending_nonce(addr))
        return qty(self.node.account(addr, self._block_tag(tag), "nonce"))

    def get_code(self, params: list[Any]) -> Any:
        """eth_getCode."""
        return hx(
            self.node.account(p_address(param(params, 0)), self._block_tag(param(params, 1, None)), "code")
        )

    def get_storage_at(self, params: list[Any]) -> Any:
        """eth_getStorageAt."""
        addr = p_address(param(params, 0))
        slot = p_quantity(param(params, 1), "slot")
        value = self.node.account(addr, self._block_tag(param(params, 2, None)), "storage", slot)
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
            call["gas"] = gas = p_quantity(v["gas"], "gas")
            cap = self.settings.rpc_gas_cap
            if gas > cap:
                raise RpcError(
                    Code.EXECUTION_ERROR,
                    f"gas cap exceeded: {show(gas)} > {cap}",
                    {"code": "GAS_CAP_EXCEEDED", "cap": cap},
                )
        if v.get("value") is not None:
            call["value"] = p_quantity(v["value"], "value")
        data = v.get("data", v.get("input"))
        if data is not None:
            call["data"] = p_data(data)
        return call

    async def _on_pool(self, budget: BatchBudget, fn: Callable[[CallRunner], T]) -> T:
        """``fn(runner)`` on the call pool by the batch's deadline, while the batch has call gas left."""

        def job() -> T:
            budget.check_gas()
            with self.node.runners.runner() as runner:
                before = runner.gas_burned
                try:
                    return fn(runner)
                finally:
                    budget.spend_gas(runner.gas_burned - before)

        return await self.calls.run(job, budget.deadline)

    async def call(self, params: list[Any], budget: BatchBudget) -> Any:
        """eth_call, on the call pool under the gas cap and the deadline."""
        call = self._call_params(param(params, 0))
        number = self._block_tag(param(params, 1, None))
        call.setdefault("gas", min(self.node.genesis.gas_limit // 2, self.settings.rpc_gas_cap))
        return hx(await self._on_pool(budget, lambda r: r.call(call, number)))

    async def estimate_gas(self, params: list[Any], budget: BatchBudget) -> Any:
        """eth_estimateGas, on the call pool under the gas cap and the deadline (the given gas is not used:
        the search runs up to the cap)."""
        call = self._call_params(param(params, 0))
        call.pop("gas", None)
        number = self._block_tag(param(params, 1, None))
        cap = self.settings.rpc_gas_cap
        return qty(await self._on_pool(budget, lambda r: r.estimate_gas(call, number, cap=cap)))

    async def send_raw_transaction(self, params: list[Any]) -> Any:
        """eth_sendRawTransaction: returns the hash once the transaction is durable."""
        p = self.node.stage(p_data(param(params, 0), "raw transaction"))
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
        seconds = p_quantity(param(params, 0), "seconds", 1 << 32)
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
        """gm_getSeal(blockNumber): the block's seal (see provenance.chain.seal)."""
        n = self._block_tag(param(params, 0, "latest"))
        raw = self.node.get_seal_json(self.node.head_number if n is None else n)
        return None if raw is None else Raw(raw)

    def sealed_block(self, params: list[Any]) -> Any:
        """gm_sealedBlock(blockNumber): {"block", "seal"} in one answer."""
        n = self._block_tag(param(params, 0, "latest"))
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


def _filter_items(items: list[Any]) -> list[Any]:
    """A filter's addresses or one position's topics, at most MAX_FILTER_ITEMS of them."""
    if len(items) > MAX_FILTER_ITEMS:
        raise RpcError(
            Code.LIMIT_EXCEEDED,
            f"filter lists {len(items)} values in one field, more than {MAX_FILTER_ITEMS}",
            {"code": "FILTER_TOO_LARGE", "limit": MAX_FILTER_ITEMS},
        )
    return items


def encode_error(error: RpcError) -> bytes:
    """A JSON-RPC error response to a request whose id is unknown (the body was refused or unreadable)."""
    return _encode(None, error=error)


def _encode(rid: Any, *, result: Any = None, error: RpcError | None = None) -> bytes:
    head = b'{"jsonrpc":"2.0","id":' + json.dumps(rid).encode()
    if error is not None:
        return head + b',"error":' + json.dumps(error.to_json()).encode() + b"}"
    if isinstance(result, Raw):
        return head + b',"result":' + result.data + b"}"
    return head + b',"result":' + json.dumps(result, separators=(",", ":")).encode() + b"}"


def _of_node(fn: Callable[[Node], Any], node: Node) -> Callable[[list[Any]], Any]:
    """A handler answering ``fn(node)`` whatever the params."""
    return lambda params: fn(node)


def _handler(fn: Callable[[list[Any]], Any]) -> Handler:
    """A table entry for a handler that takes no budget (a coroutine function, or inline on the loop)."""
    if inspect.iscoroutinefunction(fn):

        async def run_async(params: list[Any], budget: BatchBudget) -> Any:
            return await fn(params)

        return run_async

    async def run(params: list[Any], budget: BatchBudget) -> Any:
        return fn(params)

    return run
