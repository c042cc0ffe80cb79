"""The ``eth_`` methods: blocks, transactions and receipts from the index, logs, fees, state reads, calls
and estimates on the call pool, and sends (staged, then made durable by the group commit or by a block).

Each handler takes the request's params list (and the batch's budget where it runs on the pool); the table
that names them is ``Rpc.METHODS`` (``chain_node/rpc.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from chain_node.calls import CallRunner
from chain_node.config import NodeSettings
from chain_node.encoding import Raw, hx, qty
from chain_node.errors import Code, RpcError, show
from chain_node.node import Node
from chain_node.params import U64_END, p_address, p_data, p_hash, p_quantity, param
from chain_node.rpc_limits import BatchBudget, CallPool

log = logging.getLogger("chain_node.rpc")

PRIORITY_FEE = 1_000_000_000  # suggested tip, as anvil/geth dev mode suggest
MAX_LOGS = 100_000
MAX_FILTER_ITEMS = 1000  # addresses, and alternatives per topic position, in one eth_getLogs (geth's bound)
MAX_ASKED = 10_000  # receipts remembered as asked for
MAX_FEE_HISTORY = 1024  # blocks one eth_feeHistory covers (geth's default; more are cut to these)
MAX_PERCENTILES = 100  # reward percentiles one eth_feeHistory may ask for (geth's maxQueryLimit)

T = TypeVar("T")


class EthMethods:
    """The ``eth_`` handlers bound to one node."""

    def __init__(self, node: Node, settings: NodeSettings, calls: CallPool) -> None:
        self.node = node
        self.index = node.index
        self.settings = settings
        self.calls = calls
        self.receipt_wait = settings.receipt_wait
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = defaultdict(list)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._commit: asyncio.Future[None] | None = None  # the group commit of the sends staged so far
        # set by the server: whether a send should be mined at once (a lone client, instant mode)
        self.mine_on_send: Callable[[], bool] = lambda: False
        # receipts clients asked for (recent, bounded): tells a waiting client from a streaming one
        self.asked: dict[bytes, None] = {}
        node.add_listener(self._on_block)

    # -- receipt waiters ---------------------------------------------------------------------------------

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the server's event loop (block listeners wake receipt waiters through it)."""
        self._loop = loop

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

    # -- blocks and transactions -------------------------------------------------------------------------

    def block_tag(self, v: Any) -> int | None:
        """Block number for a tag; None means latest."""
        if v in (None, "latest", "pending", "safe", "finalized"):
            return None
        if v == "earliest":
            return 0
        if isinstance(v, dict):  # EIP-1898
            if "blockNumber" in v:
                return p_quantity(v["blockNumber"], "block number", U64_END)
            if "blockHash" in v:
                n = self.index.block_number_by_hash(p_hash(v["blockHash"]))
                if n is None:
                    raise RpcError(Code.RESOURCE_NOT_FOUND, "block not found")
                return n
        return p_quantity(v, "block number", U64_END)

    def _block(self, number: int, full: bool) -> Any:
        raw = self.index.get_block_raw(number)
        if raw is None:
            return None
        if not full:
            return Raw(raw)
        # The stored transactions spliced in for their hashes, unparsed: "transactions" ends the block
        # record (header_json), and a block may hold 1,400 transactions.
        cut = raw.rindex(b'"transactions":')
        hashes = json.loads(raw[cut + len(b'"transactions":') : -1])
        txs = [self.index.get_tx_raw(bytes.fromhex(h[2:])) or b"null" for h in hashes]
        return Raw(raw[:cut] + b'"transactions":[' + b",".join(txs) + b"]}")

    def get_block_by_number(self, params: list[Any]) -> Any:
        """eth_getBlockByNumber."""
        n = self.block_tag(param(params, 0))
        return self._block(self.node.head_number if n is None else n, bool(param(params, 1, False)))

    def get_block_by_hash(self, params: list[Any]) -> Any:
        """eth_getBlockByHash."""
        n = self.index.block_number_by_hash(p_hash(param(params, 0)))
        return None if n is None else self._block(n, bool(param(params, 1, False)))

    def get_transaction(self, params: list[Any]) -> Any:
        """eth_getTransactionByHash (mempool transactions have null block fields)."""
        h = p_hash(param(params, 0))
        raw = self.index.get_tx_raw(h)
        return Raw(raw) if raw is not None else self.node.pending_tx_json(h)

    async def get_receipt(self, params: list[Any]) -> Any:
        """eth_getTransactionReceipt; for a mempool transaction, waits briefly for its block (long poll)."""
        h = p_hash(param(params, 0))
        self.asked[h] = None
        if len(self.asked) > MAX_ASKED:
            self.asked.pop(next(iter(self.asked)))
        raw = self.index.get_receipt_raw(h)
        if raw is None and self.node.in_mempool(h) and self.receipt_wait > 0:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters[h].append(fut)
            try:
                raw = self.index.get_receipt_raw(h)  # re-check: the block may have landed meanwhile
                if raw is None and self.node.in_mempool(h):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(fut, self.receipt_wait)
                    raw = self.index.get_receipt_raw(h)
            finally:
                lst = self._waiters.get(h)
                if lst is not None and fut in lst:
                    lst.remove(fut)
                    if not lst:
                        self._waiters.pop(h, None)
        return Raw(raw) if raw is not None else None

    async def fee_history(self, params: list[Any], budget: BatchBudget) -> Any:
        """eth_feeHistory over stored blocks (at most MAX_FEE_HISTORY of them, as geth: on the pool, under
        the deadline); at most MAX_PERCENTILES reward percentiles, rising, within 0-100 (geth's rules)."""
        count = min(p_quantity(param(params, 0), "block count"), MAX_FEE_HISTORY)
        newest = self.block_tag(param(params, 1, "latest"))
        newest = self.node.head_number if newest is None else min(newest, self.node.head_number)
        percentiles = _percentiles(param(params, 2, None))
        oldest = max(0, newest - count + 1)

        def scan() -> tuple[list[str], list[float]]:
            fees, ratios = [], []
            for n in range(oldest, newest + 1):
                b = json.loads(self.index.get_block_raw(n) or b"{}")
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
            n = self.index.block_number_by_hash(p_hash(f["blockHash"]))
            if n is None:
                raise RpcError(Code.RESOURCE_NOT_FOUND, "block not found")
            lo = hi = n
        else:
            a = self.block_tag(f.get("fromBlock"))
            b = self.block_tag(f.get("toBlock"))
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
            lambda: self.index.get_logs(
                from_block=lo, to_block=hi, addresses=addresses, topics=topics, limit=MAX_LOGS
            ),
            budget.deadline,
        )
        return Raw(b"[" + b",".join(logs) + b"]")

    # -- state (py-evm reads over committed data) ----------------------------------------------------------

    def get_balance(self, params: list[Any]) -> Any:
        """eth_getBalance."""
        return qty(
            self.node.account(p_address(param(params, 0)), self.block_tag(param(params, 1, None)), "balance")
        )

    def get_transaction_count(self, params: list[Any]) -> Any:
        """eth_getTransactionCount; "pending" counts the mempool."""
        addr = p_address(param(params, 0))
        tag = param(params, 1, None)
        if tag == "pending":
            return qty(self.node.pending_nonce(addr))
        return qty(self.node.account(addr, self.block_tag(tag), "nonce"))

    def get_code(self, params: list[Any]) -> Any:
        """eth_getCode."""
        return hx(
            self.node.account(p_address(param(params, 0)), self.block_tag(param(params, 1, None)), "code")
        )

    def get_storage_at(self, params: list[Any]) -> Any:
        """eth_getStorageAt."""
        addr = p_address(param(params, 0))
        slot = p_quantity(param(params, 1), "slot")
        value = self.node.account(addr, self.block_tag(param(params, 2, None)), "storage", slot)
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
        number = self.block_tag(param(params, 1, None))
        call.setdefault("gas", min(self.node.gas_cap, self.settings.rpc_gas_cap))
        return hx(await self._on_pool(budget, lambda r: r.call(call, number)))

    async def estimate_gas(self, params: list[Any], budget: BatchBudget) -> Any:
        """eth_estimateGas, on the call pool under the gas cap and the deadline; the search runs up to the
        call's own gas when it names one (geth: "gas required exceeds allowance" past it), else the cap."""
        call = self._call_params(param(params, 0))
        number = self.block_tag(param(params, 1, None))
        cap = self.settings.rpc_gas_cap
        return qty(await self._on_pool(budget, lambda r: r.estimate_gas(call, number, cap=cap)))

    # -- sends -------------------------------------------------------------------------------------------

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


