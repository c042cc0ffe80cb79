"""Liveness (public) and metrics (auditors, regulators, log operators, or the Prometheus scrape token)."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from gateway.api.deps import BearerDep, GatewayDep
from gateway.errors import AuthRequired, RoleForbidden, error_responses
from gateway.services.visibility import role_name

router = APIRouter(tags=["ops"])

# Metrics tell the load and the refusals by code of every organisation: for the operator and oversight.
METRICS_ROLES = frozenset({"auditor", "regulator", "log_operator"})


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


_TEXT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}
}


# response_class=Response: with PlainTextResponse, FastAPI would document the JSON error bodies as text/plain.
@router.get("/metrics", response_class=Response, responses={**_TEXT, **error_responses(401, 403, 503)})
def metrics(gw: GatewayDep, creds: BearerDep) -> PlainTextResponse:
    """Prometheus text exposition: `Authorization: Bearer` the scrape token (`PROV_GW_METRICS_TOKEN`) or
    the API token of an auditor, a regulator or a log operator."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise AuthRequired("/metrics needs a token: Authorization: Bearer <token>")
    scrape = gw.settings.metrics_token
    given = creds.credentials.encode("utf-8")
    if scrape is None or not hmac.compare_digest(given, scrape.get_secret_value().encode("utf-8")):
        org = gw.tokens.org_of(creds.credentials)
        if role_name(gw.orgs.get(org)) not in METRICS_ROLES:
            raise RoleForbidden(
                "/metrics is for auditors, regulators, log operators and the scrape token",
                details={"org": org},
            )
    return PlainTextResponse(gw.metrics_text(), media_type="text/plain; version=0.0.4")
