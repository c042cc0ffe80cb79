"""Guards on what a client sends: the strict JSON parse of request bodies (a key named twice is refused);
redirects never built from the request's Host header. The body's bounds (size 413, time 408, JSON nesting
depth 400) are ``gateway.api.front.Front``'s, before any parsing."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import Message

from provenance.errors import DuplicateKey
from provenance.records import unique_object


class SafeRedirects:
    """Rewrites the ``Location`` of the app's redirects (``/verify`` → ``/verify/``: Starlette builds them
    from the request's Host header) to a path, or onto the configured public URL (``Front`` applies it to
    every response).

    A request naming another host would otherwise get a redirect to it (cache poisoning, phishing links).
    """

    def __init__(self, *, public_url: str | None) -> None:
        self.base = (public_url or "").rstrip("/")

    def rewrite(self, message: Message) -> Message:
        """``message`` (an ``http.response.start``) with its ``Location`` made safe, if it is a redirect."""
        if not 300 <= message["status"] < 400:
            return message
        headers = [
            (k, self.location(v) if k.lower() == b"location" else v) for k, v in message.get("headers", [])
        ]
        return {**message, "headers": headers}

    def location(self, value: bytes) -> bytes:
        """``value`` without scheme and host, on the public URL if one is set."""
        parts = urlsplit(value.decode("latin-1"))
        # "//host/…" is a network-path reference, which a browser resolves to another host: one slash.
        path = "/" + parts.path.lstrip("/")
        return (self.base + urlunsplit(("", "", path, parts.query, parts.fragment))).encode("latin-1")


def strict_json(body: bytes) -> Any:
    """A request body's JSON, no key twice in any object (``DuplicateKey``: 400 JSON_DUPLICATE_KEY)."""
    return json.loads(body, object_pairs_hook=unique_object)


class _StrictJsonRequest(Request):
    """A request whose JSON body is parsed once, with the project's hook (no key twice in any object)."""

    _strict: Any

    async def json(self) -> Any:
        if not hasattr(self, "_strict"):
            self._strict = strict_json(await self.body())
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
