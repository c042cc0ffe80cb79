"""Submissions that race: each organisation's body posted at the same instant, from its own thread."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import httpx

from tests.kit.gateway import Harness


def race(harness: Harness, bodies: Mapping[str, dict[str, Any]]) -> dict[str, httpx.Response]:
    """Every organisation's body of ``bodies`` posted at once (a barrier releases the threads together);
    each organisation's answer."""
    results: dict[str, httpx.Response] = {}
    start = threading.Barrier(len(bodies))

    def go(org: str) -> None:
        start.wait()
        results[org] = harness.client(org).post(bodies[org])

    threads = [threading.Thread(target=go, args=(org,)) for org in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.keys() == bodies.keys()
    return results