def _percentiles(v: Any) -> list[float]:
    """eth_feeHistory's reward percentiles: a list of at most MAX_PERCENTILES numbers within 0-100, each
    above the one before (-32602 otherwise, naming the first that breaks a rule)."""
    if v is None:
        return []
    if not isinstance(v, list):
        raise RpcError(Code.INVALID_PARAMS, f"invalid reward percentiles: {show(v)}")
    if len(v) > MAX_PERCENTILES:
        raise RpcError(
            Code.INVALID_PARAMS,
            f"invalid reward percentiles: {len(v)} of them, more than {MAX_PERCENTILES}",
            {"code": "PERCENTILES_TOO_MANY", "limit": MAX_PERCENTILES},
        )
    for i, p in enumerate(v):
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 100:
            raise RpcError(Code.INVALID_PARAMS, f"invalid reward percentile #{i}: {show(p)} (0 to 100)")
        if i and p <= v[i - 1]:
            raise RpcError(
                Code.INVALID_PARAMS, f"invalid reward percentile #{i}: {show(p)} not above #{i - 1}"
            )
    return [float(p) for p in v]


def _filter_items(items: list[Any]) -> list[Any]:
    """A filter's addresses or one position's topics, at most MAX_FILTER_ITEMS of them."""
    if len(items) > MAX_FILTER_ITEMS:
        raise RpcError(
            Code.LIMIT_EXCEEDED,
            f"filter lists {len(items)} values in one field, more than {MAX_FILTER_ITEMS}",
            {"code": "FILTER_TOO_LARGE", "limit": MAX_FILTER_ITEMS},
        )
    return items
