"""The prescription domain's reads: the check a pharmacy makes before it dispenses (``GET
/api/v1/rx/{rx_id}/check``): valid, who issued it, dispensed or not, revoked, expired; and the look-up of a
box by its traceability code (``GET /api/v1/rx/codes?code=…``): where and when it was dispensed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from adapters._common import OVERSIGHT_ROLES
from adapters.abc import ReadContext, Route, State
from adapters.rx.chain import code_use, rx_status
from adapters.rx.domain import DISPENSE, DOMAIN, ISSUE, code_key, state_key
from adapters.rx.errors import RxUnknown, TraceCodeReused
from adapters.rx.payload import READ_POLICY
from provenance.access_code import AccessCode
from provenance.chain.contracts import Role
from provenance.errors import AccessCodeInvalid, AccessCodeRequired, RoleForbidden, TraceCodeInvalid
from provenance.timestamps import chain_time, parse_rfc3339
from provenance.trace_code import chain_digest, digest, identity, normalise

CHECKERS = frozenset({"pharmacy", "hospital", "auditor", "regulator"})
_ABSENT = "0" * 64  # no record's id (an SM3 digest), no code's digest


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


def _may_check(ctx: ReadContext, rx_id: str, state: State | None, chain: Mapping[str, Any] | None) -> bool:
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
    if ctx.org in named:
        return True
    # The work of an issue's check above, for none: the record look-ups (none found) and the code's keyed
    # digest, so that the 403 takes as long for an unknown id as for another's prescription (the twelfth
    # attack, C: a wrong code's came ~0.6 ms sooner).
    ctx.visible(_ABSENT)
    if ctx.access_code is not None:
        AccessCode.parse(ctx.access_code).matches(rx_id, _ABSENT)
    return False


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
    if not _may_check(ctx, rx_id, state, chain):
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


# Who may ask whether a box was dispensed: the domain's own roles (a pharmacy scans a box before it hands it
# over) and the read policy's roles. Where and when: only a reader of that dispense record.
TRACERS = frozenset().union(*DOMAIN.roles.values(), READ_POLICY.roles)


class CodeUse(BaseModel):
    """The dispense that handed the box over, as far as the reader may read it."""

    # None but ``record``: the chain holds the box under a dispense recorded through another gateway.
    record: str  # the rx.dispense record's id: its bundle verifies the rest
    rx_id: str | None = None
    pharmacy: str | None = None
    handed_over_at: str | None = (
        None  # the dispense's whenHandedOver (its payload's, where the reader reads it)
    )
    accepted_at: float | None = None  # when this gateway accepted the record (Unix seconds)
    leaf_index: int | None = None
    chain_status: str | None = None  # none | pending | confirmed | rejected


class CodeTrace(BaseModel):
    code: str  # the normal form of the code asked about
    form: str  # nmpa20 | gs1 | numeric
    identity: str  # the box it names: (01)<gtin>(21)<serial>, or the digits without leading zeros
    digest: str  # SM3 of the identity: the gateway's key of the box (and the chain's, before keyed digests)
    dispensed: bool
    dispense: CodeUse | None
    # What Prescriptions.codeUse holds the box under (HMAC-SM3 under the network key): given to the readers
    # of its dispense only, with it, so that they check the chain's word; to anyone else it would be the
    # means to find the box's dispense on the public chain (docs/design/rx-chain.md, "Boxes on chain").
    chain_key: str | None = None


def _use(ctx: ReadContext, rx_id: str, record: str) -> CodeUse | None:
    """The dispense ``record`` of ``rx_id`` as the reader sees it (None: the read policy hides it)."""
    for listed in ctx.records(f"rx:{rx_id}", limit=500):
        rec = listed.record
        if rec.record_id == record and rec.kind == DISPENSE:
            return CodeUse(
                record=record,
                rx_id=rx_id,
                pharmacy=rec.org,
                handed_over_at=rec.facts.get("handed_over_at"),
                accepted_at=listed.accepted_at,
                leaf_index=listed.leaf_index,
                chain_status=listed.chain_status,
            )
    return None


def trace_code(ctx: ReadContext, code: str | None) -> CodeTrace:
    """Where and when the box with traceability code ``code`` (any accepted form) was dispensed.

    Any pharmacy, hospital, pharmacist, insurer, auditor or regulator may ask whether a box was dispensed;
    where and when only a reader of that dispense under the domain's read policy: auditors, regulators and
    医保 by role, the pharmacy that dispensed it, the prescription's hospital and pharmacist. Any other
    reader of a dispensed box gets what a dispense of it would: TRACE_CODE_REUSED (409) naming the code only.
    """
    if ctx.role not in TRACERS:
        raise RoleForbidden(
            "only the prescription domain's organisations, auditors and regulators look boxes up",
            details={"role": ctx.role},
        )
    if code is None:
        raise TraceCodeInvalid("name the box's traceability code (?code=…)", details={"field": "code"})
    form, normal = normalise(code)
    box, key = digest(normal), chain_digest(ctx.network_key, normal)
    held = ctx.state(code_key(box))
    found: tuple[str | None, str] | None = None
    if held is not None:
        found = (str(held.data["rx_id"]), str(held.data["record"]))
        key = str(held.data.get("chain_key") or box)  # a box dispensed before keyed digests: its SM3
    else:
        on_chain = code_use(ctx.chain, key, box)
        if on_chain is not None:
            found, key = (None, on_chain["record"]), on_chain["key"]
    answer = CodeTrace(
        code=normal,
        form=form,
        identity=identity(normal),
        digest=box,
        dispensed=found is not None,
        dispense=None,
    )
    if found is None:
        return answer
    rx_id, record = found
    use = _use(ctx, rx_id, record) if rx_id is not None else None
    if use is None and rx_id is None and ctx.role in OVERSIGHT_ROLES:
        # Dispensed through another gateway: the chain's word is all there is (its record is not here).
        use = CodeUse(record=record)
    if use is None:
        raise TraceCodeReused.of(normal)
    return answer.model_copy(update={"dispense": use, "chain_key": key})


ROUTES = (
    Route("/rx/{rx_id}/check", check_rx, RxCheck, tags=("prescriptions",)),
    Route("/rx/codes", trace_code, CodeTrace, tags=("prescriptions",), query=("code",)),
)
