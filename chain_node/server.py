"""HTTP transport: a minimal ASGI app (POST JSON-RPC at any path) served by uvicorn."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn

from chain_node.config import NodeSettings
from chain_node.errors import Code, RpcError
from chain_node.genesis import VALIDATOR_KEY_FILE, Genesis
from chain_node.node import Node
from chain_node.rpc import Rpc, encode_error
from chain_node.store import Store
from provenance.crypto import SM2PrivateKey
from provenance.errors import BodyTimeout, BodyTooLarge, LedgerError
from provenance.http_limits import limited_config, read_body
from provenance.limits import THREAD_STACK_BYTES

log = logging.getLogger("chain_node.server")

_JSON_HEADERS = [(b"content-type", b"application/json")]
# What a preflight allows: JSON POSTs (content-type is not a CORS-safelisted value for JSON), cached 10 min.
_PREFLIGHT = [
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-allow-headers", b"content-type"),
    (b"access-control-max-age", b"600"),
]

# Instant mode under a stream of sends (last block < STREAM_WINDOW ago, nobody polling its receipts):
# keep the block open while sends keep arriving within LINGER_GAP, up to LINGER_MAX / LINGER_TXS.
STREAM_WINDOW = 0.05
LINGER_GAP = 0.002
LINGER_MAX = 0.05
LINGER_TXS = 500


class App:
    """ASGI application around one :class:`Rpc`."""

    def __init__(self, rpc: Rpc) -> None:
        self.rpc = rpc
        self.max_body = rpc.settings.rpc_max_body_bytes
        self.body_timeout = rpc.settings.rpc_body_timeout
        origin = rpc.settings.rpc_cors_origin
        self.cors: list[tuple[bytes, bytes]] = (
            [(b"access-control-allow-origin", origin.encode()), (b"vary", b"origin")] if origin else []
        )
        self._wake = asyncio.Event()
        self._stopping = False
        self._producer: asyncio.Task[None] | None = None
        self._miner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="miner")
        if rpc.node.block_time is None:
            rpc.set_mine_on_send(self._lone_client)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] == "OPTIONS" and self.cors:  # a browser's CORS preflight of a JSON POST
            await _respond(send, 204, b"", [*self.cors, *_PREFLIGHT])
            return
        if scope["method"] != "POST":
            await _respond(
                send,
                405,
                encode_error(RpcError(Code.INVALID_REQUEST, "POST JSON-RPC 2.0 requests")),
                self.cors,
            )
            return
        try:
            body = await read_body(scope, receive, max_bytes=self.max_body, timeout=self.body_timeout)
        except BodyTooLarge as exc:
            message = f"request body larger than {self.max_body} bytes"
            too_large = RpcError(Code.LIMIT_EXCEEDED, message, {"code": exc.code, **exc.details})
            await _respond(send, 413, encode_error(too_large), self.cors)
            return
        except BodyTimeout as exc:  # the protocol closes: the body is unread
            late = RpcError(Code.LIMIT_EXCEEDED, exc.message, {"code": exc.code, **exc.details})
            await _respond(send, 408, encode_error(late), self.cors)
            return
        if body is None:
            return
        out = await self.rpc.handle_body(body)
        await _respond(send, 200, out or b"", self.cors)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                self.rpc.bind_loop(asyncio.get_running_loop())
                self._producer = asyncio.create_task(self._produce_blocks())
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                self._stopping = True
                self._wake.set()
                if self._producer is not None:
                    await self._producer  # the block in progress completes (or was never started)
                self._miner.shutdown(wait=True)
                self.rpc.close()
                self.rpc.node.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _produce_blocks(self) -> None:
        """Seal on arrival (default) or every block_time seconds; batch whatever is waiting, and whatever
        arrives while a block waits for the clock (the block would be stamped too far ahead of it)."""
        node = self.rpc.node
        node.set_wake(self._wake.set)
        block_time = node.block_time
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while not self._stopping:
            if block_time:
                next_tick += block_time
                await asyncio.sleep(max(0.0, next_tick - loop.time()))
                await self._await_clock()
                if not self._stopping:
                    await self._mine(threaded=True)
                continue
            await self._wake.wait()
            self._wake.clear()
            while not self._stopping and node.pending_count():
                waited = await self._await_clock()
                if self._stopping:
                    break
                stream = not waited and (
                    node.since_last_block() < STREAM_WINDOW and not self.rpc.clients_waiting_on_last_block()
                )
                if stream:
                    await self._linger()
                try:
                    await self._mine(threaded=stream or waited)
                except Exception:
                    log.exception("block production failed")
                await asyncio.sleep(0)  # let requests that arrived meanwhile in before the next block

    async def _await_clock(self) -> bool:
        """Wait while the next block would be stamped too far ahead of the clock; True if it waited."""
        waited = False
        while not self._stopping and (delay := self.rpc.node.seal_delay()) > 0:
            waited = True
            await asyncio.sleep(delay)
        return waited

    def _lone_client(self) -> bool:
        """A client that waits for each receipt, not a stream: its sends are mined as they arrive (unless
        the clock bound holds the next block back: then they wait for it with the rest)."""
        node = self.rpc.node
        return (
            (node.since_last_block() >= STREAM_WINDOW or self.rpc.clients_waiting_on_last_block())
            and not node.pending_count()
            and node.seal_delay() == 0
        )

    async def _mine(self, *, threaded: bool) -> None:
        """Mine one block: inline for a lone waiting client (no hand-off latency), on the miner thread
        under a stream (the loop keeps accepting sends while the block is built)."""
        log.debug("mining %s", "on the miner thread" if threaded else "inline")
        if threaded:
            await asyncio.get_running_loop().run_in_executor(self._miner, self.rpc.node.mine_once)
        else:
            self.rpc.node.mine_once()

    async def _linger(self) -> None:
        """Sends stream in and nobody waits on receipts: keep the block open while they keep coming."""
        node = self.rpc.node
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LINGER_MAX
        start = loop.time()
        seen = node.pending_count()
        while loop.time() < deadline and seen < LINGER_TXS:
            await asyncio.sleep(LINGER_GAP)
            now = node.pending_count()
            if now == seen:
                break
            seen = now
        log.debug("lingered %.1f ms for %d txs", (loop.time() - start) * 1e3, seen)


async def _respond(
    send: Any, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    # An explicit length: without it the response goes out chunked, in more and smaller writes.
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *(extra or [])]
    if status in (408, 413):  # the body was refused unread: the connection closes after this answer
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def build_node(settings: NodeSettings) -> Node:
    """Open the data directory and the chain described by the settings."""
    genesis_path = settings.genesis_path()
    if not genesis_path.exists():
        raise LedgerError(f"genesis file not found: {genesis_path} (run `provenance node init` first)")
    key_path = settings.data_dir / VALIDATOR_KEY_FILE
    if not key_path.exists():
        raise LedgerError(f"validator key not found: {key_path}")
    genesis = Genesis.load(genesis_path)
    key = SM2PrivateKey.from_pem(key_path.read_bytes())
    return Node(
        store=Store(settings.data_dir, sync=settings.sync),
        genesis=genesis,
        validator_key=key,
        block_time=settings.block_time,
        max_clock_lead=settings.max_clock_lead,
        max_exec_time=settings.max_exec_time,
        allow_unprotected_txs=settings.allow_unprotected_txs,
    )


def serve(settings: NodeSettings) -> None:
    """Run the node and its JSON-RPC server until interrupted."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    # While the miner thread builds a block, the loop thread must get the GIL often enough to keep
    # accepting sends: 1 ms instead of the default 5 ms switch interval.
    sys.setswitchinterval(0.001)
    # The miner and call threads run py-evm as deep as the recursion limit allows: give them the stack
    # for it (threads started from here on; the pools start theirs on first use).
    threading.stack_size(THREAD_STACK_BYTES)
    node = build_node(settings)
    app = App(Rpc(node, settings))
    config = limited_config(
        app,
        host=settings.rpc_host,
        port=settings.rpc_port,
        max_header_bytes=settings.rpc_max_header_bytes,
        header_timeout=settings.rpc_header_timeout,
        keep_alive_timeout=settings.rpc_keep_alive_timeout,
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
