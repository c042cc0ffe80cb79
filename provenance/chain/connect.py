"""The one way the SDK reaches a chain: a web3.py ``Web3`` over JSON-RPC on HTTP.

A node's answers are read as a gateway's are (:mod:`provenance.client.transport`): at most 64 MiB, whole
within 300 s, uncompressed (an event's logs from genesis that do not fit one answer are read in spans,
``provenance.chain.events.all_logs``). web3's own HTTP provider reads an answer through
``requests`` until it ends, bounded only by each read's time-out, so a node answering without end or a byte
at a time kept ``orgs export``, ``audit`` and ``verify --rpc`` reading and growing until interrupted.
"""

from __future__ import annotations

from typing import Any

import httpx
import requests
from web3 import HTTPProvider, Web3

from provenance.client.transport import BoundedTransport


class _BoundedPosts:
    """What :class:`HTTPProvider` posts through (the one method of its session manager it calls for a
    request or a batch), over httpx with the bounded transport; failures are the ``requests`` exceptions
    web3 retries and the CLI reports as a chain that does not answer."""

    def __init__(self, timeout: float) -> None:
        self._http = httpx.Client(timeout=timeout, transport=BoundedTransport())

    def make_post_request(self, endpoint_uri: str, data: bytes | dict[str, Any], **kwargs: Any) -> bytes:
        body = {"content": data} if isinstance(data, bytes) else {"json": data}
        try:
            resp = self._http.post(
                str(endpoint_uri), headers=kwargs.get("headers"), timeout=kwargs.get("timeout"), **body
            )
        except httpx.TimeoutException as exc:
            raise requests.Timeout(f"{type(exc).__name__}: {exc}") from exc
        except httpx.TransportError as exc:
            raise requests.ConnectionError(f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 400:
            raise requests.HTTPError(f"{resp.status_code} {resp.reason_phrase[:80]!r} from the node")
        return resp.content


class BoundedHTTPProvider(HTTPProvider):
    """web3's HTTP provider (request caching, batches) reading each answer within bounds, once: web3 retries
    a failed read up to five times by default, which made one call five bounded answers (~25 min) from a
    node failing each slowly (the sixth attack)."""

    def __init__(self, endpoint_uri: str, *, timeout: float = 30.0) -> None:
        super().__init__(
            endpoint_uri, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
        )
        self._request_session_manager = _BoundedPosts(timeout)  # type: ignore[assignment]


def connect(rpc_url: str, *, timeout: float = 30.0) -> Web3:
    """A ``Web3`` for the node at ``rpc_url``; each read gives up after ``timeout`` seconds, an answer past
    the bounds of :mod:`provenance.client.transport`."""
    return Web3(BoundedHTTPProvider(rpc_url, timeout=timeout))
