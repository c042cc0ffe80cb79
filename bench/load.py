"""A light load generator: pre-encoded HTTP/1.1 requests over keep-alive connections (asyncio, one thread).

The benchmarks' client shares the two cores with the server it measures. httpx costs about 0.85 ms of CPU per
request here, as much as a third of what is measured; this client costs a small fraction of that, so the
figures say more about the server. Requests are encoded before the clock starts.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

Check = Callable[[int, bytes], None]  # (status, body) of one response; raises if it is not the expected one


def body(value: Any) -> bytes:
    """A JSON request body, compact."""
    return json.dumps(value, separators=(",", ":")).encode()


def wrap(path: str, data: bytes, headers: dict[str, str]) -> bytes:
    """One POST request with the JSON body ``data``, ready to write."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n{head}"
        f"content-length: {len(data)}\r\n\r\n"
    ).encode() + data


def encode(path: str, value: Any, headers: dict[str, str]) -> bytes:
    """One POST request with a JSON body, ready to write."""
    return wrap(path, body(value), headers)


async def _connection(
    host: str, port: int, requests: Sequence[bytes], check: Check, out: list[float]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for request in requests:
            t = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            out.append(time.perf_counter() - t)
            check(int(head[9:12]), body)
    finally:
        writer.close()


def run(
    url: str | Sequence[str], requests: Sequence[bytes], concurrency: int, check: Check
) -> dict[str, float]:
    """Send ``requests`` over ``concurrency`` connections, one at a time on each; rate and latency (ms).
    Request ``j`` goes on connection ``j % concurrency``; with several URLs (gateway instances) connection
    ``i`` goes to ``url[i % len(url)]``."""
    urls = [url] if isinstance(url, str) else list(url)
    addrs = [(p.hostname or "127.0.0.1", p.port or 80) for p in map(urlsplit, urls)]
    latencies: list[float] = []

    async def main() -> None:
        await asyncio.gather(
            *(
                _connection(*addrs[i % len(addrs)], requests[i::concurrency], check, latencies)
                for i in range(concurrency)
            )
        )

    t0 = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return {"rate": len(latencies) / elapsed, "p50": q[49] * 1000, "p99": q[98] * 1000, "seconds": elapsed}


def expect(status: int) -> Check:
    """A check that the response has ``status``."""

    def check(got: int, body: bytes) -> None:
        if got != status:
            raise RuntimeError(f"HTTP {got}: {body[:500]!r}")

    return check


def expect_all_accepted(got: int, body: bytes) -> None:
    """A bulk response: 200 and nothing rejected."""
    if got != 200 or json.loads(body)["rejected"]:
        raise RuntimeError(f"HTTP {got}: {body[:500]!r}")


class Tally:
    """A check that counts instead of stopping at the first refusal: records accepted, and what was not, by
    HTTP status and error code (a single submission answers ``status``, a bulk one 200 with its items').
    :meth:`require` after the run fails loudly unless every one of ``expected`` records was accepted."""

    def __init__(self, status: int = 202, *, bulk: bool = False) -> None:
        self.status, self.bulk = status, bulk
        self.accepted = 0
        self.refused: Counter[str] = Counter()

    def __call__(self, got: int, body: bytes) -> None:
        if got != self.status:
            try:
                code = json.loads(body)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = body[:80].decode("utf-8", "replace")
            self.refused[f"HTTP {got} {code}"] += 1
        elif not self.bulk:
            self.accepted += 1
        else:
            result = json.loads(body)
            self.accepted += result["accepted"]
            for item in result["items"]:
                if item["status"] != "accepted":
                    self.refused[f"item {item['error']['code']}"] += 1
                elif item.get("existing"):  # sent twice: the layout repeated a record
                    self.refused["item accepted already"] += 1

    def require(self, expected: int) -> None:
        """Raise unless ``expected`` records were accepted and nothing was refused."""
        if self.refused or self.accepted != expected:
            counts = ", ".join(f"{n} x {what}" for what, n in self.refused.most_common())
            raise RuntimeError(
                f"{self.accepted:,} of {expected:,} records accepted; refused: {counts or '-'}"
            )
