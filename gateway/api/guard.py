"""ASGI middleware: request bodies bounded in size (413) and JSON nesting depth (400) before any parsing;
redirects never built from the request's Host header."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import BodyTooDeep, BodyTooLarge, error_response

# Everything but the bytes that matter for nesting is dropped before the Python-level scan.
_KEEP = b'"[]{}\\'
_DROP = bytes(b for b in range(256) if b not in _KEEP)


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays/objects deeper than ``limit`` (strings and escapes respected)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for b in body.translate(None, _DROP):
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:  # backslash
                escaped = True
            elif b == 0x22:  # quote
                in_string = False
        elif b == 0x22:
            in_string = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif b in (0x5D, 0x7D):
            depth -= 1
    return False


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
