"""The HTTP server limits every service of the project runs under (gateway, node, witness): uvicorn's
httptools protocol with a bound on a request head's size and on the time a client takes to send it.

uvicorn's default protocol (httptools) bounds neither: a 32 MiB header was read into memory, and hundreds of
connections holding half a head stayed open indefinitely (issue #23, finding 9 against the gateway; the
second attack's finding 4 against the node and the witnesses). Here a request head must arrive whole
within ``header_timeout`` and fit in ``max_header_bytes`` (else 408 or 431, and the connection closes).
A body's own deadline is the application's (it reads the body, ``read_body``); a response sent before the
whole body arrived closes the connection.
"""

from __future__ import annotations

import asyncio
import http
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from provenance.errors import BodyTimeout, BodyTooLarge


class LimitedHttpProtocol(HttpToolsProtocol):
    """httptools' protocol with a head size limit and a head deadline (set per server by subclassing)."""

    max_header_bytes: ClassVar[int]
    header_timeout: ClassVar[float]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head: int | None = 0  # bytes received of the request head so far; None between heads
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm()  # a connection that sends nothing is a head that never arrives

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head is not None:
            # Counted by chunk, before the parser buffers it (httptools keeps a header value whole until it
            # ends): a chunk that also ends the previous body counts whole, a pipelining client's only cost.
            self._head += len(data)
        super().data_received(data)
        if self._head is not None and self._head > self.max_header_bytes and not self.transport.is_closing():
            self._refuse(431, f"request head exceeds {self.max_header_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head is None:
            self._head = 0
        self._arm()

    def on_headers_complete(self) -> None:
        self._head = None
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        if self.cycle is not None and self.cycle.more_body and not self.transport.is_closing():
            # Answered before its body arrived (a route that reads none): the rest is not worth waiting
            # for, and waiting would let a slow sender hold the connection (each byte resets keep-alive).
            self.transport.close()
        super().on_response_complete()

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._head is not None and not self.transport.is_closing():
            self._refuse(408, f"request head not received within {self.header_timeout:g} s")

    def _refuse(self, status: int, message: str) -> None:
        """A plain-text error and close: no request exists yet to hand to the app."""
        self._disarm()
        self._head = None
        body = message.encode("ascii")
        phrase = http.HTTPStatus(status).phrase.encode("ascii")
        head = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def limited_protocol(*, max_header_bytes: int, header_timeout: float) -> type[HttpToolsProtocol]:
    """The HTTP protocol class with these head limits (a subclass: uvicorn takes a class, not an instance)."""
    return type(
        "LimitedHttpProtocol",
        (LimitedHttpProtocol,),
        {"max_header_bytes": max_header_bytes, "header_timeout": header_timeout},
    )


def limited_config(
    app: Any,
    *,
    host: str,
    port: int,
    max_header_bytes: int,
    header_timeout: float,
    keep_alive_timeout: int,
    **overrides: Any,
) -> uvicorn.Config:
    """A uvicorn configuration serving ``app`` with the head limits and the keep-alive time-out."""
    values: dict[str, Any] = {
        "host": host,
        "port": port,
        "http": limited_protocol(max_header_bytes=max_header_bytes, header_timeout=header_timeout),
        "timeout_keep_alive": keep_alive_timeout,
        "proxy_headers": False,  # no proxy in front by default; its middleware ran on every request
        **overrides,
    }
    return uvicorn.Config(app, **values)


async def read_body(
    scope: Mapping[str, Any],
    receive: Callable[[], Awaitable[Mapping[str, Any]]],
    *,
    max_bytes: int,
    timeout: float,
) -> bytes | None:
    """An ASGI request's whole body, or None when the client disconnected first.

    Raises ``BodyTooLarge`` for a body declared or sent beyond ``max_bytes`` (the rest is not read) and
    ``BodyTimeout`` for one not whole within ``timeout`` seconds: one deadline for the whole body, not one
    per read, since a byte a second is a stalled client too.
    """
    too_large = BodyTooLarge(f"request body exceeds {max_bytes} bytes", details={"limit": max_bytes})
    declared = dict(scope.get("headers") or []).get(b"content-length", b"")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large  # refused before reading a byte of it
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > max_bytes:
                    raise too_large
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        raise BodyTimeout(
            f"request body not received within {timeout:g} s", details={"timeout": timeout, "received": size}
        ) from None
