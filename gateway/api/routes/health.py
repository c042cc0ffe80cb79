"""Liveness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from gateway.api.deps import GatewayDep

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
        }


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(gw: GatewayDep) -> PlainTextResponse:
    """Prometheus text exposition."""
    return PlainTextResponse(gw.metrics_text(), media_type="text/plain; version=0.0.4")
