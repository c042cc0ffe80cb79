"""JSON-RPC 2.0 dispatch: the method table, batch handling, budgets, error mapping, response encoding.

The handlers are ``chain_node/rpc_eth.py`` (``eth_``, ``net_``, ``web3_``) and ``chain_node/rpc_gm.py``
(``gm_``, dev); parameter parsing is ``chain_node/params.py``; bounds are ``chain_node/rpc_limits.py``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from chain_node.config import NodeSettings
from chain_node.encoding import Raw, qty
from chain_node.errors import Code, RpcError, show, to_rpc_error
from chain_node.node import Node
from chain_node.rpc_eth import PRIORITY_FEE, EthMethods
from chain_node.rpc_gm import GmMethods
from chain_node.rpc_limits import BatchBudget, CallPool, decode_body, valid_id

log = logging.getLogger("chain_node.rpc")

CLIENT_VERSION = "shancheng-node/0.1.0/py-evm-0.12.1b1"

Handler = Callable[[list[Any], BatchBudget], Awaitable[Any]]


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
    # JSON-RPC name -> handler (a method of EthMethods or GmMethods). A handler takes the params list; a
    # coroutine is awaited; the rest run inline on the loop (bounded index and state reads: on a small
    # shared machine a thread hand-off costs more than they do). Calls, estimates and scans take the
    # batch's budget too and run on the pool.
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
        self.calls = CallPool(
            workers=settings.rpc_call_workers,
            timeout=settings.rpc_evm_timeout,
        )
        self.eth = EthMethods(node, settings, self.calls)
        self.gm = GmMethods(node, self.eth)
        table = {**self.METHODS, **(self.DEV_METHODS if settings.dev_rpc else {})}
        self.methods: dict[str, Handler] = {}
        for name, attr in table.items():
            fn = getattr(self.eth, attr, None) or getattr(self.gm, attr)
            self.methods[name] = fn if attr in self._BUDGETED else _handler(fn)
        for name, constant in self.CONSTANTS.items():
            self.methods[name] = _handler(_of_node(constant, node))

    # -- plumbing --------------------------------------------------------------------------------------

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the server's event loop (block listeners wake receipt waiters through it)."""
        self.eth.bind_loop(loop)

    def close(self) -> None:
        """Stop the call pool."""
        self.calls.close()

    def set_mine_on_send(self, fn: Callable[[], bool]) -> None:
        """Ask ``fn()`` on each send whether to mine it at once (the server's lone-client test)."""
        self.eth.mine_on_send = fn

    def clients_waiting_on_last_block(self) -> bool:
        """Whether someone asked for a receipt of the last block's transactions (a one-at-a-time client)."""
        return self.eth.clients_waiting_on_last_block()

    # -- dispatch --------------------------------------------------------------------------------------

    def _budget(self, *, batch: bool) -> BatchBudget:
        s = self.settings
        return BatchBudget(
            # a single request is a batch of one: its gas is bounded by the cap, its answer as a batch's
            gas=s.rpc_batch_gas if batch else max(s.rpc_batch_gas, s.rpc_gas_cap),
            response_bytes=s.rpc_batch_response_bytes,
            batch=batch,
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
            out = _encode(rid, error=self._response_too_large(budget))
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
            out = _encode(rid, error=self._response_too_large(budget))
        return out

    def _response_too_large(self, budget: BatchBudget) -> RpcError:
        what = "batch response" if budget.batch else "response"
        return RpcError(
            Code.LIMIT_EXCEEDED,
            f"{what} too large",
            {
                "code": "BATCH_RESPONSE_TOO_LARGE" if budget.batch else "RESPONSE_TOO_LARGE",
                "limit": self.settings.rpc_batch_response_bytes,
            },
        )


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
