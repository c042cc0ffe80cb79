"""Guards on what a client sends: ASGI middleware bounding request bodies (size 413, JSON nesting depth 400)
before any parsing, and the strict JSON parse of request bodies (a key named twice is refused); redirects
never built from the request's Host header."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import BodyTooDeep, error_response
from provenance.errors import BodyTimeout, BodyTooLarge, DuplicateKey
from provenance.http_limits import read_body
from provenance.limits import json_depth_exceeds  # the node's scan too: one copy
from provenance.records import unique_object


class BodyGuard:
    """Reads a request body up to ``max_bytes`` within ``timeout`` seconds and checks its JSON depth, then
    replays it to the app. Every refusal closes the connection: the rest of the body is not read."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_depth: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(scope, receive, max_bytes=self.max_bytes, timeout=self.timeout)
        except (BodyTooLarge, BodyTimeout) as exc:
            await self._reject(scope, receive, send, exc)
            return
        if body is None:
            return
        if json_depth_exceeds(body, self.max_depth):
            deep = BodyTooDeep(
                f"JSON nests deeper than {self.max_depth} levels", details={"limit": self.max_depth}
            )
            await self._reject(scope, receive, send, deep)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, exc: Any) -> None:
        response = error_response(exc)
        # Otherwise uvicorn keeps the connection for the next request while the client goes on sending the
        # body it refused (each byte resetting the keep-alive time-out).
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


class SafeRedirects:
    """Rewrites the ``Location`` of the app's redirects (``/verify`` → ``/verify/``: Starlette builds them
    from the request's Host header) to a path, or onto the configured public URL.

    A request naming another host would otherwise get a redirect to it (cache poisoning, phishing links).
    """

    def __init__(self, app: ASGIApp, *, public_url: str | None) -> None:
        self.app = app
        self.base = (public_url or "").rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_safe(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                headers = [
                    (k, self.location(v) if k.lower() == b"location" else v)
                    for k, v in message.get("headers", [])
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_safe)

    def location(self, value: bytes) -> bytes:
        """``value`` without scheme and host, on the public URL if one is set."""
        parts = urlsplit(value.decode("latin-1"))
        # "//host/…" is a network-path reference, which a browser resolves to another host: one slash.
        path = "/" + parts.path.lstrip("/")
        return (self.base + urlunsplit(("", "", path, parts.query, parts.fragment))).encode("latin-1")


class _StrictJsonRequest(Request):
    """A request whose JSON body is parsed once, with the project's hook (no key twice in any object)."""

    _strict: Any

    async def json(self) -> Any:
        if not hasattr(self, "_strict"):
            self._strict = json.loads(await self.body(), object_pairs_hook=unique_object)
        return self._strict


class StrictJsonRoute(APIRoute):
    """A route whose JSON body refuses duplicate keys at any depth (400 ``JSON_DUPLICATE_KEY``), like every
    other JSON the project parses: FastAPI's own parse keeps the last copy of a key silently."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            req = _StrictJsonRequest(request.scope, request.receive)
            if await req.body():
                try:
                    await req.json()  # here, not in the handler: FastAPI turns its errors into a bare 400
                except DuplicateKey:
                    raise
                except (ValueError, RecursionError):
                    pass  # not JSON at all: the handler parses again and answers JSON_INVALID
            return await handler(req)

        return strict
