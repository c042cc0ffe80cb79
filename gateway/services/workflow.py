"""The workflow state of the write path: what each record kind's contract would refuse, checked before a
record is accepted (``precheck``, which also gives the adapter the prior record's facts) and applied in the
accepting transaction (``apply``, conditional updates that decide races).

A record accepted here must be one its contract accepts: the checks use the chain's state and clock as well as
the gateway's (a raw transaction may have changed the state; the chain's clock may run ahead of ours), and
refuse with the code the chain would give. Reached only through ``Intake``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import update
from sqlmodel import Session, col, select

from adapters.errors import ExpiryNotInFuture, ExpiryTooFar
from adapters.party import MEMBER_TYPES, member_step
from adapters.prescription import MAX_VALIDITY
from adapters.sharing import MAX_CONSENT
from gateway.errors import (
    AccessorMismatch,
    ConsentExpired,
    ConsentMissing,
    ConsentRevoked,
    DatasetUnknown,
    NotDatasetOwner,
    OrgMismatch,
    RxAlreadyDispensed,
    RxExists,
    RxExpired,
    RxNotIssuer,
    RxNotRecorded,
    RxRevoked,
    RxUnknown,
    ShareNotPending,
    ShareRequestExists,
    ShareRequestUnknown,
    StationInactive,
    StationNotOperator,
    StationUnknown,
)
from gateway.models import PartyMember, Record, RxState, ShareState
from gateway.services.keys import OrgDirectory
from gateway.services.ledger import Ledger
from provenance.chain.contracts import ContractReverted
from provenance.errors import LedgerError
from provenance.records import Envelope
from provenance.timestamps import chain_time, parse_rfc3339, to_unix

_T = TypeVar("_T")


def is_member_record(kind: str, facts: Mapping[str, Any]) -> bool:
    """A party record that moves a member's place (a stage step or a transfer)."""
    return kind == "party.record" and facts.get("type") in MEMBER_TYPES


def now() -> datetime:
    """The gateway's clock."""
    return datetime.now(UTC)


