"""The gateway's Prometheus metrics through ``prometheus_client``: request latency per route, records
accepted and refused by kind and code, and the log's and the chain's progress read from ``Stats`` at
scrape time (docs/ops/grafana-dashboard.json reads them; `/metrics` serves them to oversight only).

One registry per app (not the library's global one), so that two gateways in one process (the tests)
never share counters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provenance.errors import ProvenanceError
from provenance.kinds import ROLES_BY_KIND

if TYPE_CHECKING:
    from gateway.services.intake import Accepted
    from gateway.services.runtime import Gateway

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Label values a client chooses are bounded to what the gateway knows, so that no request can add series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
OTHER_KIND = "other"
# Seconds: the write path answers in milliseconds, a certificate renders in about a second.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def record_kind(kind: object) -> str:
    """A submitted kind as a label: one of the table's kinds, else ``other``."""
    return kind if isinstance(kind, str) and kind in ROLES_BY_KIND else OTHER_KIND


class GatewayMetrics:
    """The app's registry: request and record counters it updates, gauges it reads when scraped."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "prov_gw_request_duration_seconds",
            "Time to answer a request, by route template and method.",
            ["route", "method"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "prov_gw_requests",
            "Requests answered, by route template, method and HTTP status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.accepted = Counter(
            "prov_gw_records_accepted",
            "Records accepted (new, not repeats) since start, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.refused = Counter(
            "prov_gw_records_rejected",
            "Records refused since start, by kind and error code.",
            ["kind", "code"],
            registry=self.registry,
        )
        self._state: _GatewayCollector | None = None

    def watch(self, gw: Gateway) -> None:
        """Read the gauges of ``gw`` at every scrape (once the lifespan has built it)."""
        if self._state is not None:
            self.registry.unregister(self._state)
        self._state = _GatewayCollector(gw)
        self.registry.register(self._state)

    def count(self, kind: object, result: Accepted | ProvenanceError) -> None:
        """One submission's outcome (a repeat of an accepted record counts as neither)."""
        if isinstance(result, ProvenanceError):
            self.refused.labels(record_kind(kind), result.code).inc()
        elif result.created:
            self.accepted.labels(record_kind(kind)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _GatewayCollector(Collector):
    """The log's, the anchorer's and the witnesses' progress, as ``Stats`` holds it at scrape time."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.started = time.time()

    def collect(self) -> Iterator[Metric]:
        st = self.gw.stats
        now = time.time()
        with st.lock:
            values = {
                "records_total": (
                    "Records accepted in all (the database's count at start, then live).",
                    st.accepted_total,
                ),
                "tree_size": ("Leaves in the log (its size).", st.tree_size),
                "checkpoint_size": ("Size of the newest signed checkpoint.", st.checkpoint_size),
                "anchored_size": ("Size of the newest checkpoint anchored on chain.", st.anchored_size),
                "backlog": ("Records accepted but not yet anchored.", st.backlog()),
                "anchor_lag_records": (
                    "Leaves logged but not yet under an anchor.",
                    max(0, st.tree_size - st.anchored_size),
                ),
                "chain_up": ("1 while the chain answers.", int(st.chain_up)),
                "chain_pending": ("Workflow contract calls not made yet.", st.chain_pending),
                "anchor_stuck": (
                    "1 while anchoring waits for the committee (ANCHOR_STUCK).",
                    int(st.anchor_stuck is not None),
                ),
            }
            waiting = st.tree_size > st.anchored_size
            since = st.last_anchor_at if st.last_anchor_at is not None else self.started
            calls = dict(st.chain_calls)
        for name, (doc, value) in values.items():
            yield GaugeMetricFamily(f"prov_gw_{name}", doc, value=value)
        yield GaugeMetricFamily(
            "prov_gw_anchor_lag_seconds",
            "Seconds since the last anchor while leaves wait for one (0 when all are anchored).",
            value=max(0.0, now - since) if waiting else 0.0,
        )
        chain = CounterMetricFamily(
            "prov_gw_chain_calls", "Workflow contract calls, by outcome.", labels=["status"]
        )
        for status, n in sorted(calls.items()):
            chain.add_metric([status], n)
        yield chain
        witnesses = self.gw.witnessing.status
        if witnesses:
            size = GaugeMetricFamily(
                "prov_gw_witness_cosigned_size",
                "The newest checkpoint size whose cosignature is stored, by witness.",
                labels=["witness"],
            )
            lag = GaugeMetricFamily(
                "prov_gw_witness_lag",
                "Checkpoint sizes the witness has not cosigned yet (newest checkpoint minus its newest).",
                labels=["witness"],
            )
            up = GaugeMetricFamily("prov_gw_witness_up", "1 while the witness answers.", labels=["witness"])
            for w in witnesses:
                size.add_metric([w.key.name], w.cosigned)
                lag.add_metric([w.key.name], max(0, values["checkpoint_size"][1] - w.cosigned))
                up.add_metric([w.key.name], int(w.up))
            yield from (size, lag, up)


def route_template(scope: Scope) -> str:
    """The full template of the route a request matched (``/api/v1/records/{record_id}``), else ``unmatched``.

    FastAPI puts the matched route in the scope with its path relative to the router that holds it; the
    prefixes of the routers above it are what the request's path has before the route's own part.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    own = template
    for name, value in scope.get("path_params", {}).items():
        own = own.replace("{" + name + "}", str(value)).replace("{" + name + ":path}", str(value))
    path = scope.get("path", "")
    prefix = path[: len(path) - len(own)] if own and path.endswith(own) else ""
    return prefix + template


class RequestMetrics:
    """ASGI middleware: each HTTP request's duration and status, labelled by the route template it matched
    (``/api/v1/records/{record_id}``, never the path itself, which a client chooses)."""

    def __init__(self, app: ASGIApp, *, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception that escapes every handler

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = route_template(scope)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - start)
            self.metrics.requests.labels(route, method, str(status)).inc()
