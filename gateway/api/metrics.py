"""The gateway's Prometheus metrics through ``prometheus_client``: request latency per route, records
accepted and refused by kind and code, and the log's and the chain's progress read from ``Stats`` at
scrape time (docs/ops/grafana-dashboard.json reads them; `/metrics` serves them to oversight only).

One registry per app (not the library's global one), so that two gateways in one process (the tests)
never share counters.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import Scope

from adapters.abc import Refusal
from adapters.registry import roles as roles_of
from provenance.errors import ProvenanceError
from provenance.timestamps import format_rfc3339, from_unix

if TYPE_CHECKING:
    from gateway.services.intake import Accepted
    from gateway.services.runtime import Gateway

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Label values a client chooses are bounded to what the gateway knows, so that no request can add series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
OTHER_KIND = "other"
# Refusals are not logged: the latest ones are kept in memory for the dashboard's drill-down and panels.
KEPT_REFUSALS = 2000
# Seconds: the write path answers in milliseconds, a certificate renders in about a second.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def record_kind(kind: object) -> str:
    """A submitted kind as a label: one of the table's kinds, else ``other``."""
    return kind if isinstance(kind, str) and roles_of(kind) is not None else OTHER_KIND


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
        self.started = time.time()
        self.recent: deque[Refusal] = deque(maxlen=KEPT_REFUSALS)
        self._seq = itertools.count(1)

    def watch(self, gw: Gateway) -> None:
        """Read the gauges of ``gw`` at every scrape (once the lifespan has built it)."""
        if self._state is not None:
            self.registry.unregister(self._state)
        self._state = _GatewayCollector(gw, started=self.started)
        self.registry.register(self._state)

    def count(self, record: Mapping[str, Any], result: Accepted | ProvenanceError, *, org: str) -> None:
        """One submission's outcome (a repeat of an accepted record counts as neither); a refusal is also
        kept, with who sent it (``org``, the token's) and the subject its envelope declared."""
        kind = record_kind(record.get("kind"))
        if isinstance(result, ProvenanceError):
            self.refused.labels(kind, result.code).inc()
            subject = record.get("subject")
            self.recent.append(
                Refusal(
                    seq=next(self._seq),
                    at=format_rfc3339(from_unix(int(time.time()))),
                    kind=kind,
                    code=result.code,
                    org=org,
                    subject=subject[:200] if isinstance(subject, str) else "",
                    details=dict(result.details or {}),
                )
            )
        elif result.created:
            self.accepted.labels(kind).inc()

    def refused_since(self, *, after: int = 0, code: str | None = None) -> list[Refusal]:
        """The refusals kept, oldest first: those after the cursor ``after`` (a :attr:`Refusal.seq`), with
        ``code`` if given."""
        return [r for r in list(self.recent) if r.seq > after and code in (None, r.code)]

    def refusals(self) -> list[dict[str, Any]]:
        """Records refused since start, by kind and code (the dashboard's refusals panel)."""
        out = []
        for family in self.refused.collect():
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.value:
                    out.append({**sample.labels, "count": int(sample.value)})
        return sorted(out, key=lambda r: (-r["count"], r["code"], r["kind"]))

    def render(self) -> bytes:
        return generate_latest(self.registry)


_GAUGES = {
    "records_total": "Records accepted in all (the database's count at start, then live).",
    "tree_size": "Leaves in the log (its size).",
    "checkpoint_size": "Size of the newest signed checkpoint.",
    "anchored_size": "Size of the newest checkpoint anchored on chain.",
    "backlog": "Records accepted but not yet anchored.",
    "anchor_lag_records": "Leaves logged but not yet under an anchor.",
    "anchor_lag_seconds": "Seconds since the last anchor while leaves wait for one (0: all anchored).",
    "chain_up": "1 while the chain answers.",
    "chain_pending": "Workflow contract calls not made yet.",
    "anchor_stuck": "1 while anchoring waits for the committee (ANCHOR_STUCK).",
    "worker_owner": "1 while this instance runs the log's workers (the lease owner; always on SQLite).",
}


def progress(gw: Gateway, *, started: float) -> dict[str, Any]:
    """The log's, the anchorer's and the witnesses' progress now (the gauges of `/metrics` and the
    dashboard's lag panel: one reading for both). ``started``: since when a gateway that has not anchored
    yet has been waiting."""
    st = gw.stats
    with st.lock:
        waiting = st.tree_size > st.anchored_size
        since = st.last_anchor_at if st.last_anchor_at is not None else started
        now: dict[str, Any] = {
            "records_total": st.accepted_total,
            "tree_size": st.tree_size,
            "checkpoint_size": st.checkpoint_size,
            "anchored_size": st.anchored_size,
            "backlog": st.backlog(),
            "anchor_lag_records": max(0, st.tree_size - st.anchored_size),
            "anchor_lag_seconds": max(0.0, time.time() - since) if waiting else 0.0,
            "chain_up": int(st.chain_up),
            "chain_pending": st.chain_pending,
            "anchor_stuck": int(st.anchor_stuck is not None),
            "worker_owner": int(gw.owner),
            "chain_calls": dict(st.chain_calls),
        }
    now["witnesses"] = [
        {
            "name": w.key.name,
            "cosigned": w.cosigned,
            "lag": max(0, now["checkpoint_size"] - w.cosigned),
            "up": bool(w.up),
        }
        for w in gw.witnessing.status
    ]
    return now


class _GatewayCollector(Collector):
    """The log's, the anchorer's and the witnesses' progress, as ``Stats`` holds it at scrape time."""

    def __init__(self, gw: Gateway, *, started: float) -> None:
        self.gw = gw
        self.started = started

    def collect(self) -> Iterator[Metric]:
        now = progress(self.gw, started=self.started)
        for name, doc in _GAUGES.items():
            yield GaugeMetricFamily(f"prov_gw_{name}", doc, value=now[name])
        calls = now["chain_calls"]
        chain = CounterMetricFamily(
            "prov_gw_chain_calls", "Workflow contract calls, by outcome.", labels=["status"]
        )
        for status, n in sorted(calls.items()):
            chain.add_metric([status], n)
        yield chain
        witnesses = now["witnesses"]
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
                size.add_metric([w["name"]], w["cosigned"])
                lag.add_metric([w["name"]], w["lag"])
                up.add_metric([w["name"]], int(w["up"]))
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