class WorkflowState:
    """The state checks and changes of the workflow kinds, against the database and the chain."""

    def __init__(self, *, ledger: Ledger, orgs: OrgDirectory) -> None:
        self._ledger = ledger
        self._orgs = orgs

    def precheck(
        self, s: Session, env: Envelope, facts: Mapping[str, Any], now: datetime
    ) -> Mapping[str, Any] | None:
        """Workflow state checks before the transaction; returns the prior facts the adapter needs.

        Each refuses what the domain contract would refuse, with the code the chain would give: a record
        accepted here must not be refused on chain. The chain's own state and clock count too (a raw
        transaction may have changed the state; the chain's clock may run ahead of ours)."""
        kind, org = env.kind, env.org
        if kind == "rx.issue":
            rx_id = facts["rx_id"]
            if s.get(RxState, rx_id) is not None:
                raise RxExists(f"prescription {rx_id!r} was already issued", details={"rx_id": rx_id})
            chain = self._ledger.rx_status(rx_id)
            # The chain's issue by this very record: re-submitted after a restore lost it here (the chain
            # caller then finds its call already applied).
            if chain is not None and chain["issue_digest"] != env.digest:
                raise RxExists(
                    f"the chain already holds prescription {rx_id!r} (put there without a record here)",
                    details={"rx_id": rx_id, "on_chain": _chain_rx(chain)},
                )
            self._check_expiry(facts["expires_at"], "dispenseRequest.validityPeriod.end", MAX_VALIDITY)
            return None
        if kind in ("rx.dispense", "rx.revoke"):
            # A dispense reaches here only with the prescription's access code (Intake._check_code).
            state = self.rx_state(s, facts["rx_id"])
            if kind == "rx.revoke" and state.issuer != org:
                # First: another hospital learns nothing of the prescription's state, nor who issued it.
                raise RxNotIssuer(
                    "only the issuing hospital may revoke a prescription", details={"rx_id": state.rx_id}
                )
            _check_rx_open(state, facts["rx_id"], org)
            chain = self._chain_or_none(lambda: self._ledger.rx_status(state.rx_id))
            if chain is not None and chain["status"] != "issued":
                # Closed on chain (a raw transaction): the chain's order is final, and would refuse this.
                closed = RxState(
                    rx_id=state.rx_id,
                    status=chain["status"],
                    issuer=chain["issuer"],
                    closed_by=chain["dispenser"],
                )
                _check_rx_open(closed, state.rx_id, org)
            self._check_issue_not_refused(s, state)
            if kind == "rx.revoke":
                return None
            if state.issue_record is None:
                raise RxNotRecorded(
                    f"the chain holds prescription {state.rx_id!r} but this gateway holds no signed record "
                    "of its issue: a dispense cannot be checked against it",
                    details={"rx_id": state.rx_id, "on_chain": _chain_rx(chain) if chain else None},
                )
            contract_now = max(now, self._ledger.contract_clock())
            if state.expires_at is not None and contract_now >= parse_rfc3339(state.expires_at, lenient=True):
                raise RxExpired(
                    f"prescription {state.rx_id!r} expired at {state.expires_at}",
                    details={"rx_id": state.rx_id, "expires_at": state.expires_at},
                )
            return state.facts or None
        if kind == "share.request":
            dataset = facts["dataset"]
            if facts.get("requester") != org:
                raise OrgMismatch(
                    "a request's requester must be the submitting organisation",
                    details={"requester": facts.get("requester"), "org": org},
                )
            if self._ledger.dataset_owner(dataset) is None:
                raise DatasetUnknown(f"dataset {dataset!r} is not registered", details={"dataset": dataset})
            request_id = facts["request_id"]
            if s.get(ShareState, request_id) is not None:
                raise ShareRequestExists(f"request {request_id!r} exists", details={"request_id": request_id})
            if (on_chain := self._ledger.share_request_status(request_id)) is not None:
                raise ShareRequestExists(
                    f"the chain already holds request {request_id!r} (put there without a record here)",
                    details={"request_id": request_id, "on_chain": on_chain},
                )
            return None
        if kind in ("share.consent", "share.revoke_consent"):
            share = s.get(ShareState, facts["request_id"])
            if share is None:
                raise ShareRequestUnknown(
                    f"no data-sharing request {facts['request_id']!r}",
                    details={"request_id": facts["request_id"]},
                )
            owner = self._ledger.dataset_owner(share.dataset)
            if owner != org:
                raise NotDatasetOwner(
                    f"{org!r} does not own dataset {share.dataset!r}", details={"dataset": share.dataset}
                )
            request_id = share.request_id
            on_chain = self._chain_or_none(lambda: self._ledger.share_request_status(request_id))
            if kind == "share.consent":
                if share.status != "pending" or on_chain not in (None, "pending"):
                    status = share.status if share.status != "pending" else on_chain
                    raise ShareNotPending(
                        f"request {share.request_id!r} is {status}",
                        details={"status": share.status, "on_chain": on_chain},
                    )
                self._check_expiry(facts["expires_at"], "expires_at", MAX_CONSENT)
                return share.request_facts
            # The chain may lag (the consent's call not sent yet); withdrawn there, a raw transaction did it.
            if share.status != "consented" or on_chain == "revoked":
                raise ConsentMissing(
                    f"request {share.request_id!r} has no live consent to revoke",
                    details={"status": share.status, "on_chain": on_chain},
                )
            return None
        if kind == "party.record" and facts.get("type") in MEMBER_TYPES:
            # Raises the specific error now, with the place recorded before the transaction; the write
            # checks again (concurrent records of the same member).
            member_step(facts, _member_place(s, env.subject, str(facts["member_id"])))
            return None
        if kind == "share.access":
            accessor = str(facts["accessor"])
            if accessor != org and not accessor.startswith(f"{org}:"):
                raise AccessorMismatch(
                    "an access's accessor must be the submitting organisation (or '<org>:<account>')",
                    details={"accessor": accessor, "org": org},
                )
            share = s.get(ShareState, facts["request_id"])
            _check_consent(share, facts["request_id"], org, max(now, self._ledger.contract_clock()))
            assert share is not None and share.consent_facts is not None
            request_id = share.request_id
            if self._chain_or_none(lambda: self._ledger.share_request_status(request_id)) == "revoked":
                # Withdrawn on chain by a raw transaction: DataSharing refuses the access (ConsentNotLive).
                raise ConsentRevoked(
                    f"the consent for request {request_id!r} was withdrawn on chain",
                    details={"request_id": request_id, "on_chain": "revoked"},
                )
            return share.consent_facts
        if kind == "env.reading":
            self._check_station(str(facts["mn"]), org)
        return None

    def _check_station(self, mn: str, org: str) -> None:
        """A reading's monitoring point must be registered in EnvMonitoring, active, operated by ``org``."""
        station = self._orgs.station(mn)
        if station is None:
            raise StationUnknown(
                f"monitoring point {mn!r} is not registered in EnvMonitoring", details={"mn": mn}
            )
        if station.operator != org:
            raise StationNotOperator(
                f"monitoring point {mn!r} is operated by {station.operator!r}, not {org!r}",
                details={"mn": mn, "operator": station.operator, "org": org},
            )
        if not station.active:
            raise StationInactive(f"monitoring point {mn!r} is suspended", details={"mn": mn})

    def _check_expiry(self, instant: str, field: str, max_ahead: timedelta) -> None:
        """An expiry the contract requires after ``block.timestamp`` (whole seconds, EXPIRY_NOT_IN_FUTURE) and
        at most ``max_ahead`` after it (EXPIRY_TOO_FAR). The clock is the earliest ``block.timestamp`` the
        call can meet: the later block that mines it only moves the first bound closer and the second away.
        While the chain is unreachable the gateway's clock decides: such a record may still be refused on
        chain (then it is marked rejected)."""
        clock = int(self._ledger.contract_clock().timestamp())
        details = {"field": field, "expires_at": instant, "chain_time": chain_time(clock)}
        if to_unix(instant) <= clock:
            raise ExpiryNotInFuture(
                f"{field} ({instant}) is not after the chain's clock ({chain_time(clock)})", details=details
            )
        latest = clock + int(max_ahead.total_seconds())
        if to_unix(instant) > latest:
            raise ExpiryTooFar(
                f"{field} ({instant}) is more than {max_ahead.days} days after the chain's clock "
                f"({chain_time(clock)}): the contract refuses it (ExpiryTooFar)",
                details={**details, "latest_allowed": chain_time(latest)},
            )

    @staticmethod
    def _check_issue_not_refused(s: Session, state: RxState) -> None:
        """RX_UNKNOWN for a prescription whose issue the chain refused: the contract never held it, so it
        would refuse its dispense or revocation too (RxNotFound)."""
        if state.issue_record is None:
            return
        issue = s.exec(select(Record.chain_status).where(Record.id == state.issue_record)).first()
        if issue == "rejected":
            raise RxUnknown(
                f"the chain refused prescription {state.rx_id!r} when it was issued: it cannot be dispensed "
                "or revoked (issue it again under another id)",
                details={"rx_id": state.rx_id, "issue_record": state.issue_record, "chain_status": issue},
            )

    @staticmethod
    def _chain_or_none(read: Callable[[], _T]) -> _T | None:
        """A chain read that only makes a check stricter: None while the chain is unreachable."""
        try:
            return read()
        except ContractReverted:
            raise
        except LedgerError:
            return None

    def rx_state(self, s: Session, rx_id: str) -> RxState:
        state = s.get(RxState, rx_id)
        if state is not None:
            return state
        # Issued through another gateway of the same network, or by a raw transaction: the chain knows it.
        chain = self._ledger.rx_status(rx_id)
        if chain is None:
            raise RxUnknown(f"no prescription {rx_id!r}", details={"rx_id": rx_id})
        expires = chain_time(chain["expires_at"])
        return RxState(
            rx_id=rx_id,
            status=chain["status"],
            issuer=chain["issuer"],
            expires_at=expires,
            closed_by=chain["dispenser"],
            facts={"rx_id": rx_id, "expires_at": expires},
        )

    def apply(
        self, s: Session, env: Envelope, facts: dict[str, Any], record_id: str, seen: dict[str, Any]
    ) -> None:
        """The state change of an accepted record, inside the write transaction (conditional updates decide
        races), after the checks of ``precheck`` that a concurrent record may have changed."""
        kind, org, rid = env.kind, env.org, record_id
        if kind == "rx.issue":
            rx_id = facts["rx_id"]
            if f"rx\0{rx_id}" in seen or s.get(RxState, rx_id) is not None:
                raise RxExists(f"prescription {rx_id!r} was already issued", details={"rx_id": rx_id})
            s.add(
                RxState(
                    rx_id=rx_id,
                    status="issued",
                    issuer=org,
                    issue_record=rid,
                    expires_at=facts.get("expires_at"),
                    facts=facts,
                )
            )
            seen[f"rx\0{rx_id}"] = True
            s.flush()
        elif kind in ("rx.dispense", "rx.revoke"):
            rx_id = facts["rx_id"]
            if s.get(RxState, rx_id) is None:
                s.add(self.rx_state(s, rx_id))  # known on chain only: adopt it locally
                s.flush()
            target = "dispensed" if kind == "rx.dispense" else "revoked"
            stmt = (
                update(RxState)
                .where(col(RxState.rx_id) == rx_id, col(RxState.status) == "issued")
                .values(status=target, closed_by=org, close_record=rid)
            )
            if s.exec(stmt).rowcount != 1:
                state = s.get(RxState, rx_id, populate_existing=True)
                assert state is not None
                _check_rx_open(state, rx_id, org)
                raise RxAlreadyDispensed(f"prescription {rx_id!r} is closed", details={"rx_id": rx_id})
        elif kind == "share.request":
            request_id = facts["request_id"]
            if f"share\0{request_id}" in seen or s.get(ShareState, request_id) is not None:
                raise ShareRequestExists(f"request {request_id!r} exists", details={"request_id": request_id})
            s.add(
                ShareState(
                    request_id=request_id,
                    dataset=facts["dataset"],
                    requester=org,
                    status="pending",
                    request_record=rid,
                    request_facts=facts,
                )
            )
            seen[f"share\0{request_id}"] = True
            s.flush()
        elif kind == "share.consent":
            consent = {**facts, "digest": env.payload_digest}
            stmt = (
                update(ShareState)
                .where(col(ShareState.request_id) == facts["request_id"], col(ShareState.status) == "pending")
                .values(status="consented", consent_record=rid, consent_facts=consent)
            )
            if s.exec(stmt).rowcount != 1:
                raise ShareNotPending(f"request {facts['request_id']!r} is no longer pending")
        elif kind == "share.revoke_consent":
            stmt = (
                update(ShareState)
                .where(
                    col(ShareState.request_id) == facts["request_id"], col(ShareState.status) == "consented"
                )
                .values(status="revoked")
            )
            if s.exec(stmt).rowcount != 1:
                raise ConsentMissing(f"request {facts['request_id']!r} has no live consent")
        elif kind == "share.access":
            share = s.get(ShareState, facts["request_id"], populate_existing=True)
            _check_consent(share, facts["request_id"], org, now())
        elif is_member_record(kind, facts):
            # Checked before the transaction against the place recorded then; concurrent submissions for
            # the same member (one group commit) may have recorded another since: the place as it stands
            # here, with this transaction's earlier records, decides.
            member, key = str(facts["member_id"]), member_key(facts)
            place = seen[key] if key in seen else _member_place(s, env.subject, member)
            after = member_step(facts, place)
            row = s.get(PartyMember, member)
            if row is None:
                s.add(PartyMember(member_id=member, record=rid, **after))
            else:
                row.branch_id, row.stage, row.record = after["branch_id"], after["stage"], rid
                s.add(row)
            s.flush()  # so the next record of the member in this transaction finds the row
            seen[key] = after


