"""What a client reads of one answer: at most ``MAX_ANSWER_BYTES``, whole within ``ANSWER_SECONDS``.

httpx bounds each read (its time-out) but not an answer: a gateway or tile server that streams without end,
or trickles a byte a little inside each read's time-out, kept a command reading (and growing) until
interrupted (the fourth attack on the CLI). The bound is on the bytes as sent (before any content decoding).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx

from provenance.errors import ProvenanceError

MAX_ANSWER_BYTES = 256 << 20  # a page of 500 bundles with 100 kB payloads is ~50 MB
ANSWER_SECONDS = 300.0


class AnswerTooLarge(ProvenanceError, code="ANSWER_TOO_LARGE"):
    """A server's answer past the bytes a client reads of one answer."""


class AnswerTooSlow(ProvenanceError, code="ANSWER_TOO_SLOW"):
    """A server's answer that did not arrive whole within the time a client gives one answer."""


class _BoundedStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, url: str, max_bytes: int, deadline: float) -> None:
        self._stream, self._url, self._max, self._deadline = stream, url, max_bytes, deadline

    def __iter__(self) -> Iterator[bytes]:
        read = 0
        for chunk in self._stream:
            read += len(chunk)
            if read > self._max:
                raise AnswerTooLarge(
                    f"the answer of {self._url} is larger than {self._max:,} bytes: not read further",
                    details={"max_bytes": self._max},
                )
            if time.monotonic() > self._deadline:
                raise AnswerTooSlow(
                    f"the answer of {self._url} did not arrive whole in time: not read further"
                )
            yield chunk

    def close(self) -> None:
        self._stream.close()


class BoundedTransport(httpx.HTTPTransport):
    """httpx's transport with a bound on each answer's bytes and on its total time (``None``: the module's
    ``MAX_ANSWER_BYTES`` / ``ANSWER_SECONDS`` when the transport is made)."""

    def __init__(self, *, max_bytes: int | None = None, seconds: float | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._max = MAX_ANSWER_BYTES if max_bytes is None else max_bytes
        self._seconds = ANSWER_SECONDS if seconds is None else seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self._seconds
        response = super().handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _BoundedStream(response.stream, str(request.url), self._max, deadline)
        return response
