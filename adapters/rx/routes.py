"""The prescription domain's read: the check a pharmacy makes before it dispenses (``GET
/api/v1/rx/{rx_id}/check``): valid, who issued it, dispensed or not, revoked, expired."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from adapters.abc import ReadContext, Route, State
from adapters.rx.chain import rx_status
from adapters.rx.domain import ISSUE, state_key
from adapters.rx.errors import RxUnknown
from adapters.rx.payload import READ_POLICY
from provenance.chain.contracts import Role
from provenance.errors import AccessCodeInvalid, AccessCodeRequired, RoleForbidden
from provenance.timestamps import chain_time, parse_rfc3339

CHECKERS = frozenset({"pharmacy", "hospital", "auditor", "regulator"})


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


def _may_check(ctx: ReadContext, state: State | None, chain: Mapping[str, Any] | None) -> bool:
    """The rx domain's read policy on the prescription's issue: auditors and regulators, its parties
    (issuer, dispenser), the holder of its access code. Known only on chain: the orgs the chain names."""
    data = state.data if state is not None else {}
    if data.get("issue_record") is not None:
        return ctx.visible(data["issue_record"])
    if ISSUE in READ_POLICY.role_kinds(ctx.role):
        return True
    named = {data.get("issuer"), data.get("closed_by")}
    if chain is not None:
        named |= {chain["issuer"], chain["dispenser"]}
    return ctx.org in named


def check_rx(ctx: ReadContext, rx_id: str) -> RxCheck:
    """Whether the prescription can be dispensed now, and why not.

    For auditors, regulators, the issuing hospital and the dispensing pharmacy; any other pharmacy or
    hospital presents the access code of the patient's slip (`Provenance-Access-Code`): without it
    ACCESS_CODE_REQUIRED, with another ACCESS_CODE_INVALID (403), whether the prescription exists or not.
    """
    if ctx.role not in CHECKERS:
        raise RoleForbidden("only pharmacies, hospitals, auditors and regulators check prescriptions")
    state = ctx.state(state_key(rx_id))
    chain = rx_status(ctx.chain, rx_id)
    if not _may_check(ctx, state, chain):
        if ctx.access_code is None:
            raise AccessCodeRequired(
                "present the access code printed on the prescription (Provenance-Access-Code header)",
                details={"rx_id": rx_id},
            )
        raise AccessCodeInvalid(
            f"no prescription {rx_id!r} opens with this access code", details={"rx_id": rx_id}
        )
    if state is None and chain is None:
        raise RxUnknown(f"no prescription {rx_id!r}", details={"rx_id": rx_id})
    data: Mapping[str, Any] = state.data if state is not None else {}
    if state is not None:
        status, issuer, expires = state.status, str(data["issuer"]), data.get("expires_at")
        dispensed_by = data.get("closed_by") if state.status == "dispensed" else None
    else:
        assert chain is not None
        status, issuer = chain["status"], chain["issuer"]
        expires = chain_time(chain["expires_at"])
        dispensed_by = chain["dispenser"]
    if chain is not None and chain["status"] != "issued":
        status = chain["status"]  # the chain's order is final
        dispensed_by = chain["dispenser"] or dispensed_by
    elif chain is None and data.get("issue_record") is not None and ctx.chain.refused(data["issue_record"]):
        status = "rejected"  # the contract never held it: no dispense can be accepted
    # The chain's clock as the write path uses it (it may run ahead): "valid" means a dispense is accepted.
    expired = expires is not None and ctx.chain.clock() >= parse_rfc3339(expires)
    issuer_org = ctx.org_entry(issuer)
    registered = issuer_org is not None and issuer_org.active and issuer_org.role == Role.HOSPITAL.label
    return RxCheck(
        rx_id=rx_id,
        valid=status == "issued" and not expired and registered,
        status=status,
        issuer=issuer,
        issuer_registered=registered,
        issue_record=data.get("issue_record"),
        expires_at=expires,
        expired=expired,
        dispensed=status == "dispensed",
        dispensed_by=dispensed_by,
        revoked=status == "revoked",
        close_record=data.get("close_record"),
        on_chain=chain,
        facts=dict(data.get("facts") or {}),
    )


ROUTES = (Route("/rx/{rx_id}/check", check_rx, RxCheck, tags=("prescriptions",)),)
