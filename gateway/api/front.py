"""The one ASGI middleware in front of the app (``Front``), and the lean routes it answers itself.

Every HTTP request passes through ``Front`` once: its duration and status counted (``metrics``, by the
route template it matched), redirects rewritten off the Host header (``SafeRedirects``), the request body
bounded before any parsing (size 413, time 408, JSON depth 400; every refusal closes the connection). These
were three nested middlewares; folded into one, a request crosses one layer and one ``send`` wrapper.

The hot requests (a single submission, a record's proof and bundle) are answered here by ``LeanRoute``
endpoints, without FastAPI's routing, dependency resolution and response model: they call the same
dependencies and services as their FastAPI route, answer with the same error handler, and take only what
that route would take the same way (JSON parsed once, strictly; the body model; the simple forms of the
headers and query). Anything else (another content type, a body the model refuses, an unusual query)
goes on to the FastAPI route, which answers it as it always did: the FastAPI route stays the contract
(OpenAPI, validation errors), the lean one only its fast path (``tests/gateway/test_lean_routes.py`` holds
the two to one answer).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from starlette.convertors import CONVERTOR_TYPES
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.guard import SafeRedirects
from gateway.api.metrics import METHODS, GatewayMetrics, route_template
from gateway.errors import BodyTooDeep, NulInRequest, error_response, project_error_response
from provenance.errors import BodyTimeout, BodyTooLarge, ProvenanceError
from provenance.http_limits import read_body
from provenance.limits import json_depth_exceeds

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# The lean routes' threads (``app.state.request_pool``): as many as anyio's pool, which the database's
# connection pool is sized for.
REQUEST_THREADS = 40
_T = TypeVar("_T")

# A lean endpoint: the request (its body already read and bounded, None for a GET) and the path's
# parameters; it answers, or returns None to hand the request to FastAPI's route unchanged.
LeanHandler = Callable[[Request, bytes | None, dict[str, str]], Awaitable[Response | None]]


@dataclass(frozen=True, slots=True)
class LeanRoute:
    """A fast path for the documented route ``method`` ``template`` (``/api/v1/records/{record_id}``,
    ``/api/v1/subjects/{subject:path}/records``: Starlette's templates)."""

    method: str
    template: str
    handler: LeanHandler

    def pattern(self) -> re.Pattern[str]:
        """The template as a regular expression, each parameter as its Starlette convertor matches it."""
        parts = re.split(r"\{(\w+)(?::(\w+))?\}", self.template)  # text, (name, convertor, text)...
        rx = re.escape(parts[0])
        for name, convertor, text in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
            rx += f"(?P<{name}>{CONVERTOR_TYPES[convertor or 'str'].regex})" + re.escape(text)
        # Matched whole (``fullmatch``) where Starlette's "$" also matches before a final "\n": a path the
        # lean route takes, the FastAPI route takes with the same parameters (and answers the others).
        return re.compile(rx)

    def label(self) -> str:
        """The template without convertors: the metrics label of the FastAPI route (``route_template``)."""
        return re.sub(r"\{(\w+):\w+\}", r"{\1}", self.template)


class Front:
    """Metrics, safe redirects, the body guard and the lean routes, in one ASGI layer."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: GatewayMetrics,
        max_bytes: int,
        max_depth: int,
        timeout: float,
        public_url: str | None,
        retry_after: int,
        lean: Sequence[LeanRoute] = (),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.timeout = timeout
        self.redirects = SafeRedirects(public_url=public_url)
        self.retry_after = retry_after
        self.lean = [(r, r.pattern(), r.label()) for r in lean]
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # prometheus' children, looked up once

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception that escapes every handler
        counted = False
        lean: list[str] = []  # the template of the lean route answering, once one does

        def count() -> None:
            nonlocal counted
            counted = True
            route = lean[0] if lean else route_template(scope)
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            key = (route, method, status)
            series = self._series.get(key)
            if series is None:  # a bounded set: templates, methods and statuses the gateway answers with
                m = self.metrics
                series = self._series[key] = (
                    m.latency.labels(route, method),
                    m.requests.labels(*key[:2], str(status)),
                )
            series[0].observe(time.perf_counter() - start)
            series[1].inc()

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = self.redirects.rewrite(message)
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body") and not counted:
                # Counted once the answer is written, before this task yields: a client that reads its
                # answer and asks /metrics next finds it counted (a route's clean-up, such as closing its
                # session on a thread, still runs after).
                count()

        try:
            await self._serve(scope, receive, sent, lean)
        finally:
            if not counted:
                count()

    async def _serve(self, scope: Scope, receive: Receive, send: Send, lean: list[str]) -> None:
        """Answers the request; ``lean`` gets the template of the lean route that answers it, if one does."""
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            nul = NulInRequest("the request's path or query holds a NUL character (%00)")
            await self._reject(scope, receive, send, nul)
            return
        body: bytes | None = None
        if scope["method"] in _WITH_BODY:
            try:
                body = await read_body(scope, receive, max_bytes=self.max_bytes, timeout=self.timeout)
            except (BodyTooLarge, BodyTimeout) as exc:
                await self._reject(scope, receive, send, exc)
                return
            if body is None:
                return  # the client went away
            if json_depth_exceeds(body, self.max_depth):
                deep = BodyTooDeep(
                    f"JSON nests deeper than {self.max_depth} levels", details={"limit": self.max_depth}
                )
                await self._reject(scope, receive, send, deep)
                return
        if not scope.get("root_path"):
            for route, rx, label in self.lean:
                if route.method != scope["method"]:
                    continue
                match = rx.fullmatch(scope["path"])
                if match is None:
                    continue
                request = Request(scope, receive)
                try:
                    response = await route.handler(request, body, match.groupdict())
                except ProvenanceError as exc:
                    response = project_error_response(
                        exc, method=scope["method"], path=scope["path"], retry_after=self.retry_after
                    )
                if response is None:
                    break  # FastAPI's route answers it
                lean.append(label)
                await response(scope, receive, send)
                return
        await self.app(scope, receive if body is None else _replay(body, receive), send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, exc: Any) -> None:
        response = error_response(exc)
        # Otherwise uvicorn keeps the connection for the next request while the client goes on sending the
        # body it refused (each byte resetting the keep-alive time-out).
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


async def in_thread(request: Request, work: Callable[[], _T]) -> _T:
    """``work`` (blocking: the database, SM2) on the app's request threads. A hop through the executor costs
    a third of anyio's ``run_in_threadpool`` (no cancel scope, no capacity limiter): measured 13 against
    40 us of CPU with 8 requests in flight, on a request whose framework share is ~0.5 ms."""
    pool: ThreadPoolExecutor = request.app.state.request_pool
    return await asyncio.get_running_loop().run_in_executor(pool, work)


JSON_TYPE = "application/json"


def json_response(content: Any, status_code: int = 200) -> Response:
    """``content`` answered as the FastAPI route's ``JSONResponse`` answers it (:func:`json_bytes`)."""
    return Response(json_bytes(content), status_code=status_code, media_type=JSON_TYPE)


def route_header(request: Request, name: str, max_length: int) -> tuple[bool, str | None]:
    """(taken, value) of a header the route declares with ``max_length``: not taken when named twice or
    too long (the FastAPI route answers those)."""
    values = request.headers.getlist(name)
    if len(values) > 1 or (values and len(values[0]) > max_length):
        return False, None
    return True, values[0] if values else None


def json_bytes(content: Any) -> bytes:
    """``content`` as Starlette's ``JSONResponse`` writes it (compact, UTF-8), at orjson's speed; what
    orjson refuses (an integer beyond 64 bits) through the stdlib, as before."""
    try:
        return orjson.dumps(content)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the app below: the body already read, then the connection's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
