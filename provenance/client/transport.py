"""What a client reads of one answer: at most ``MAX_ANSWER_BYTES``, whole within ``ANSWER_SECONDS``.

httpx bounds each read (its time-out) but not an answer: a gateway or tile server that streams without end,
or trickles a byte a little inside each read's time-out, kept a command reading (and growing) until
interrupted (the fourth attack on the CLI). The bound is on the bytes as sent, so the client asks for them
uncompressed and refuses a compressed answer (a small gzip body can decode to gigabytes).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from provenance.errors import ProvenanceError

MAX_ANSWER_BYTES = 256 << 20  # a page of 500 bundles with 100 kB payloads is ~50 MB
ANSWER_SECONDS = 300.0


class AnswerTooLarge(ProvenanceError, code="ANSWER_TOO_LARGE"):
    """A server's answer past the bytes a client reads of one answer."""


class AnswerTooSlow(ProvenanceError, code="ANSWER_TOO_SLOW"):
    """A server's answer that did not arrive whole within the time a client gives one answer."""


class AnswerEncoded(ProvenanceError, code="ANSWER_ENCODED"):
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
            raise AnswerTooSlow(f"the answer of {self.url} did not arrive whole in time: not read further")
        return chunk


class _BoundedStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, bound: _Bound) -> None:
        self._stream, self._bound = stream, bound

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            yield self._bound.add(chunk)

    def close(self) -> None:
        self._stream.close()


class _AsyncBoundedStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, bound: _Bound) -> None:
        self._stream, self._bound = stream, bound

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
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

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        bound = self._start(request)
        response = super().handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        if (refused := _encoded(response, bound.url)) is not None:
            response.close()
            raise refused
        response.stream = _BoundedStream(response.stream, bound)
        return response


class AsyncBoundedTransport(_Bounds, httpx.AsyncHTTPTransport):
    """:class:`BoundedTransport` for the async client."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        bound = self._start(request)
        response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        if (refused := _encoded(response, bound.url)) is not None:
            await response.aclose()
            raise refused
        response.stream = _AsyncBoundedStream(response.stream, bound)
        return response
