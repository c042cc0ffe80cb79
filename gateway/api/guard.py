"""ASGI middleware bounding request bodies: size (413) and JSON nesting depth (400) before any parsing."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import BodyTooDeep, BodyTooLarge, error_response
from provenance._internal.stack import json_depth_exceeds  # the node's scan too: one copy


class BodyGuard:
    """Reads a request body up to ``max_bytes`` and checks its JSON depth, then replays it to the app."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_depth: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(
                scope, receive, send, BodyTooLarge(self._large_msg(), details={"limit": self.max_bytes})
            )
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(
                    scope, receive, send, BodyTooLarge(self._large_msg(), details={"limit": self.max_bytes})
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if json_depth_exceeds(body, self.max_depth):
            err = BodyTooDeep(
                f"JSON nests deeper than {self.max_depth} levels", details={"limit": self.max_depth}
            )
            await self._reject(scope, receive, send, err)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _large_msg(self) -> str:
        return f"request body exceeds {self.max_bytes} bytes"

    async def _reject(self, scope: Scope, receive: Receive, send: Send, exc: Any) -> None:
        await error_response(exc)(scope, receive, send)
