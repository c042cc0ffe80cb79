"""The prescription workflow: one state per prescription (``rx:<rx_id>``), issued -> [reviewed] ->
dispensed | revoked, then settled, kept by ``Prescriptions`` on chain. The rules refuse what the contract
would refuse, with the code the chain would give: a record accepted here must not be refused on chain. The
chain's own state and clock count too (a raw transaction may have changed the state; the chain's clock may
run ahead of the gateway's)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from adapters._common import check_expiry, id_skeleton, stricter
from adapters.abc import ChainView, ContractCall, Panel, Provision, RecordFacts, Route, SetupCall, State, Step
from adapters.dated import Dated, check_order, mark_of
from adapters.errors import DateBeforeSubject
from adapters.rx.chain import (
    box_keys,
    code_use,
    organisations,
    readable,
    review_required,
    rx_review,
    rx_settlement,
    rx_status,
)
from adapters.rx.domain import (
    CONTRACT,
    DISPENSE,
    DOMAIN,
    ISSUE,
    REVIEW,
    REVOKE,
    SETTLE,
    code_key,
    settlement_key,
    state_key,
)
from adapters.rx.errors import (
    RxAlreadyDispensed,
    RxAlreadyReviewed,
    RxAlreadySettled,
    RxDispenseMismatch,
    RxExists,
    RxExpired,
    RxHandedOverBeforeIssue,
    RxNotDispensed,
    RxNotIssuer,
    RxNotRecorded,
    RxNotReviewable,
    RxNotReviewed,
    RxReviewRejected,
    RxRevoked,
    RxSettledBeforeDispense,
    RxSettlementIdReused,
    RxUnknown,
    TraceCodeReused,
)
from adapters.rx.medication import normal_text
from adapters.rx.mentions import _ids_another, _names_another, check_texts
from adapters.rx.panels import PANELS
from adapters.rx.payload import MAX_VALIDITY, PrescriptionAdapter
from adapters.rx.routes import ROUTES
from provenance.chain.contracts import ContractReverted, chain_key
from provenance.timestamps import chain_time, parse_rfc3339, to_unix

# Each later kind's date: the payload's field (named in errors) and its fact.
_DATES = {
    REVIEW: ("reviewed_at", "reviewed_at"),
    DISPENSE: ("whenHandedOver", "handed_over_at"),
    REVOKE: ("revoked_at", "revoked_at"),
    SETTLE: ("settled_at", "settled_at"),
}


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
    """``rx.issue`` by a hospital, ``rx.review`` by a licensed pharmacist and ``rx.dispense`` by a pharmacy,
    each holding the slip's code, ``rx.revoke`` by the issuing hospital, ``rx.settle`` by 医保."""

    domain = DOMAIN
    contracts: tuple[str, ...] = (CONTRACT,)
    watched: tuple[str, ...] = ()
    routes: Sequence[Route] = ROUTES
    panels: Sequence[Panel] = PANELS

    def provision(self, network: Provision) -> Sequence[SetupCall]:
        # 审方 before dispense is the contract's default; a network without it says so before its first
        # prescription (the contract locks the setting then).
        if network.options.get("review_required", True):
            return ()
        return (SetupCall(None, network.contracts[CONTRACT].functions.setReviewRequired(False)),)

    def demo(self, writer: object) -> str | None:
        return None  # its demo is `provenance demo --devnet` (run by hand, on the devnet's keys)

    def keys(self, kind: str, facts: Mapping[str, Any]) -> tuple[str, ...]:
        # A dispense also holds its boxes, by code: two pharmacies handing over one box race on its key.
        boxes = facts.get("trace_code_digests") if kind == DISPENSE else None
        # A settlement holds its id: an insurer settling two prescriptions under one id races on it.
        ids = (settlement_key(str(facts["settlement_id"])),) if kind == SETTLE else ()
        return (state_key(str(facts["rx_id"])), *(code_key(d) for d in boxes or ()), *ids)

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
        if record.kind == SETTLE:
            settled = self._settle(record, state, chain)
            return Step(writes={key: settled, **self._settlement_id(record, states)})
        if record.kind == REVIEW:
            return Step(writes={key: self._review(record, state, chain, now)})
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
            return Step(writes={key: State("revoked", {**closed, **self._in_order(record, data)})})
        assert record.kind == DISPENSE
        if any(org != record.org for org in record.facts.get("performer_orgs") or ()):
            # The look-up names the signer as the pharmacy: a performer naming another is not recorded.
            raise RxDispenseMismatch(
                "dispense names another organisation than the signing pharmacy as its performer",
                details={"field": "performer"},
            )
        self._check_displays(record, chain, data.get("issuer"))
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
        self._check_review(data, rx_id, chain)
        closed |= self._in_order(record, data)
        boxes = self._hand_over(record, states, chain)
        return Step(prior=data.get("facts") or None, writes={key: State("dispensed", closed), **boxes})

    @staticmethod
    def _check_displays(record: RecordFacts, chain: ChainView, issuer: str | None) -> None:
        """Who and where a dispense displays, held to OrgRegistry (the only names of organisations the
        gateway knows), ids compared by their letters and digits (``id_skeleton``: case and separators
        aside, ``pharmacy1`` is pharmacy-1): the pharmacy's name as displayed (an organisation performer's,
        the location's) is the signer's, in normal form
        ("观音桥药店" signing as "解放碑大药房" is not recorded); a ``Practitioner/<id>`` whose id is a
        registered organisation's is a pharmacist (执业药师) displayed by its registered name, never a
        pharmacy or anyone else named as a person, nor one registered under another organisation's name
        (the registry holds no pharmacist's employer: its name is what says it); no practitioner is
        displayed as, or with, the name or id of another organisation than the signer (:func:`_names_another`,
        :func:`_ids_another`);
        the location and the destination are not another organisation's (``Location/pharmacy-1`` signed by
        pharmacy-2); a note's organisation author is the signer; a manufacturer is no registered
        organisation, by id or by a display naming one. Then every other text of the dispense
        (``adapters.rx.mentions``): none names another organisation, save the pharmacists held above and
        the prescribing hospital within ``authorizingPrescription``."""
        orgs = organisations(chain)
        signer = next((name for org, _role, name in orgs if org == record.org), None)
        displays = record.detail.get("org_displays") or {}
        for field, display in sorted(displays.items()):
            if normal_text(display) != normal_text(signer):
                raise RxDispenseMismatch(
                    "dispense displays another name than the signing pharmacy's in OrgRegistry",
                    details={"field": field},
                )
        for field, place in sorted((record.detail.get("places") or {}).items()):
            if any(
                org != record.org and id_skeleton(org) == id_skeleton(place) for org, _role, _name in orgs
            ):
                raise RxDispenseMismatch(
                    "dispense names another registered organisation's place as its location",
                    details={"field": field},
                )
        for field, (maker, display) in sorted((record.detail.get("manufacturers") or {}).items()):
            # A manufacturer is no member of the network: one named as a registered organisation (by its
            # id, or by a display naming one) would credit the drug to a member.
            ids, names = [org for org, _r, _n in orgs], [name for _o, _r, name in orgs]
            if (maker is not None and id_skeleton(maker) in map(id_skeleton, ids)) or (
                display is not None and (_names_another(display, names, "") or _ids_another(display, ids, ""))
            ):
                raise RxDispenseMismatch(
                    "a contained Medication's manufacturer is not an organisation of the network",
                    details={"field": field},
                )
        for field, org in sorted((record.detail.get("org_authors") or {}).items()):
            if org != record.org:  # a note's author organisation, held as a performer's is
                raise RxDispenseMismatch(
                    "dispense names another organisation than the signing pharmacy as a note's author",
                    details={"field": f"{field}.reference"},
                )
        for field, (person, display) in sorted((record.detail.get("practitioners") or {}).items()):
            held = [(org, role, name) for org, role, name in orgs if id_skeleton(org) == id_skeleton(person)]
            if any(role != "pharmacist" for _org, role, _name in held):
                raise RxDispenseMismatch(
                    "dispense names a registered organisation other than a pharmacist as a practitioner",
                    details={"field": f"{field}.reference"},
                )
            if display is not None and any(normal_text(display) != normal_text(n) for _o, _r, n in held):
                raise RxDispenseMismatch(
                    "dispense displays the pharmacist otherwise than its name in OrgRegistry",
                    details={"field": f"{field}.display"},
                )
            others = [name for org, _r, name in orgs if org != record.org and org not in {h[0] for h in held}]
            others_ids = [
                org for org, _r, _n in orgs if org != record.org and org not in {h[0] for h in held}
            ]
            if any(_names_another(name, others, signer) for _org, _role, name in held):
                # Registered as another's (解放碑大药房 执业药师 王敏): not the signer's pharmacist.
                raise RxDispenseMismatch(
                    "dispense names a pharmacist registered under another organisation's name",
                    details={"field": f"{field}.reference"},
                )
            if display is None:
                continue
            if _names_another(display, others, signer) or _ids_another(display, others_ids, record.org):
                raise RxDispenseMismatch(
                    "dispense displays a practitioner as, or with, another organisation's registered name",
                    details={"field": f"{field}.display"},
                )
        # A name split across practitioners' displays (解放碑 | 大药房 王敏) reads as one, in their order.
        loose = [d for d in (record.detail.get("practitioners") or {}).values() if isinstance(d[1], str)]
        others = [name for org, _r, name in orgs if org != record.org]
        if len(loose) > 1 and _names_another("".join(d for _p, d in loose), others, signer):
            raise RxDispenseMismatch(
                "dispense displays another organisation's registered name across its practitioners",
                details={"field": "performer"},
            )
        people = [person for person, _display in (record.detail.get("practitioners") or {}).values()]
        cleared = {org for org, _r, _n in orgs if id_skeleton(org) in set(map(id_skeleton, people))}
        check_texts(record.detail.get("texts") or {}, orgs, record.org, cleared, issuer)

    @staticmethod
    def _in_order(record: RecordFacts, data: Mapping[str, Any]) -> dict[str, Any]:
        """The prescription's records in date order (``adapters.dated``): a review, dispense, revoke or
        settlement is not dated before the prescription's earlier records; the new mark."""
        field, fact = _DATES[record.kind]
        details: dict[str, Any] = {"rx_id": record.facts["rx_id"], "field": field}
        error: type[DateBeforeSubject] = DateBeforeSubject
        mark = mark_of(data)
        if record.kind == SETTLE:
            error = RxSettledBeforeDispense  # everything before a settlement came before its dispense
        elif record.kind == DISPENSE and mark is not None and mark.get("kind") == ISSUE:
            error, details = RxHandedOverBeforeIssue, {"field": field}  # F5-10's code and details
        return check_order(
            Dated.of(record.facts, fact),
            data,
            record.kind,
            error=error,
            details=details,
            name_mark=error is DateBeforeSubject,
        )

    @staticmethod
    def _hand_over(
        record: RecordFacts, states: Mapping[str, State | None], chain: ChainView
    ) -> dict[str, State]:
        """The boxes' states, or TRACE_CODE_REUSED for a box already handed over here or on chain (another
        gateway). The error names the code, never the earlier dispense: that is for its readers' look-up."""
        out: dict[str, State] = {}
        codes = record.facts.get("trace_codes") or []
        digests = record.facts.get("trace_code_digests") or []
        for code, digest, key in zip(codes, digests, box_keys(record.facts), strict=True):
            held = states.get(code_key(digest))
            on_chain = stricter(partial(code_use, chain, key, digest)) if held is None else None
            if held is not None or on_chain is not None:
                raise TraceCodeReused.of(code, field="extension")
            # With the key its call holds the box under on chain (none: a box from before keyed digests).
            out[code_key(digest)] = State(
                "dispensed", {"rx_id": record.facts["rx_id"], "record": record.record_id, "chain_key": key}
            )
        return out

    @staticmethod
    def _check_review(data: Mapping[str, Any], rx_id: str, chain: ChainView) -> None:
        """RX_REVIEW_REJECTED for a rejected prescription; RX_NOT_REVIEWED without an approval where the
        deployment requires one (a review the chain refused counts as none)."""
        review = data.get("review")
        if review is not None and chain.refused(review["record"]):
            review = None
        if review is not None and review["decision"] == "rejected":
            raise RxReviewRejected(
                f"a pharmacist's review rejected prescription {rx_id!r}: it cannot be dispensed",
                details={"rx_id": rx_id, "review_record": review["record"], "reason": review.get("reason")},
            )
        if review is None and review_required(chain):
            raise RxNotReviewed(
                f"prescription {rx_id!r} has no approved review by a licensed pharmacist (审方) yet",
                details={"rx_id": rx_id},
            )

    @staticmethod
    def _review(record: RecordFacts, state: State, chain: ChainView, now: datetime) -> State:
        rx_id, data = str(record.facts["rx_id"]), state.data
        entry = stricter(lambda: rx_status(chain, rx_id))
        status = entry["status"] if entry is not None and entry["status"] != "issued" else state.status
        expires = data.get("expires_at")
        if (
            status == "issued"
            and expires is not None
            and max(now, chain.clock()) >= parse_rfc3339(expires, lenient=True)
        ):
            status = "expired"
        if status != "issued":
            raise RxNotReviewable(
                f"prescription {rx_id!r} is {status}: only an open prescription is reviewed",
                details={"rx_id": rx_id, "status": status},
            )
        earlier = data.get("review") or stricter(lambda: rx_review(chain, rx_id))
        if earlier is not None:
            raise RxAlreadyReviewed(
                f"prescription {rx_id!r} was already reviewed ({earlier['decision']})",
                details={"rx_id": rx_id, "decision": earlier["decision"], "record": earlier["record"]},
            )
        dated = RxWorkflow._in_order(record, data)
        review = {
            "decision": record.facts["decision"],
            "reason": record.facts["reason"],
            "by": record.org,
            "record": record.record_id,
        }
        return State(state.status, {**data, "review": review, **dated})

    @staticmethod
    def _settlement_id(record: RecordFacts, states: Mapping[str, State | None]) -> dict[str, State]:
        """The settlement id's state, or RX_SETTLEMENT_ID_REUSED if this insurer already used it (another
        insurer's ids are its own: the state holds each insurer's use of the id)."""
        sid = str(record.facts["settlement_id"])
        key = settlement_key(sid)
        held = states.get(key)
        uses = dict(held.data) if held is not None else {}
        if record.org in uses:
            raise RxSettlementIdReused(
                f"settlement id {sid!r} was already used by this insurer",
                details={"field": "settlement_id", "settlement_id": sid},
            )
        uses[record.org] = {"rx_id": record.facts["rx_id"], "record": record.record_id}
        return {key: State("settled", uses)}

    @staticmethod
    def _settle(record: RecordFacts, state: State, chain: ChainView) -> State:
        rx_id, data = str(record.facts["rx_id"]), state.data
        if state.status == "revoked":
            raise RxRevoked(f"prescription {rx_id!r} was revoked", details={"rx_id": rx_id})
        dispense = data.get("close_record")
        if state.status != "dispensed" or (dispense is not None and chain.refused(dispense)):
            raise RxNotDispensed(f"prescription {rx_id!r} was not dispensed", details={"rx_id": rx_id})
        if dispense is not None and dispense != record.facts["dispense_record"]:
            raise RxNotDispensed(
                f"prescription {rx_id!r} was dispensed by another record than the one settled",
                details={"rx_id": rx_id, "field": "dispense_record"},
            )
        earlier = data.get("settlement") or stricter(lambda: rx_settlement(chain, rx_id))
        if earlier is not None:
            raise RxAlreadySettled(
                f"the dispense of prescription {rx_id!r} was already settled",
                details={"rx_id": rx_id, "record": earlier["record"]},
            )
        dated = RxWorkflow._in_order(record, data)
        settlement = {
            "by": record.org,
            "record": record.record_id,
            "settlement_id": record.facts["settlement_id"],
        }
        return State(state.status, {**data, "settlement": settlement, **dated})

    @staticmethod
    def _issue(record: RecordFacts, state: State | None, chain: ChainView) -> State:
        rx_id = str(record.facts["rx_id"])
        if state is not None:
            raise RxExists(f"prescription {rx_id!r} was already issued", details={"rx_id": rx_id})
        entry = rx_status(chain, rx_id)
        # The chain's issue by this very record: re-submitted after a restore lost it here (the chain caller
        # then finds its call already applied).
        if entry is not None and entry["issue_digest"] != record.record_id:
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
                **check_order(Dated.of(record.facts, "authored_on"), None, ISSUE, details={}),
            },
        )

    def contract_call(self, record: RecordFacts) -> ContractCall | None:
        rx, digest = chain_key("rx", str(record.facts["rx_id"])), bytes.fromhex(record.record_id)
        if record.kind == ISSUE:
            return ContractCall(CONTRACT, "issue", (rx, digest, to_unix(record.facts["expires_at"])))
        if record.kind == REVIEW:
            return ContractCall(CONTRACT, "review", (rx, digest, record.facts["decision"] == "approved"))
        if record.kind == SETTLE:
            return ContractCall(CONTRACT, "settle", (rx, digest))
        boxes = box_keys(record.facts) if record.kind == DISPENSE else None
        if boxes:
            return ContractCall(
                CONTRACT, "dispenseWithCodes", (rx, digest, [bytes.fromhex(d) for d in boxes])
            )
        return ContractCall(CONTRACT, "dispense" if record.kind == DISPENSE else "revoke", (rx, digest))

    def already_applied(self, record: RecordFacts, revert: ContractReverted, chain: ChainView) -> bool:
        rx_id = str(record.facts.get("rx_id"))
        if record.kind in (REVIEW, SETTLE):
            held = (rx_review if record.kind == REVIEW else rx_settlement)(chain, rx_id)
            return held is not None and held["record"] == record.record_id
        entry = rx_status(chain, str(record.facts.get("rx_id")))
        if entry is None:
            return False
        if record.kind == ISSUE:
            return bool(entry["issue_digest"] == record.record_id)
        closed = "dispensed" if record.kind == DISPENSE else "revoked"
        return bool(entry["status"] == closed and entry["close_digest"] == record.record_id)
