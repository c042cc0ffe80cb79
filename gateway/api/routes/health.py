"""Liveness (public) and metrics (auditors, regulators, log operators, or the Prometheus scrape token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from gateway.api.deps import BearerDep, GatewayDep, MetricsDep, require_oversight
from gateway.api.metrics import CONTENT_TYPE
from gateway.errors import error_responses

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz(gw: GatewayDep) -> dict[str, Any]:
    """Up, with the log's and the chain's progress."""
    st = gw.stats
    with st.lock:
        return {
            "status": "ok",
            "records": st.accepted_total,
            "tree_size": st.tree_size,
            "checkpoint_size": st.checkpoint_size,
            "anchored_size": st.anchored_size,
            "backlog": st.backlog(),
            "chain_up": st.chain_up,
            # ANCHOR_STUCK: the chain's latest anchor is not this log's; the committee must recover it
            "anchor_stuck": st.anchor_stuck.to_dict() if st.anchor_stuck else None,
            # "owner": this instance runs the log's workers; "standby": another one does (PostgreSQL HA)
            "workers": "owner" if gw.owner else "standby",
            # after a restore: how far the log is behind ProvenanceLog's latest anchor (null: it is not)
            "behind_chain": gw.chain_check.behind(st.tree_size) if gw.chain_check else None,
        }


_TEXT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}
}


# response_class=Response: with PlainTextResponse, FastAPI would document the JSON error bodies as text/plain.
@router.get("/metrics", response_class=Response, responses={**_TEXT, **error_responses(401, 403, 503)})
def metrics(gw: GatewayDep, creds: BearerDep, registry: MetricsDep) -> Response:
    """Prometheus text exposition: `Authorization: Bearer` the scrape token (`PROV_GW_METRICS_TOKEN`) or
    the API token of an auditor, a regulator or a log operator (metrics tell the load and the refusals by
    code of every organisation)."""
    require_oversight(gw, creds, what="/metrics", service_token=gw.settings.metrics_token)
    return Response(registry.render(), media_type=CONTENT_TYPE)
