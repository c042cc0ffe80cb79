"""Raw-socket checks of the HTTP limits every server of the project runs under (``provenance.http_limits``):
a head too large (431), heads and bodies too slow (408), an idle keep-alive connection; each closed by the
server while an honest client is answered meanwhile. The gateway's, the node's and the witnesses' tests."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from devnet.engines import stop_process

REPO = Path(__file__).resolve().parents[2]
GRACE = 5.0  # beyond a time-out: scheduling on a shared machine, never a speed claim


@dataclass(frozen=True)
class Limits:
    """The limits a server was started with (seconds, bytes)."""

    header_timeout: float
    body_timeout: float
    keep_alive_timeout: float
    max_header_bytes: int


def _connect(port: int, limits: Limits) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=limits.header_timeout + GRACE)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _answer(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (raises on the read time-out)."""
    out = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := s.recv(65536):
            out += chunk
    return out


def _one_response(s: socket.socket) -> bytes:
    """One whole response with a Content-Length (head and body), leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


def _send_quietly(s: socket.socket, data: bytes) -> None:
    """Send, tolerating a server that closed the connection part way (it may refuse before the end)."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        s.sendall(data)


def _closed_by_server(s: socket.socket, within: float) -> bytes:
    s.settimeout(within)
    started = time.monotonic()
    answer = _answer(s)
    assert time.monotonic() - started < within
    return answer


def check_http_limits(
    port: int,
    limits: Limits,
    *,
    honest: Callable[[], None],
    request: bytes,
    answer: bytes,
    body_head: bytes,
) -> None:
    """Every limit against the server on ``port``: ``honest()`` is a client that must be answered while
    others hold connections; ``request`` a whole request answered with status line prefix ``answer`` on a
    kept-alive connection; ``body_head`` the head of a request whose body then trickles (its
    Content-Length larger than what is sent)."""
    # A head larger than max_header_bytes: 431 and closed, without reading the rest.
    with _connect(port, limits) as s:
        _send_quietly(s, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (4 * 1024 * 1024))
        got = _closed_by_server(s, GRACE)
        assert got.startswith(b"HTTP/1.1 431 "), got[:200]

    # Many connections holding half a head (a byte now and then), one sending nothing at all, one slow
    # body: all closed after their time-out, while an honest client is answered meanwhile.
    holders = [_connect(port, limits) for _ in range(60)]
    silent = _connect(port, limits)
    slow_body = _connect(port, limits)
    try:
        for s in holders:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow_body.sendall(body_head)
        for _ in range(3):  # trickle: each byte is activity, the head is still not whole
            time.sleep(0.3)
            for s in holders:
                _send_quietly(s, b"a")
            _send_quietly(slow_body, b" ")
        honest()
        for s in holders:
            got = _closed_by_server(s, limits.header_timeout + GRACE)
            assert got == b"" or got.startswith(b"HTTP/1.1 408 "), got[:200]
        got = _closed_by_server(silent, limits.header_timeout + GRACE)
        assert got == b"" or got.startswith(b"HTTP/1.1 408 "), got[:200]
        got = _closed_by_server(slow_body, limits.body_timeout + GRACE)
        assert got.startswith(b"HTTP/1.1 408 ") and b"BODY_TIMEOUT" in got, got[:300]
        assert b"connection: close" in got.lower()
    finally:
        for s in [*holders, silent, slow_body]:
            s.close()

    # An idle keep-alive connection closes after keep_alive_timeout; the server still answers.
    with _connect(port, limits) as s:
        s.sendall(request)
        first = _one_response(s)
        assert first.startswith(answer), first[:200]
        assert _closed_by_server(s, limits.keep_alive_timeout + GRACE) == b""
    honest()


@contextlib.contextmanager
def service(cmd: list[str], env: dict[str, str], health: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server process started from the checkout, once ``health`` answers 200; stopped at the end."""
    out = log.open("wb")
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(health, timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"{cmd} did not start"
            time.sleep(0.2)
        yield proc
        assert proc.poll() is None, f"{cmd} died: {log.read_text()[-2000:]}"
    finally:
        stop_process(proc, 30)
        out.close()