def member_key(facts: Mapping[str, Any]) -> str:
    return f"member\0{facts.get('member_id')}"  # network-wide: a member is at one branch at a time


def _member_place(s: Session, subject: str, member_id: str) -> dict[str, Any] | None:
    """The member's recorded place (``branch_id``, ``stage``) in the network, None if they have none."""
    row = s.get(PartyMember, member_id)
    if row is not None:
        return {"branch_id": row.branch_id, "stage": row.stage}
    # A database from before the party_member table: the member's last stage on this branch, if any.
    last = _last_membership(s, subject, member_id)
    return None if last is None else {"branch_id": subject.removeprefix("branch:"), "stage": last["stage"]}


def _last_membership(s: Session, subject: str, member_id: str) -> Mapping[str, Any] | None:
    """Facts of the member's last membership record on this branch (None for a first record)."""
    rows = s.exec(
        select(Record.facts)
        .where(Record.subject == subject, Record.kind == "party.record")
        .order_by(col(Record.seq).desc())
        .limit(5000)
    )
    for facts in rows:
        if facts.get("type") == "membership" and facts.get("member_id") == member_id:
            return facts
    return None


def _chain_rx(chain: Mapping[str, Any]) -> dict[str, Any]:
    """A prescription's chain entry for error details: its time as RFC 3339 (any uint64 the chain holds)."""
    return {**chain, "expires_at": chain_time(chain["expires_at"])}


