"""What a client reads of one answer: at most ``MAX_ANSWER_BYTES``, whole within ``ANSWER_SECONDS``.

httpx bounds each read (its time-out) but not an answer: a gateway or tile server that streams without end,
or trickles a byte a little inside each read's time-out, kept a command reading (and growing) until
interrupted (the fourth attack on the CLI). The bound is on the bytes as sent, so the client asks for them
uncompressed and refuses a compressed answer (a small gzip body can decode to gigabytes).

The time bound holds over the whole exchange, not the body alone (the fifth attack: an endless ``100
Continue``, header lines or chunk extensions trickled inside each read's time-out yield no body bytes): the
transport's connections read and write through :class:`_Watched` streams, which give each network operation
at most the time left to the answer in progress and refuse one past it.
"""

from __future__ import annotations

import contextlib
import contextvars
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import httpcore
import httpx

from provenance.errors import ProvenanceError

# A page of 100 bundles with 100 kB payloads is ~10 MB; one bundle at the gateway's 8 MiB body bound fits.
# Parsed, JSON takes up to ~30 times its bytes in memory (the sixth attack): 256 MiB could be 8 GB.
MAX_ANSWER_BYTES = 64 << 20
ANSWER_SECONDS = 300.0


class AnswerOutOfBounds(ProvenanceError):
    """An answer a client stopped reading: the server's fault, not one record's, so a command that goes on
    past a record it cannot check stops here (else a hostile server makes each of its answers cost the
    whole bound, one after another)."""


class AnswerTooLarge(AnswerOutOfBounds, code="ANSWER_TOO_LARGE"):
    """A server's answer past the bytes a client reads of one answer."""


class AnswerTooSlow(AnswerOutOfBounds, code="ANSWER_TOO_SLOW"):
    """A server's answer that did not arrive whole within the time a client gives one answer."""


class AnswerEncoded(AnswerOutOfBounds, code="ANSWER_ENCODED"):
    """A compressed answer though the client asked for none: a small body can decode to gigabytes."""


def _ask_plain(request: httpx.Request) -> None:
    request.headers["Accept-Encoding"] = (
        "identity"  # the bound is on bytes as sent: so they are the bytes read
    )


def _encoded(response: httpx.Response, url: str) -> AnswerEncoded | None:
    """The error to raise for a compressed answer (after closing it), or None."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return None
    return AnswerEncoded(
        f"the answer of {url} is {encoding[:20]!r}-encoded though none was asked: not read",
        details={"encoding": encoding[:20]},
    )


class _Bound:
    """The bytes read of one answer so far, against its bounds."""

    def __init__(self, url: str, max_bytes: int, deadline: float) -> None:
        self.url, self.max, self.deadline, self.read = url, max_bytes, deadline, 0

    def add(self, chunk: bytes) -> bytes:
        self.read += len(chunk)
        if self.read > self.max:
            raise AnswerTooLarge(
                f"the answer of {self.url} is larger than {self.max:,} bytes: not read further",
                details={"max_bytes": self.max},
            )
        if time.monotonic() > self.deadline:
            raise self.too_slow()
        return chunk

    def too_slow(self) -> AnswerTooSlow:
        return AnswerTooSlow(f"the answer of {self.url} did not arrive whole in time: not read further")

    def left(self, timeout: float | None) -> float:
        """The time a network operation may take now: its own time-out, at most what is left of the bound."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.too_slow()
        return left if timeout is None else min(timeout, left)


# The answer in progress in this thread or task: what the watched connections bound their operations by.
_answer: contextvars.ContextVar[_Bound | None] = contextvars.ContextVar("_answer", default=None)


def _left(timeout: float | None) -> float | None:
    bound = _answer.get()
    return timeout if bound is None else bound.left(timeout)


@contextlib.contextmanager
def _reading(bound: _Bound) -> Iterator[None]:
    """Network operations in here are the answer's: bounded by it, a time-out past it is ``AnswerTooSlow``."""
    token = _answer.set(bound)
    try:
        yield
    except httpx.TimeoutException:
        if time.monotonic() >= bound.deadline:
            raise bound.too_slow() from None
        raise
    finally:
        _answer.reset(token)


class _Watched(httpcore.NetworkStream):
    """A connection whose every read and write (the head of an answer, its framing, its body) is bounded by
    the answer in progress."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _Watched(self._stream.start_tls(ssl_context, server_hostname, _left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _AsyncWatched(httpcore.AsyncNetworkStream):
    """:class:`_Watched` for the async client."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, _left(timeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, _left(timeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _AsyncWatched(await self._stream.start_tls(ssl_context, server_hostname, _left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


_Options = Iterable[Any] | None


class _WatchedBackend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: _Options = None,
    ) -> httpcore.NetworkStream:
        return _Watched(self._backend.connect_tcp(host, port, _left(timeout), local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: _Options = None
    ) -> httpcore.NetworkStream:
        return _Watched(self._backend.connect_unix_socket(path, _left(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _AsyncWatchedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: _Options = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(host, port, _left(timeout), local_address, socket_options)
        return _AsyncWatched(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: _Options = None
    ) -> httpcore.AsyncNetworkStream:
        return _AsyncWatched(await self._backend.connect_unix_socket(path, _left(timeout), socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _BoundedStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, bound: _Bound) -> None:
        self._stream, self._bound = stream, bound

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._stream)
        while True:
            with _reading(self._bound):
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield self._bound.add(chunk)

    def close(self) -> None:
        self._stream.close()


class _AsyncBoundedStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, bound: _Bound) -> None:
        self._stream, self._bound = stream, bound

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = aiter(self._stream)
        while True:
            with _reading(self._bound):
                chunk = await anext(chunks, None)
            if chunk is None:
                return
            yield self._bound.add(chunk)

    async def aclose(self) -> None:
        await self._stream.aclose()


class _Bounds:
    """The bounds of a transport (``None``: the module's ``MAX_ANSWER_BYTES`` / ``ANSWER_SECONDS`` when the
    transport is made), and each request's start: asked uncompressed, its bound from now."""

    def __init__(self, *, max_bytes: int | None = None, seconds: float | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._max = MAX_ANSWER_BYTES if max_bytes is None else max_bytes
        self._seconds = ANSWER_SECONDS if seconds is None else seconds

    def _start(self, request: httpx.Request) -> _Bound:
        _ask_plain(request)
        return _Bound(str(request.url), self._max, time.monotonic() + self._seconds)


class BoundedTransport(_Bounds, httpx.HTTPTransport):
    """httpx's transport with a bound on each answer's bytes and on its total time."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        # httpx makes its pool without a network backend of ours; every pool of httpcore 1 keeps its own here
        self._pool._network_backend = _WatchedBackend(self._pool._network_backend)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        bound = self._start(request)
        with _reading(bound):
            response = super().handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        if (refused := _encoded(response, bound.url)) is not None:
            response.close()
            raise refused
        response.stream = _BoundedStream(response.stream, bound)
        return response


class AsyncBoundedTransport(_Bounds, httpx.AsyncHTTPTransport):
    """:class:`BoundedTransport` for the async client."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._pool._network_backend = _AsyncWatchedBackend(self._pool._network_backend)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        bound = self._start(request)
        with _reading(bound):
            response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        if (refused := _encoded(response, bound.url)) is not None:
            await response.aclose()
            raise refused
        response.stream = _AsyncBoundedStream(response.stream, bound)
        return response
