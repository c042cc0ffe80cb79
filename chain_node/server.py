"""HTTP transport: a minimal ASGI app (POST JSON-RPC at any path) served by uvicorn."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn

from chain_node.config import NodeSettings
from chain_node.genesis import VALIDATOR_KEY_FILE, Genesis
from chain_node.node import Node
from chain_node.rpc import Rpc
from chain_node.store import Store
from provenance.crypto import SM2PrivateKey
from provenance.errors import LedgerError

log = logging.getLogger("chain_node.server")

_JSON_HEADERS = [(b"content-type", b"application/json")]
MAX_BODY = 32 << 20


class App:
    """ASGI application around one :class:`Rpc`."""

    def __init__(self, rpc: Rpc) -> None:
        self.rpc = rpc

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await _respond(send, 405, b'{"error":"POST JSON-RPC 2.0 requests"}')
            return
        chunks = []
        size = 0
        while True:
            msg = await receive()
            body = msg.get("body", b"")
            size += len(body)
            if size > MAX_BODY:
                await _respond(send, 413, b'{"error":"request too large"}')
                return
            chunks.append(body)
            if not msg.get("more_body"):
                break
        out = await self.rpc.handle_body(b"".join(chunks))
        await _respond(send, 200, out or b"")

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                self.rpc.bind_loop(asyncio.get_running_loop())
                self.rpc.node.start()
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self._shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _shutdown(self) -> None:
        self.rpc.close()
        self.rpc.node.stop()


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _JSON_HEADERS})
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
        store=Store(settings.data_dir), genesis=genesis, validator_key=key, block_time=settings.block_time
    )


def serve(settings: NodeSettings) -> None:
    """Run the node and its JSON-RPC server until interrupted."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    node = build_node(settings)
    app = App(Rpc(node, receipt_wait=settings.receipt_wait))
    config = uvicorn.Config(
        app,
        host=settings.rpc_host,
        port=settings.rpc_port,
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
