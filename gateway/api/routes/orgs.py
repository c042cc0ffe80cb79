"""Organisations and their keys as OrgRegistry holds them (the source of `provenance orgs export`). Public."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from adapters.registry import domains
from gateway.api.deps import GatewayDep
from gateway.services.runtime import Gateway
from provenance.crypto import SM2PublicKey
from provenance.domains import kind_roles, kinds_document
from provenance.timestamps import format_rfc3339
from provenance.verification.trust import LogKey

router = APIRouter(tags=["orgs"])


def _ts(at: datetime | None) -> str | None:
    return format_rfc3339(at) if at else None


def _log_keys(gw: Gateway) -> list[dict[str, Any]]:
    """The log's keys as the chain export lists them: every key of the log operator in OrgRegistry with its
    window (a rotated log key: the old and the new), and the gateway's own key if it is not registered."""
    operator = gw.orgs.get(gw.ledger.log_info.get("operator_org", ""))
    keys = [LogKey.of(gw.key_name, gw.origin, k) for k in (operator.keys if operator else ())]
    own = SM2PublicKey.from_pem(gw.identity.public_key_pem)
    if not any(k.public_key == own for k in keys):
        keys.append(
            LogKey(name=gw.key_name, public_key=own, pem=gw.identity.public_key_pem, origin=gw.origin)
        )
    return [k.to_dict() for k in keys]


def trust_document(gw: Gateway) -> dict[str, Any]:
    out = []
    # Through the registry cache (ids, entries, parsed keys), which registry events invalidate: read from
    # the chain on every request, this page cost ~10 ms of the gateway's CPU.
    for org_id in gw.orgs.org_ids():
        org = gw.orgs.get(org_id)
        if org is None:
            continue
        keys = []
        for k in org.keys:
            keys.append(
                {
                    "index": k.index,
                    "public_key": k.pem,
                    "valid_from": _ts(k.valid_from),
                    "valid_until": _ts(k.valid_until),
                    "revoked_at": _ts(k.revoked_at),
                }
            )
        out.append(
            {
                "id": org.org_id,
                "name": org.name,
                "role": org.role,
                "active": org.active,
                "keys": keys,
            }
        )
    return {
        "version": 1,
        "orgs": out,
        "logs": _log_keys(gw),
        # Field names of the trust file (docs/formats.md, provenance/schemas/trust.schema.json).
        "chain": {
            "chain_id": gw.ledger.chain_id,
            "org_registry": gw.ledger.registry.address,
            "provenance_log": gw.log_contract,
        },
        "kinds": kinds_document(kind_roles(domains())),  # the record kinds of this gateway's domains
    }


@router.get("/orgs")
async def list_orgs(gw: GatewayDep) -> dict[str, Any]:
    """Every organisation with role, status and SM2 keys (validity windows, revocations): a trust file."""
    return await run_in_threadpool(trust_document, gw)
