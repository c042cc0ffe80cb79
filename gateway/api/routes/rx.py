"""Prescription check for pharmacies: valid, who issued it, dispensed or not, revoked, expired."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from gateway.api.deps import CurrentOrg, GatewayDep, SessionDep
from gateway.errors import RoleForbidden, RxUnknown
from gateway.models import RxState
from gateway.services.ledger import chain_time
from provenance.contracts import Role

router = APIRouter(tags=["prescriptions"])

CHECKERS = frozenset({Role.PHARMACY, Role.HOSPITAL, Role.AUDITOR, Role.REGULATOR})


class RxCheck(BaseModel):
    rx_id: str
    valid: bool  # a pharmacy may dispense it now
    status: str  # issued | dispensed | revoked
    issuer: str
    issuer_registered: bool
    issue_record: str | None
    expires_at: str | None
    expired: bool
    dispensed: bool
    dispensed_by: str | None
    revoked: bool
    close_record: str | None
    on_chain: dict[str, Any] | None
    facts: dict[str, Any]


@router.get("/rx/{rx_id}/check", response_model=RxCheck)
async def check_rx(rx_id: str, org: CurrentOrg, gw: GatewayDep, session: SessionDep) -> RxCheck:
    """Whether the prescription can be dispensed now, and why not."""
    reader = await run_in_threadpool(gw.orgs.get, org)
    if reader is None or reader.role not in CHECKERS:
        raise RoleForbidden("only pharmacies, hospitals, auditors and regulators check prescriptions")
    state = session.get(RxState, rx_id)
    chain = await run_in_threadpool(gw.ledger.rx_status, rx_id)
    if state is None and chain is None:
        raise RxUnknown(f"no prescription {rx_id!r}", details={"rx_id": rx_id})
    if state is not None:
        status, issuer, expires = state.status, state.issuer, state.expires_at
        dispensed_by = state.closed_by if state.status == "dispensed" else None
    else:
        assert chain is not None
        status, issuer = chain["status"], chain["issuer"]
        expires = chain_time(chain["expires_at"])
        dispensed_by = chain["dispenser"]
    if chain is not None and chain["status"] != "issued":
        status = chain["status"]  # the chain's order is final
        dispensed_by = chain["dispenser"] or dispensed_by
    # The chain's clock as the write path uses it (it may run ahead): "valid" means a dispense is accepted.
    clock = await run_in_threadpool(gw.ledger.contract_clock)
    expired = expires is not None and clock >= datetime.fromisoformat(expires.replace("Z", "+00:00"))
    issuer_org = await run_in_threadpool(gw.orgs.get, issuer)
    registered = issuer_org is not None and issuer_org.active and issuer_org.role == Role.HOSPITAL
    return RxCheck(
        rx_id=rx_id,
        valid=status == "issued" and not expired and registered,
        status=status,
        issuer=issuer,
        issuer_registered=registered,
        issue_record=state.issue_record if state else None,
        expires_at=expires,
        expired=expired,
        dispensed=status == "dispensed",
        dispensed_by=dispensed_by,
        revoked=status == "revoked",
        close_record=state.close_record if state else None,
        on_chain=chain,
        facts=state.facts if state else {},
    )