def _check_rx_open(state: RxState, rx_id: str, org: str) -> None:
    """RX_ALREADY_DISPENSED / RX_REVOKED for a closed prescription. Who dispensed it (and its record) is
    named to the issuer only: a pharmacy holding the code learns that it was dispensed, not by whom."""
    if state.status == "dispensed":
        issuer = org == state.issuer
        named = {"dispensed_by": state.closed_by, "record": state.close_record} if issuer else {}
        raise RxAlreadyDispensed(
            f"prescription {rx_id!r} was already dispensed", details={"rx_id": rx_id, **named}
        )
    if state.status == "revoked":
        raise RxRevoked(
            f"prescription {rx_id!r} was revoked", details={"rx_id": rx_id, "record": state.close_record}
        )


def _check_consent(share: ShareState | None, request_id: str, org: str, now: datetime) -> None:
    if share is None or share.status == "pending" or share.consent_facts is None:
        raise ConsentMissing(
            f"no consent for request {request_id!r}",
            details={"request_id": request_id, "status": share.status if share else None},
        )
    if share.status == "revoked":
        raise ConsentRevoked(
            f"the consent for request {request_id!r} was revoked", details={"request_id": request_id}
        )
    if share.requester != org:
        raise ConsentMissing(
            f"the consent for request {request_id!r} is not for {org!r}", details={"request_id": request_id}
        )
    expires = share.consent_facts.get("expires_at")
    if isinstance(expires, str) and now >= parse_rfc3339(expires, lenient=True):
        raise ConsentExpired(
            f"the consent for request {request_id!r} expired at {expires}",
            details={"request_id": request_id, "expires_at": expires},
        )
