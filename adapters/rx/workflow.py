"""The prescription workflow: one state per prescription (``rx:<rx_id>``), issued -> dispensed | revoked,
kept by ``Prescriptions`` on chain. The rules refuse what the contract would refuse, with the code the chain
would give: a record accepted here must not be refused on chain. The chain's own state and clock count too
(a raw transaction may have changed the state; the chain's clock may run ahead of the gateway's)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from adapters._common import check_expiry, stricter
from adapters.abc import ChainView, ContractCall, RecordFacts, Route, State, Step
from adapters.rx.chain import readable, rx_status
from adapters.rx.domain import CONTRACT, DISPENSE, DOMAIN, ISSUE, REVOKE, state_key
from adapters.rx.errors import (
    RxAlreadyDispensed,
    RxExists,
    RxExpired,
    RxNotIssuer,
    RxNotRecorded,
    RxRevoked,
    RxUnknown,
)
from adapters.rx.payload import MAX_VALIDITY, PrescriptionAdapter
from adapters.rx.routes import ROUTES
from provenance.chain.contracts import ContractReverted, chain_key
from provenance.timestamps import chain_time, parse_rfc3339, to_unix


def from_chain(rx_id: str, entry: Mapping[str, Any]) -> State:
    """A prescription known only on chain (issued through another gateway, or by a raw transaction)."""
    expires = chain_time(entry["expires_at"])
    return State(
        entry["status"],
        {
            "issuer": entry["issuer"],
            "issue_record": None,
            "expires_at": expires,
            "closed_by": entry["dispenser"],
            "close_record": None,
            "facts": {"rx_id": rx_id, "expires_at": expires},
        },
    )


def check_open(state: State, rx_id: str, org: str) -> None:
    """RX_ALREADY_DISPENSED / RX_REVOKED for a closed prescription. Who dispensed it (and its record) is
    named to the issuer only: a pharmacy holding the code learns that it was dispensed, not by whom."""
    data = state.data
    if state.status == "dispensed":
        named = (
            {"dispensed_by": data.get("closed_by"), "record": data.get("close_record")}
            if org == data.get("issuer")
            else {}
        )
        raise RxAlreadyDispensed(
            f"prescription {rx_id!r} was already dispensed", details={"rx_id": rx_id, **named}
        )
    if state.status == "revoked":
        raise RxRevoked(
            f"prescription {rx_id!r} was revoked",
            details={"rx_id": rx_id, "record": data.get("close_record")},
        )


class RxWorkflow(PrescriptionAdapter):
    """``rx.issue`` by a hospital, ``rx.dispense`` by a pharmacy holding the slip's code, ``rx.revoke`` by
    the issuing hospital."""

    domain = DOMAIN
    watched: tuple[str, ...] = ()
    routes: Sequence[Route] = ROUTES

    def keys(self, kind: str, facts: Mapping[str, Any]) -> tuple[str, ...]:
        return (state_key(str(facts["rx_id"])),)

    def transition(
        self, record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, now: datetime
    ) -> Step:
        rx_id = str(record.facts["rx_id"])
        key = state_key(rx_id)
        if record.kind == ISSUE:
            return Step(writes={key: self._issue(record, states[key], chain)})
        state = states[key]
        if state is None:
            entry = rx_status(chain, rx_id)
            if entry is None:
                raise RxUnknown(f"no prescription {rx_id!r}", details={"rx_id": rx_id})
            state = from_chain(rx_id, entry)
        data = state.data
        if record.kind == REVOKE and data["issuer"] != record.org:
            # First: another hospital learns nothing of the prescription's state, nor who issued it.
            raise RxNotIssuer("only the issuing hospital may revoke a prescription", details={"rx_id": rx_id})
        check_open(state, rx_id, record.org)
        entry = stricter(lambda: rx_status(chain, rx_id))
        if entry is not None and entry["status"] != "issued":
            # Closed on chain (a raw transaction): the chain's order is final, and would refuse this.
            check_open(from_chain(rx_id, entry), rx_id, record.org)
        issue = data.get("issue_record")
        if issue is not None and chain.refused(issue):
            raise RxUnknown(
                f"the chain refused prescription {rx_id!r} when it was issued: it cannot be dispensed "
                "or revoked (issue it again under another id)",
                details={"rx_id": rx_id, "issue_record": issue, "chain_status": "rejected"},
            )
        closed = {**data, "closed_by": record.org, "close_record": record.record_id}
        if record.kind == REVOKE:
            return Step(writes={key: State("revoked", closed)})
        assert record.kind == DISPENSE
        if issue is None:
            raise RxNotRecorded(
                f"the chain holds prescription {rx_id!r} but this gateway holds no signed record of its "
                "issue: a dispense cannot be checked against it",
                details={"rx_id": rx_id, "on_chain": readable(entry) if entry else None},
            )
        expires = data.get("expires_at")
        if expires is not None and max(now, chain.clock()) >= parse_rfc3339(expires, lenient=True):
            raise RxExpired(
                f"prescription {rx_id!r} expired at {expires}",
                details={"rx_id": rx_id, "expires_at": expires},
            )
        return Step(prior=data.get("facts") or None, writes={key: State("dispensed", closed)})

    @staticmethod
    def _issue(record: RecordFacts, state: State | None, chain: ChainView) -> State:
        rx_id = str(record.facts["rx_id"])
        if state is not None:
            raise RxExists(f"prescription {rx_id!r} was already issued", details={"rx_id": rx_id})
        entry = rx_status(chain, rx_id)
        if entry is not None:
            raise RxExists(
                f"the chain already holds prescription {rx_id!r} (put there without a record here)",
                details={"rx_id": rx_id, "on_chain": readable(entry)},
            )
        expires = record.facts["expires_at"]
        check_expiry(chain, expires, "dispenseRequest.validityPeriod.end", MAX_VALIDITY)
        return State(
            "issued",
            {
                "issuer": record.org,
                "issue_record": record.record_id,
                "expires_at": expires,
                "closed_by": None,
                "close_record": None,
                "facts": dict(record.facts),
            },
        )

    def contract_call(self, record: RecordFacts) -> ContractCall | None:
        rx, digest = chain_key("rx", str(record.facts["rx_id"])), bytes.fromhex(record.record_id)
        if record.kind == ISSUE:
            return ContractCall(CONTRACT, "issue", (rx, digest, to_unix(record.facts["expires_at"])))
        return ContractCall(CONTRACT, "dispense" if record.kind == DISPENSE else "revoke", (rx, digest))

    def already_applied(self, record: RecordFacts, revert: ContractReverted, chain: ChainView) -> bool:
        entry = rx_status(chain, str(record.facts.get("rx_id")))
        if entry is None:
            return False
        if record.kind == ISSUE:
            return bool(entry["issue_digest"] == record.record_id)
        closed = "dispensed" if record.kind == DISPENSE else "revoked"
        return bool(entry["status"] == closed and entry["close_digest"] == record.record_id)
