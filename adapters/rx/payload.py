"""E-prescription: ``rx.issue`` (FHIR MedicationRequest), ``rx.dispense`` (MedicationDispense), ``rx.revoke``.

Resources are validated with ``fhir.resources`` (its R4B package: MedicationRequest and MedicationDispense
are unchanged from R4). The canonical bytes are RFC 8785 of the resource exactly as received, so the digest
a client computes over its own JSON matches. The rx id is the first ``identifier.value`` of the request
(its ``id`` when it has none); a dispense names it in ``authorizingPrescription`` by identifier or by a
``MedicationRequest/<rx id>`` reference. A revoke is a small JSON document, not a cancelled resource: a
revocation needs no copy of the prescription, and the contract, not the resource, holds the state.

Reads (``READ_POLICY``): the issuing hospital and the dispensing pharmacy read the whole prescription; a
pharmacy the patient shows the slip to reads the issue by its access code (``provenance.access_code``:
the MedicationRequest carries the code's digest in an extension, the facts as ``access_code_digest``).
Every issue carries one (``ACCESS_CODE_DIGEST_MISSING``), and a dispense is accepted only from a pharmacy
presenting the code (``READ_POLICY.code_writes``, checked by the gateway before anything about the
prescription is looked at).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.medicationrequest import MedicationRequest
from pydantic import AfterValidator, BaseModel, Field

from adapters._common import (
    ID_PATTERN,
    MAX_BACKDATE,
    STRICT,
    adapted,
    check_instant,
    check_not_future,
    domain_policy,
    everything,
    load_json_object,
    parse_instant,
    past_instant,
    pseudonym,
    rfc3339_utc,
    validate_model,
)
from adapters.abc import AdaptContext, AdaptedPayload, Grant, Payload
from adapters.dated import MARK, Dated, check_order
from adapters.errors import AccessCodeDigestMissing, ExpiryNotInFuture, PayloadInvalid
from adapters.rx import contents, mentions
from adapters.rx import medication as med
from adapters.rx.domain import DOMAIN
from adapters.rx.domain import KINDS as DOMAIN_KINDS
from adapters.rx.errors import (
    FhirInvalid,
    RxDispenseMismatch,
    RxHandedOverBeforeIssue,
    RxHandedOverTooEarly,
    RxQuantityInvalid,
    RxQuantityNotWhole,
    RxRuleViolation,
    RxUnitInvalid,
)
from adapters.rx.fhir import bound_contained, when
from adapters.rx.fhir import get as _get
from adapters.rx.fhir import require as _require
from adapters.rx.fhir import validate as _fhir
from adapters.rx.steps import review_facts, settle_facts
from adapters.rx.trace_codes import MAX_CODES, counts_packages, trace_codes
from adapters.rx.trace_codes import digest as code_digest
from provenance.access_code import FHIR_EXTENSION_URL, AccessCode
from provenance.crypto.sm3 import sm3_hex
from provenance.timestamps import TimeSpan
from provenance.trace_code import chain_digest

_ID = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))  # fullmatch: see ID_PATTERN
_RX_REFERENCE = re.compile(r"MedicationRequest/(?P<id>[^/]+)\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")

# Prescriptions.MAX_VALIDITY: the contract refuses an expiry further from its clock (ExpiryTooFar); the
# gateway checks the same bound against the chain's clock before it accepts an issue.
MAX_VALIDITY = timedelta(days=366)
# A quantity is a count or an amount of packages, tablets, millilitres: more than a million, or finer than
# a thousandth, is a mistake or an attack on whoever reads it (1e300, 1e-300).
MAX_QUANTITY = 10**6
QUANTITY_DECIMALS = 3


class RxRevoke(BaseModel):
    """Payload of ``rx.revoke``."""

    model_config = STRICT

    rx_id: Annotated[str, Field(pattern=ID_PATTERN)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    revoked_at: Annotated[str, AfterValidator(check_instant)]


def _rx_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise FhirInvalid("rx id must be 1-128 of A-Z a-z 0-9 . _ : -", details={"field": field})
    return value


def _quantity(obj: dict[str, Any], *path: str) -> tuple[int | float, str | None]:
    value = _require(obj, *path, "value")
    field = ".".join((*path, "value"))
    if _get(obj, *path, "comparator") is not None:
        # R4 types both as SimpleQuantity (no comparator): "> 2 boxes" is no amount to dispense or count.
        raise RxQuantityInvalid(
            "quantity is a SimpleQuantity: no comparator", details={"field": ".".join((*path, "comparator"))}
        )
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise RxQuantityInvalid("quantity must be a number", details={"field": field})
    # The shortest decimal that reads back as this double: what canonical JSON prints.
    exponent = Decimal(repr(value)).as_tuple().exponent
    if not 0 < value <= MAX_QUANTITY or not isinstance(exponent, int) or exponent < -QUANTITY_DECIMALS:
        raise RxQuantityInvalid(
            f"quantity must be greater than 0, at most {MAX_QUANTITY}, with at most {QUANTITY_DECIMALS} "
            "decimals",
            details={"field": field},
        )
    unit = _get(obj, *path, "unit")
    for key in ("unit", "code"):
        text = _get(obj, *path, key)
        # Format and control characters, and marks left after NFKC (a variation selector), make a unit that
        # reads as another (盒 + U+200B).
        if isinstance(text, str) and any(
            unicodedata.category(c)[0] in "CM" for c in unicodedata.normalize("NFKC", text)
        ):
            raise RxUnitInvalid(
                f"quantity.{key} has an invisible, control or combining character",
                details={"field": ".".join((*path, key))},
            )
    return value, unit if isinstance(unit, str) else None


def _unit_code(obj: dict[str, Any], *path: str) -> dict[str, str]:
    """The quantity's coded unit (``system|code``, UCUM as a rule) as a fact, when it carries one: the display
    text alone let a dispense in "kg" pass against a prescription in boxes under the same text."""
    system, code = _get(obj, *path, "system"), _get(obj, *path, "code")
    if isinstance(code, str):
        return {"unit_code": f"{system if isinstance(system, str) else ''}|{code}"}
    return {}


def _precision(name: str, span: TimeSpan) -> dict[str, str]:
    """``{"<name>_precision": "day"}`` for a date without a time (the fact holds its first instant)."""
    return {f"{name}_precision": span.precision} if span.partial else {}


def _patient(obj: dict[str, Any], ctx: AdaptContext) -> tuple[str, dict[str, str]]:
    """The patient reference, and its fact: a keyed digest (facts are kept in clear in the gateway's
    database and shown to the prescription's readers; a plain SM3 of "Patient/bob" is a guess away)."""
    reference = str(_require(obj, "subject", "reference"))
    keyed = pseudonym(ctx, "patient-ref", reference)
    return reference, {} if keyed is None else {"patient_ref_hmac": keyed}


def _issue(obj: dict[str, Any], ctx: AdaptContext) -> tuple[str, dict[str, Any]]:
    _fhir(MedicationRequest, obj)
    identifier = _get(obj, "identifier", 0, "value")
    rx_id = (
        _rx_id(identifier, "identifier.0.value") if identifier is not None else _rx_id(obj.get("id"), "id")
    )
    if obj.get("status") != "active":
        raise RxRuleViolation("an issued prescription must be active", details={"field": "status"})
    if obj.get("intent") != "order":
        raise RxRuleViolation("an issued prescription must have intent order", details={"field": "intent"})
    _, patient = _patient(obj, ctx)
    patient |= contents.subject_details(obj, ctx)
    medication = med.medication(obj)
    _require(obj, "dosageInstruction", 0)
    zone = ctx.time_zone
    authored = when(obj, "authoredOn", zone=zone)
    check_not_future(authored.start, "authoredOn", ctx)
    quantity, unit = _quantity(obj, "dispenseRequest", "quantity")
    packages = counts_packages((unit, _get(obj, "dispenseRequest", "quantity", "code")))
    if packages and quantity > MAX_CODES:
        # A dispense lists at most MAX_CODES boxes' codes: more could never be dispensed.
        raise RxQuantityInvalid(
            f"a prescription in packages is for at most {MAX_CODES} (one dispense lists each one's code)",
            details={"field": "dispenseRequest.quantity.value"},
        )
    if packages and not float(quantity).is_integer():
        # A box is handed over whole, with its code: half of one could never be dispensed.
        raise RxQuantityNotWhole(
            "a prescription in packages is for whole packages (a fraction is prescribed in a dose unit)",
            details={"field": "dispenseRequest.quantity.value"},
        )
    # A Period's start is inclusive from its first instant, its end inclusive to its last: an end date
    # covers its whole day in the deployment's zone. No start: valid from when it was written (the low
    # boundary is unknown); no end: never expires, which the contract refuses (an expiry is required).
    validity = ("dispenseRequest", "validityPeriod")
    end_span = when(obj, *validity, "end", zone=zone)
    start_span = (
        when(obj, *validity, "start", zone=zone) if _get(obj, *validity, "start") is not None else authored
    )
    start, end = start_span.start, end_span.end
    # per-1: start.lowBoundary() <= end.highBoundary(), the last instant of an end date (``end`` is the first
    # instant after it).
    if start > (end - timedelta(microseconds=1) if end_span.partial else end):
        raise FhirInvalid(
            "validityPeriod starts after it ends (per-1)", details={"field": "dispenseRequest.validityPeriod"}
        )
    if end <= start:
        raise RxRuleViolation(
            "validity period must end after it starts",
            details={"field": "dispenseRequest.validityPeriod.end"},
        )
    if ctx.now is not None and end <= ctx.now:
        raise ExpiryNotInFuture(
            "prescription already expired", details={"field": "dispenseRequest.validityPeriod.end"}
        )
    repeats = _get(obj, "dispenseRequest", "numberOfRepeatsAllowed")
    if repeats not in (None, 0):
        # The Prescriptions contract dispenses a prescription exactly once.
        raise RxRuleViolation(
            "repeat dispensing is not supported", details={"field": "dispenseRequest.numberOfRepeatsAllowed"}
        )
    # The prescriber is a person too (Practitioner/D1024): a keyed digest like the patient, or nothing.
    requester = _get(obj, "requester", "reference")
    keyed = pseudonym(ctx, "requester-ref", requester) if isinstance(requester, str) else None
    return rx_id, {
        "rx_id": rx_id,
        "authored_on": rfc3339_utc(authored.start),
        **_precision("authored_on", authored),
        "valid_from": rfc3339_utc(start),
        "expires_at": rfc3339_utc(end),
        "quantity": quantity,
        "unit": unit,
        **_unit_code(obj, "dispenseRequest", "quantity"),
        "medication": medication,
        "medication_ids": med.medication_ids(obj),
        **patient,
        **({} if keyed is None else {"requester_ref_hmac": keyed}),
    }


def _dispense_rx_id(obj: dict[str, Any]) -> str:
    prescriptions = _require(obj, "authorizingPrescription")
    if len(prescriptions) != 1:
        raise RxRuleViolation(
            "a dispense must name exactly one prescription", details={"field": "authorizingPrescription"}
        )
    value = _get(prescriptions, 0, "identifier", "value")
    if value is not None:
        return _rx_id(value, "authorizingPrescription.0.identifier.value")
    ref = _get(prescriptions, 0, "reference")
    m = _RX_REFERENCE.match(ref) if isinstance(ref, str) else None
    if m is None:
        raise FhirInvalid(
            "authorizingPrescription must reference MedicationRequest/<rx id> or carry its identifier",
            details={"field": "authorizingPrescription.0"},
        )
    return _rx_id(m["id"], "authorizingPrescription.0.reference")


def _dispense(obj: dict[str, Any], ctx: AdaptContext) -> tuple[str, dict[str, Any]]:
    _fhir(MedicationDispense, obj)
    rx_id = _dispense_rx_id(obj)
    if obj.get("status") != "completed":
        raise RxRuleViolation("a recorded dispense must be completed", details={"field": "status"})
    quantity, unit = _quantity(obj, "quantity")
    handed_over = when(obj, "whenHandedOver", zone=ctx.time_zone)
    if handed_over.precision in ("year", "month"):
        raise RxRuleViolation(
            "whenHandedOver is a date or a date-time: a month or a year does not say when",
            details={"field": "whenHandedOver"},
        )
    # Declared dates are bounded by the gateway's clock first: the validity rule below trusts them. A date
    # without a time is in the future only when all of it is.
    check_not_future(handed_over.start, "whenHandedOver", ctx)
    if ctx.now is not None and handed_over.end <= ctx.now - MAX_BACKDATE:
        raise RxHandedOverTooEarly(
            f"whenHandedOver is more than {int(MAX_BACKDATE.total_seconds()) // 3600} h before the gateway "
            "records it: a dispense is recorded within that window",
            details={"field": "whenHandedOver", "max_backdate_s": int(MAX_BACKDATE.total_seconds())},
        )
    if _get(obj, "whenPrepared") is not None:
        prepared = when(obj, "whenPrepared", zone=ctx.time_zone)
        check_not_future(prepared.start, "whenPrepared", ctx)
        # mdd-1: whenHandedOver >= whenPrepared; a date is after the other only when all of it is.
        if prepared.start >= (handed_over.end if handed_over.partial else handed_over.start + _INSTANT):
            raise FhirInvalid(
                "whenPrepared is after whenHandedOver (mdd-1)", details={"field": "whenPrepared"}
            )
    contents.check_unqualified(obj)
    contents.check_reference_types(obj)
    contents.check_statements(obj)
    if "daysSupply" in obj:
        _quantity(obj, "daysSupply")
        contents.check_days_unit(obj)
    reference, patient = _patient(obj, ctx)
    patient |= contents.subject_details(obj, ctx)
    received = contents.receivers(obj, ctx)
    contents.check_batch(obj, handed_over, ctx)
    facts: dict[str, Any] = {
        "rx_id": rx_id,
        "dispense_id": _get(obj, "identifier", 0, "value") or obj.get("id"),
        "handed_over_at": rfc3339_utc(handed_over.start),
        **_precision("handed_over_at", handed_over),
        "quantity": quantity,
        "unit": unit,
        **_unit_code(obj, "quantity"),
        "medication": med.medication(obj),
        "medication_ids": med.medication_ids(obj),
        **patient,
        **contents.performers(obj),
    }
    prior = ctx.prior
    if prior is not None:
        _check_against_issue(facts, prior, handed_over, reference, ctx, received)
    # After the prescription's rules: "more than prescribed" names quantity.value, not a missing box code.
    coded = _get(obj, "quantity", "code")
    day = handed_over.start.astimezone(ctx.time_zone).date()
    accepted = None if ctx.now is None else ctx.now.astimezone(ctx.time_zone).date()
    codes = trace_codes(obj, quantity, (unit, coded if isinstance(coded, str) else None), day, accepted)
    if codes:
        facts |= {"trace_codes": codes, "trace_code_digests": [code_digest(c) for c in codes]}
        if ctx.network_key is not None:  # the boxes' keys on chain (provenance.network_key)
            facts["trace_code_keys"] = [chain_digest(ctx.network_key, c) for c in codes]
    return rx_id, facts


_INSTANT = timedelta(microseconds=1)


def _same_patient(facts: Mapping[str, Any], issue: Mapping[str, Any], reference: str) -> bool:
    if "patient_ref_hmac" in issue:
        return bool(issue["patient_ref_hmac"] == facts.get("patient_ref_hmac"))
    if "patient_ref_digest" in issue:  # facts stored before the keyed digest: a plain SM3, compared here only
        return bool(issue["patient_ref_digest"] == sm3_hex(reference.encode("utf-8")))
    return True


def _check_against_issue(
    facts: dict[str, Any],
    issue: Mapping[str, Any],
    handed_over: TimeSpan,
    reference: str,
    ctx: AdaptContext,
    received: list[tuple[str, dict[str, str]]],
) -> None:
    """Rules that need the ``rx.issue`` facts: same rx, patient (as subject and as each receiver),
    medication and unit, at most the prescribed quantity, within validity. The gateway runs them only for a
    pharmacy that presented the prescription's access code; even so the errors name the field, never the
    prescribed value."""
    if "rx_id" in issue and issue["rx_id"] != facts["rx_id"]:
        raise RxDispenseMismatch("dispense names another prescription", details={"field": "rx_id"})
    if not _same_patient(facts, issue, reference):
        raise RxDispenseMismatch(
            "dispense is for another patient than the prescription", details={"field": "subject.reference"}
        )
    named = issue.get("patient_details_hmac") or {}
    for field, details in [("subject", facts.get("patient_details_hmac") or {}), *received]:
        if any(named.get(k) != v for k, v in details.items()):
            raise RxDispenseMismatch(
                f"dispense names the patient otherwise than the prescription ({field} identifier or display)",
                details={"field": field},
            )
    if "medication" in issue and (why := med.medication_mismatch(med.ids_of(issue), facts["medication_ids"])):
        raise RxDispenseMismatch(why, details={"field": "medication[x]"})
    # The coded unit too, once the prescription's facts carry one (facts from before the field: text only).
    coded = "unit_code" in issue and issue["unit_code"] != facts.get("unit_code")
    if "quantity" in issue and (issue.get("unit") != facts["unit"] or coded):
        raise RxDispenseMismatch(
            "dispense quantity is in another unit than the prescription's", details={"field": "quantity.unit"}
        )
    limit = issue.get("quantity")
    if isinstance(limit, int | float) and facts["quantity"] > limit:
        raise RxDispenseMismatch("dispensed more than prescribed", details={"field": "quantity.value"})
    # A hand-over date without a time is within validity when its day overlaps it; that it was not before
    # the start is then the gateway's clock's to say (now is past the start).
    for key, late in (("valid_from", False), ("expires_at", True)):
        bound = issue.get(key)
        if isinstance(bound, str):
            at = parse_instant(bound, key)
            if late:
                outside = handed_over.start >= at
            elif handed_over.partial:
                outside = handed_over.end <= at or (ctx.now is not None and ctx.now < at)
            else:
                outside = handed_over.start < at
            if outside:
                raise RxRuleViolation(
                    "dispensed outside the prescription's validity period",
                    details={"field": "whenHandedOver"},
                )
    # Within validity but before the prescription was written (a validity start before authoredOn); a
    # date without a time is before it only when all of its day is (``adapters.dated``).
    authored = issue.get("authored_on")
    if isinstance(authored, str):
        written = {MARK: {"at": authored, "kind": "rx.issue"}}
        dated = Dated.of(facts, "handed_over_at")
        check_order(
            dated, written, "rx.dispense", error=RxHandedOverBeforeIssue, details={"field": "whenHandedOver"}
        )


def _access_code_fact(obj: dict[str, Any]) -> dict[str, str]:
    """``{"access_code_digest": …}`` from the MedicationRequest's access-code extension (required)."""
    found = [
        (i, e)
        for i, e in enumerate(obj.get("extension") or [])
        if isinstance(e, dict) and e.get("url") == FHIR_EXTENSION_URL
    ]
    if not found:
        raise AccessCodeDigestMissing(
            "a prescription carries the digest of its access code (the hospital's SDK makes the code, "
            "Client.issue_prescription; docs/formats.md, Prescription access code)",
            details={"field": "extension", "url": FHIR_EXTENSION_URL},
        )
    if len(found) > 1:
        raise FhirInvalid("at most one access-code digest extension", details={"field": "extension"})
    i, ext = found[0]
    digest = ext.get("valueString")
    if set(ext) != {"url", "valueString"} or not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise FhirInvalid(
            "the access-code digest is a valueString of 64 lowercase hex digits",
            details={"field": f"extension.{i}.valueString"},
        )
    return {"access_code_digest": digest}


def _code_matches(issue_facts: Mapping[str, Any], code: str) -> bool:
    """Whether ``code`` (as presented; ACCESS_CODE_MALFORMED if it is none) opens this issue."""
    parsed = AccessCode.parse(code)
    rx_id = issue_facts.get("rx_id")
    return isinstance(rx_id, str) and parsed.matches(rx_id, issue_facts.get("access_code_digest"))


_KINDS = DOMAIN_KINDS

# The issuing hospital, the reviewing pharmacist and the dispensing pharmacy read the whole prescription;
# whoever presents its access code (the pharmacy or pharmacist the patient shows the slip to) reads its
# records' envelopes and the issue's payload. 医保 reads every dispense and settlement it pays for.
READ_POLICY = domain_policy(
    _KINDS,
    roles={"insurer": Grant(frozenset(_KINDS), frozenset({"rx.dispense", "rx.settle"}))},
    parties={
        "hospital": everything(_KINDS),
        "pharmacy": everything(_KINDS),
        "pharmacist": everything(_KINDS),
    },
    holders=Grant(frozenset(_KINDS), frozenset({"rx.issue"})),
    code_kind="rx.issue",
    code_matches=_code_matches,
    # Only the pharmacy (or pharmacist) the patient shows the slip to dispenses (or reviews).
    code_writes=frozenset({"rx.dispense", "rx.review"}),
)


class PrescriptionAdapter:
    """``rx.issue`` / ``rx.review`` / ``rx.dispense`` / ``rx.revoke`` / ``rx.settle``; subject
    ``rx:<rx id>``."""

    domain = DOMAIN
    kinds: tuple[str, ...] = _KINDS
    read_policy = READ_POLICY

    def adapt(self, kind: str, payload: Payload, *, context: AdaptContext | None = None) -> AdaptedPayload:
        """Validate one prescription record's payload."""
        ctx = context or AdaptContext()
        obj = load_json_object(payload)
        if kind == "rx.issue":
            rx_id, facts = _issue(obj, ctx)
            facts |= _access_code_fact(obj)
        elif kind == "rx.dispense":
            # Bounds first: a dispense of 200,000 notes is refused before FHIR validation reads them.
            bound_contained(obj)
            contents.bound_performers(obj)
            texts = mentions.strings(obj)
            rx_id, facts = _dispense(obj, ctx)
            detail = {**contents.shown(obj), "texts": texts}
            return replace(adapted(kind, f"rx:{rx_id}", obj, facts), detail=detail)
        elif kind == "rx.revoke":
            revoke = validate_model(RxRevoke, obj)
            revoked_at = past_instant(revoke.revoked_at, "revoked_at", ctx)
            rx_id = revoke.rx_id
            facts = {"rx_id": rx_id, "reason": revoke.reason, "revoked_at": revoked_at}
        elif kind == "rx.review":
            rx_id, facts = review_facts(obj, ctx)
        elif kind == "rx.settle":
            rx_id, facts = settle_facts(obj, ctx)
        else:
            raise PayloadInvalid(f"not a prescription kind: {kind}", details={"field": "kind"})
        return adapted(kind, f"rx:{rx_id}", obj, facts)
