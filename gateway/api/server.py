"""The HTTP server the gateway runs under: uvicorn, with limits on what a client may hold open.

uvicorn's default protocol (httptools) bounds neither the size of a request's head nor the time a client
takes to send it: a 32 MiB header was read into memory, and hundreds of connections holding half a head
stayed open indefinitely. Here a request head must arrive whole within ``header_timeout`` and fit in
``max_header_bytes`` (else 408 or 431, and the connection closes); an idle keep-alive connection closes
after ``keep_alive_timeout``; the body's own deadline is the body guard's (``gateway.api.guard``). One
``server_config`` builds the server for ``python -m gateway serve``, ``provenance devnet up`` (which runs
it) and the tests.
"""

from __future__ import annotations

import asyncio
import http
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.core.config import GatewaySettings


class _LimitedProtocol(HttpToolsProtocol):
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


def limited_protocol(settings: GatewaySettings) -> type[HttpToolsProtocol]:
    """The HTTP protocol class with this gateway's head limits."""
    return type(
        "GatewayHttpProtocol",
        (_LimitedProtocol,),
        {"max_header_bytes": settings.max_header_bytes, "header_timeout": settings.header_timeout},
    )


def server_config(app: Any, settings: GatewaySettings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration of a gateway app: its address and every HTTP limit from ``settings``."""
    values: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": limited_protocol(settings),
        "timeout_keep_alive": settings.keep_alive_timeout,
        "log_level": "info",
        "access_log": settings.access_log,
        "proxy_headers": False,  # no proxy in front by default; its middleware ran on every request
        **overrides,
    }
    return uvicorn.Config(app, **values)
