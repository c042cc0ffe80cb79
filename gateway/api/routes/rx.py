"""Prescription check for pharmacies: valid, who issued it, dispensed or not, revoked, expired."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlmodel import Session

from adapters import Access, read_policy
from gateway.api.deps import CurrentReader, GatewayDep, SessionDep
from gateway.errors import AccessCodeInvalid, AccessCodeRequired, RoleForbidden, RxUnknown
from gateway.models import RxState
from gateway.services.reads import find_record
from gateway.services.visibility import Reader
from provenance.chain.contracts import Role
from provenance.timestamps import chain_time, parse_rfc3339

router = APIRouter(tags=["prescriptions"])

CHECKERS = frozenset({"pharmacy", "hospital", "auditor", "regulator"})
ISSUE = "rx.issue"


class RxCheck(BaseModel):
    rx_id: str
    valid: bool  # a pharmacy may dispense it now
    status: str  # issued | dispensed | revoked | rejected (the chain refused its issue)
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


def _may_check(reader: Reader, s: Session, state: RxState | None, chain: dict[str, Any] | None) -> bool:
    """The rx domain's read policy on the prescription's issue: auditors and regulators, its parties
    (issuer, dispenser), the holder of its access code. Known only on chain: the orgs the chain names."""
    if state is not None and state.issue_record is not None:
        row = find_record(s, state.issue_record)
        return row is not None and reader.access(s, row) is not Access.NONE
    if ISSUE in read_policy(ISSUE).role_kinds(reader.role):
        return True
    named = {state.issuer, state.closed_by} if state is not None else set()
    if chain is not None:
        named |= {chain["issuer"], chain["dispenser"]}
    return reader.org in named


@router.get("/rx/{rx_id}/check", response_model=RxCheck)
async def check_rx(rx_id: str, reader: CurrentReader, gw: GatewayDep, session: SessionDep) -> RxCheck:
    """Whether the prescription can be dispensed now, and why not.

    For auditors, regulators, the issuing hospital and the dispensing pharmacy; any other pharmacy or
    hospital presents the access code of the patient's slip (`Provenance-Access-Code`): without it
    ACCESS_CODE_REQUIRED, with another ACCESS_CODE_INVALID (403), whether the prescription exists or not.
    """
    if reader.role not in CHECKERS:
        raise RoleForbidden("only pharmacies, hospitals, auditors and regulators check prescriptions")
    state = session.get(RxState, rx_id)
    chain = await run_in_threadpool(gw.ledger.rx_status, rx_id)
    if not await run_in_threadpool(_may_check, reader, session, state, chain):
        if reader.access_code is None:
            raise AccessCodeRequired(
                "present the access code printed on the prescription (Provenance-Access-Code header)",
                details={"rx_id": rx_id},
            )
        raise AccessCodeInvalid(
            f"no prescription {rx_id!r} opens with this access code", details={"rx_id": rx_id}
        )
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
    elif chain is None and state is not None and state.issue_record is not None:
        issue = find_record(session, state.issue_record)
        if issue is not None and issue.chain_status == "rejected":
            status = "rejected"  # the contract never held it: no dispense can be accepted
    # The chain's clock as the write path uses it (it may run ahead): "valid" means a dispense is accepted.
    clock = await run_in_threadpool(gw.ledger.contract_clock)
    expired = expires is not None and clock >= parse_rfc3339(expires)
    issuer_org = await run_in_threadpool(gw.orgs.get, issuer)
    registered = issuer_org is not None and issuer_org.active and issuer_org.role == Role.HOSPITAL.label
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
