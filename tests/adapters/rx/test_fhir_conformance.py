"""FHIR R4 conformance of the prescription adapter, table-driven from the specification's rules.

- dateTime (datatypes.html#dateTime): YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.f+] with Z or an
  offset; "if hours and minutes are specified, a time zone SHALL be populated"; seconds required; hour 24
  never; leap second 60 allowed; "dates SHALL be valid dates". A date without a time is read in the
  deployment's zone (``AdaptContext.time_zone``, default Asia/Shanghai).
- Period (datatypes.html#Period): start and end inclusive, "the end value includes any matching date/time"
  (an end date covers its whole day); per-1 start <= end.
- medication[x] (MedicationRequest, MedicationDispense): exactly one of CodeableConcept and Reference; a
  Reference ``#id`` names a contained resource (references.html#contained); DomainResource dom-2 to dom-5.
- Extensions and meta are content: kept, and signed, as received.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters import AdaptContext, adapt
from adapters._common import canonical_json
from adapters.errors import PayloadInvalid
from provenance.crypto.sm3 import sm3_hex
from provenance.timestamps import parse_fhir_datetime
from tests.kit.adapter_samples import ASSETS, PSEUDONYM_KEY

FHIR = ASSETS / "fhir"
ISSUE: dict[str, Any] = json.loads((FHIR / "rx-issue-amoxicillin.json").read_text("utf-8"))
DISPENSE: dict[str, Any] = json.loads((FHIR / "rx-dispense-amoxicillin.json").read_text("utf-8"))
SHANGHAI = ZoneInfo("Asia/Shanghai")
YB = "http://www.nhsa.gov.cn/fhir/CodeSystem/yb-drug"
AMOXICILLIN = {"system": YB, "code": "XJ01CAA040A001010100139", "display": "阿莫西林胶囊 0.25g×24粒"}


def mutate(doc: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    change(out)
    return out


def refused(kind: str, payload: dict[str, Any], code: str, field: str, **ctx: Any) -> PayloadInvalid:
    with pytest.raises(PayloadInvalid) as e:
        adapt(kind, payload, AdaptContext(**ctx))
    assert (e.value.code, e.value.details.get("field")) == (code, field), e.value.to_dict()
    return e.value


# --- dateTime -------------------------------------------------------------------------------------------

# (value, first instant in UTC, precision): the Asia/Shanghai reading of a date without a time.
VALID_DATETIMES = [
    ("2026", "2025-12-31T16:00:00Z", "year"),
    ("2026-11", "2026-10-31T16:00:00Z", "month"),
    ("2026-11-25", "2026-11-24T16:00:00Z", "day"),
    ("2024-02-29", "2024-02-28T16:00:00Z", "day"),  # a leap year's day
    ("2026-11-25T09:42:10Z", "2026-11-25T09:42:10Z", None),
    ("2026-11-25T09:42:10+08:00", "2026-11-25T01:42:10Z", None),
    ("2026-11-25T09:42:10-00:00", "2026-11-25T09:42:10Z", None),
    ("2026-11-25T09:42:10.5+08:00", "2026-11-25T01:42:10.500000Z", None),
    ("2026-11-25T09:42:10.123456789-05:00", "2026-11-25T14:42:10.123456Z", None),  # beyond µs: dropped
    ("2026-11-25T23:59:59+14:00", "2026-11-25T09:59:59Z", None),  # the widest offsets
    ("2026-11-24T09:00:00-14:00", "2026-11-24T23:00:00Z", None),
    ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z", None),  # a leap second
]

# Values the regex or the calendar refuses (field authoredOn, FHIR_INVALID).
INVALID_DATETIMES = [
    ("hours-without-zone", "2026-11-25T09:42:10"),
    ("minutes-without-seconds", "2026-11-25T09:42Z"),
    ("hour-24", "2026-11-25T24:00:00Z"),
    ("minute-60", "2026-11-25T09:60:00Z"),
    ("month-13", "2026-13"),
    ("month-00", "2026-00-01"),
    ("february-30", "2026-02-30"),
    ("february-29-not-leap", "2025-02-29"),
    ("april-31", "2026-04-31T10:00:00Z"),
    ("year-0000", "0000"),
    ("two-digit-year", "26-11-25"),
    ("single-digit-month", "2026-1-05"),
    ("date-with-zone", "2026-11-25+08:00"),
    ("space-separator", "2026-11-25 09:42:10Z"),
    ("lower-case-t-z", "2026-11-25t09:42:10z"),
    ("offset-beyond-14", "2026-11-25T09:42:10+15:00"),
    ("offset-14-30", "2026-11-25T09:42:10+14:30"),
    ("offset-without-colon", "2026-11-25T09:42:10+0800"),
    ("empty-fraction", "2026-11-25T09:42:10.Z"),
    ("full-width-digits", "２０２６-11-25"),
    ("empty", ""),
]


@pytest.mark.parametrize(
    ("value", "start", "precision"), VALID_DATETIMES, ids=[v[0] for v in VALID_DATETIMES]
)
def test_valid_datetime_forms_accepted(value: str, start: str, precision: str | None) -> None:
    facts = adapt("rx.issue", mutate(ISSUE, lambda d: d.update(authoredOn=value))).facts
    assert facts["authored_on"] == start
    assert facts.get("authored_on_precision") == precision


@pytest.mark.parametrize(("name", "value"), INVALID_DATETIMES, ids=[v[0] for v in INVALID_DATETIMES])
def test_invalid_datetime_forms_refused(name: str, value: str) -> None:
    refused("rx.issue", mutate(ISSUE, lambda d: d.update(authoredOn=value)), "FHIR_INVALID", "authoredOn")
    # The library validates first; the project's own reader refuses the same values on its own.
    with pytest.raises(ValueError):
        parse_fhir_datetime(value, SHANGHAI)


def test_not_a_string_refused() -> None:
    refused("rx.issue", mutate(ISSUE, lambda d: d.update(authoredOn=20261125)), "FHIR_INVALID", "authoredOn")
    for where in ("whenHandedOver", "whenPrepared"):
        bad = mutate(DISPENSE, lambda d, w=where: d.update({w: "2026-11-25T10:20:31"}))  # type: ignore[misc]
        refused("rx.dispense", bad, "FHIR_INVALID", where)


@pytest.mark.parametrize(
    ("zone", "expires"),
    [
        (SHANGHAI, "2026-11-28T16:00:00Z"),
        (ZoneInfo("UTC"), "2026-11-29T00:00:00Z"),
        (ZoneInfo("America/New_York"), "2026-11-29T05:00:00Z"),
    ],
    ids=["Asia/Shanghai", "UTC", "America/New_York"],
)
def test_a_date_is_read_in_the_deployments_zone(zone: tzinfo, expires: str) -> None:
    period = {"start": "2026-11-25", "end": "2026-11-28"}
    doc = mutate(ISSUE, lambda d: d["dispenseRequest"].update(validityPeriod=period))
    facts = adapt("rx.issue", doc, AdaptContext(time_zone=zone)).facts
    assert facts["expires_at"] == expires  # the end date covers its whole day there
    assert datetime.fromisoformat(facts["valid_from"]) == datetime(2026, 11, 25, tzinfo=zone)


# --- Period ---------------------------------------------------------------------------------------------

# (name, validityPeriod, valid_from, expires_at) in Asia/Shanghai; authoredOn is 2026-11-25T09:42:10+08:00.
VALID_PERIODS = [
    ("dates", {"start": "2026-11-25", "end": "2026-11-28"}, "2026-11-24T16:00:00Z", "2026-11-28T16:00:00Z"),
    ("one-day", {"start": "2026-11-25", "end": "2026-11-25"}, "2026-11-24T16:00:00Z", "2026-11-25T16:00:00Z"),
    ("month-end", {"start": "2026-11-25", "end": "2026-12"}, "2026-11-24T16:00:00Z", "2026-12-31T16:00:00Z"),
    (
        "time-then-date",
        {"start": "2026-11-25T10:00:00+08:00", "end": "2026-11-25"},
        "2026-11-25T02:00:00Z",
        "2026-11-25T16:00:00Z",
    ),
    (
        "instants",
        {"start": "2026-11-25T09:42:10.250+08:00", "end": "2026-11-28T23:59:59Z"},
        "2026-11-25T01:42:10.250000Z",
        "2026-11-28T23:59:59Z",
    ),
    ("no-start", {"end": "2026-11-28"}, "2026-11-25T01:42:10Z", "2026-11-28T16:00:00Z"),  # from authoredOn
]


@pytest.mark.parametrize(("name", "period", "start", "end"), VALID_PERIODS, ids=[p[0] for p in VALID_PERIODS])
def test_valid_periods_accepted(name: str, period: dict[str, str], start: str, end: str) -> None:
    doc = mutate(ISSUE, lambda d: d["dispenseRequest"].update(validityPeriod=period))
    facts = adapt("rx.issue", doc).facts
    assert datetime.fromisoformat(facts["valid_from"]) == datetime.fromisoformat(start)
    assert facts["expires_at"] == end


INVALID_PERIODS = [
    # per-1: the start is not after the end (compared at their precision: a date's start, the end's last day).
    ("start-after-end", {"start": "2026-11-28", "end": "2026-11-25"}, "FHIR_INVALID", ""),
    ("start-after-end-day", {"start": "2026-11-26T00:00:00+08:00", "end": "2026-11-25"}, "FHIR_INVALID", ""),
    ("bad-end", {"start": "2026-11-25", "end": "2026-11-31"}, "FHIR_INVALID", ".end"),
    ("bad-start", {"start": "2026-11-25T10:00:00", "end": "2026-11-28"}, "FHIR_INVALID", ".start"),
    ("no-end", {"start": "2026-11-25"}, "FHIR_INVALID", ".end"),  # the contract needs an expiry
    # Valid FHIR (per-1 allows start == end) but no time to dispense in.
    ("empty", {"start": "2026-11-25T10:00:00Z", "end": "2026-11-25T10:00:00Z"}, "RX_RULE_VIOLATION", ".end"),
]


@pytest.mark.parametrize(
    ("name", "period", "code", "suffix"), INVALID_PERIODS, ids=[p[0] for p in INVALID_PERIODS]
)
def test_invalid_periods_refused(name: str, period: dict[str, str], code: str, suffix: str) -> None:
    doc = mutate(ISSUE, lambda d: d["dispenseRequest"].update(validityPeriod=period))
    refused("rx.issue", doc, code, "dispenseRequest.validityPeriod" + suffix)


def _prior(**validity: str) -> dict[str, Any]:
    doc = mutate(ISSUE, lambda d: d["dispenseRequest"].update(validityPeriod=validity))
    return dict(adapt("rx.issue", doc, AdaptContext(pseudonym_key=PSEUDONYM_KEY)).facts)


def _dispense_at(handed_over: str, prior: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    doc = mutate(DISPENSE, lambda d: (d.update(whenHandedOver=handed_over), d.pop("whenPrepared")))
    ctx = AdaptContext(prior=prior, pseudonym_key=PSEUDONYM_KEY, now=now)
    return dict(adapt("rx.dispense", doc, ctx).facts)


def test_an_end_date_covers_its_whole_day() -> None:
    prior = _prior(start="2026-11-25", end="2026-11-28")
    prior["authored_on"] = "2026-11-24T01:42:10Z"  # written the day before it is valid from
    assert (
        _dispense_at("2026-11-28T23:59:59.999+08:00", prior)["handed_over_at"]
        == "2026-11-28T15:59:59.999000Z"
    )
    assert _dispense_at("2026-11-28T15:59:59Z", prior)
    for late in ("2026-11-29T00:00:00+08:00", "2026-11-28T16:00:00Z", "2026-11-29"):
        with pytest.raises(PayloadInvalid) as e:
            _dispense_at(late, prior)
        assert (e.value.code, e.value.details["field"]) == ("RX_RULE_VIOLATION", "whenHandedOver")
    # A start date counts from its first instant.
    assert _dispense_at("2026-11-25T00:00:00+08:00", prior)
    with pytest.raises(PayloadInvalid) as e:
        _dispense_at("2026-11-24T23:59:59+08:00", prior)
    assert e.value.code == "RX_RULE_VIOLATION"


def test_a_hand_over_date_within_validity() -> None:
    """A dispense dated by its day (no time) is within validity when that day overlaps it; that the box
    was not handed over before the start is then the gateway's clock's to say."""
    prior = _prior(start="2026-11-25T09:42:10+08:00", end="2026-11-28")
    after = datetime(2026, 11, 25, 3, tzinfo=UTC)  # 11:00 in Shanghai, after the start
    facts = _dispense_at("2026-11-25", prior, now=after)
    assert (facts["handed_over_at"], facts["handed_over_at_precision"]) == ("2026-11-24T16:00:00Z", "day")
    before = datetime(2026, 11, 25, 1, tzinfo=UTC)  # 09:00 in Shanghai: the prescription is not valid yet
    with pytest.raises(PayloadInvalid) as e:
        _dispense_at("2026-11-25", prior, now=before)
    assert (e.value.code, e.value.details["field"]) == ("RX_RULE_VIOLATION", "whenHandedOver")
    # A day is in the future only when all of it is: today is fine, tomorrow is not.
    with pytest.raises(PayloadInvalid) as e:
        _dispense_at("2026-11-26", prior, now=after)
    assert (e.value.code, e.value.details["field"]) == ("DATE_IN_FUTURE", "whenHandedOver")


# --- medication[x] and contained resources --------------------------------------------------------------


def _contained(doc: dict[str, Any], *resources: dict[str, Any], ref: str = "#med") -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out.pop("medicationCodeableConcept")
    out["medicationReference"] = {"reference": ref}
    out["contained"] = list(resources)
    return out


MED = {"resourceType": "Medication", "id": "med", "code": {"coding": [AMOXICILLIN], "text": "阿莫西林胶囊"}}


def test_contained_medication_accepted_and_matched() -> None:
    issue = adapt("rx.issue", _contained(ISSUE, MED), AdaptContext(pseudonym_key=PSEUDONYM_KEY))
    inline = adapt("rx.issue", ISSUE, AdaptContext(pseudonym_key=PSEUDONYM_KEY))
    assert issue.facts["medication"] == AMOXICILLIN
    assert issue.facts["medication_ids"] == {
        "codes": [f"{YB}|{AMOXICILLIN['code']}"],
        "displays": [AMOXICILLIN["display"]],
        "text": "阿莫西林胶囊",
    }
    # Either side by a contained Medication, the other inline: the same medication.
    for prior, dispense in ((issue, DISPENSE), (inline, _contained(DISPENSE, MED))):
        ctx = AdaptContext(prior=dict(prior.facts), pseudonym_key=PSEUDONYM_KEY)
        assert adapt("rx.dispense", dispense, ctx).facts["medication"] == AMOXICILLIN
    other = {**MED, "code": {"coding": [{"system": YB, "code": "XA10BAE160A001010100547"}]}}
    refused(
        "rx.dispense",
        _contained(DISPENSE, other),
        "RX_DISPENSE_MISMATCH",
        "medication[x]",
        prior=dict(issue.facts),
        pseudonym_key=PSEUDONYM_KEY,
    )


def test_reference_to_a_medication_elsewhere_accepted() -> None:
    doc = _contained(ISSUE, ref="Medication/amoxicillin-250")
    doc.pop("contained")
    facts = adapt("rx.issue", doc).facts
    assert facts["medication"] == {"reference": "Medication/amoxicillin-250"}


PATIENT = {"resourceType": "Patient", "id": "med"}

MEDICATION_REJECTIONS: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]], str, str]] = [
    (
        "missing",
        lambda d: _contained(d, {**MED, "id": "other"}, {**MED, "id": "x"}, ref="#nope"),
        "FHIR_INVALID",
        "medicationReference.reference",
    ),
    ("no-contained", lambda d: _contained(d), "FHIR_INVALID", "medicationReference.reference"),
    ("not-a-medication", lambda d: _contained(d, PATIENT), "FHIR_INVALID", "medicationReference.reference"),
    (
        "duplicate-ids",
        lambda d: _contained(d, MED, {**MED, "code": {"text": "x"}}),
        "FHIR_INVALID",
        "contained.1.id",
    ),
    (
        "both-choices",
        lambda d: {**d, "medicationReference": {"reference": "Medication/1"}},
        "FHIR_INVALID",
        "medication[x]",
    ),
    (
        "neither-choice",
        lambda d: {k: v for k, v in d.items() if k != "medicationCodeableConcept"},
        "FHIR_INVALID",
        "medication[x]",
    ),
    (
        "no-reference",
        lambda d: {**_contained(d, MED), "medicationReference": {"display": "x"}},
        "FHIR_INVALID",
        "medicationReference.reference",
    ),
    # dom-3: a contained resource is referred to from elsewhere in the resource.
    ("unreferenced", lambda d: _contained(d, MED, {**PATIENT, "id": "p"}), "FHIR_INVALID", "contained.1"),
    (
        "nested",
        lambda d: _contained(d, {**MED, "contained": [{**PATIENT, "id": "p"}]}),
        "FHIR_INVALID",
        "contained.0",
    ),
    (
        "version-meta",
        lambda d: _contained(d, {**MED, "meta": {"versionId": "2"}}),
        "FHIR_INVALID",
        "contained.0.meta",
    ),
    (
        "security-label",
        lambda d: _contained(d, {**MED, "meta": {"security": [{"code": "R"}]}}),
        "FHIR_INVALID",
        "contained.0.meta",
    ),
    (
        "unknown-element",
        lambda d: _contained(d, {**MED, "strength": "250mg"}),
        "FHIR_INVALID",
        "contained.0.strength",
    ),
    # Valid FHIR, but nothing says which drug it is.
    (
        "uncoded",
        lambda d: _contained(d, {**MED, "code": {"coding": []}}),
        "RX_RULE_VIOLATION",
        "contained.0.code",
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "code", "field"), MEDICATION_REJECTIONS, ids=[m[0] for m in MEDICATION_REJECTIONS]
)
@pytest.mark.parametrize(
    ("kind", "doc"), [("rx.issue", ISSUE), ("rx.dispense", DISPENSE)], ids=["issue", "dispense"]
)
def test_medication_rejections(
    kind: str,
    doc: dict[str, Any],
    name: str,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    code: str,
    field: str,
) -> None:
    refused(kind, change(copy.deepcopy(doc)), code, field)


def test_contained_resources_referenced_from_another_or_the_container() -> None:
    # dom-3 is met by a reference from another contained resource, or to the container ("#").
    org = {"resourceType": "Organization", "id": "maker", "name": "某药业"}
    med = {**MED, "manufacturer": {"reference": "#maker"}}
    assert adapt("rx.issue", _contained(ISSUE, med, org)).facts["medication"] == AMOXICILLIN
    back = {**PATIENT, "id": "p", "link": [{"other": {"reference": "#"}, "type": "seealso"}]}
    assert adapt("rx.issue", _contained(ISSUE, MED, back)).facts["medication"] == AMOXICILLIN


# --- extensions and meta --------------------------------------------------------------------------------


def test_meta_and_unknown_extensions_are_kept_and_signed() -> None:
    def decorate(d: dict[str, Any]) -> None:
        d["meta"] = {
            "versionId": "3",
            "lastUpdated": "2026-11-25T09:42:11.123+08:00",
            "profile": ["http://hl7.org/fhir/StructureDefinition/MedicationRequest"],
            "tag": [{"system": "urn:example:his", "code": "outpatient-window-3"}],
        }
        d["extension"].append({"url": "http://his.example.cn/fhir/ext/window", "valueString": "3号窗口"})
        d["dispenseRequest"]["extension"] = [{"url": "urn:example:dispense-note", "valueInteger": 7}]
        # A primitive's extension (FHIR JSON: "_authoredOn") beside its value.
        d["_authoredOn"] = {"extension": [{"url": "urn:example:source", "valueCode": "his"}]}
        d["authoredOn"] = "2026-11-25"
        d["contained"] = [{**MED, "extension": [{"url": "urn:example:batch", "valueString": "B2611"}]}]
        d.pop("medicationCodeableConcept")
        d["medicationReference"] = {
            "reference": "#med",
            "extension": [{"url": "urn:example:x", "valueBoolean": True}],
        }

    doc = mutate(ISSUE, decorate)
    a = adapt("rx.issue", json.dumps(doc, ensure_ascii=False).encode("utf-8"))
    # The signed payload is the resource exactly as received (RFC 8785): nothing dropped, nothing added.
    assert a.document() == doc
    assert a.canonical == canonical_json(doc) and a.digest == sm3_hex(a.canonical)
    # Every extension is part of what is signed: changing one changes the digest.
    changed = mutate(doc, lambda d: d["extension"][-1].update(valueString="4号窗口"))
    assert adapt("rx.issue", changed).digest != a.digest
    assert a.facts["access_code_digest"] == ISSUE["extension"][0]["valueString"]
    assert a.facts["authored_on_precision"] == "day"


MODIFIERS = [
    (
        "root",
        lambda d: d.update(modifierExtension=[{"url": "urn:example:not-really", "valueBoolean": True}]),
        "modifierExtension",
    ),
    (
        "element",
        lambda d: d["dosageInstruction"][0].update(
            modifierExtension=[{"url": "urn:example:x", "valueString": "y"}]
        ),
        "dosageInstruction.0.modifierExtension",
    ),
    (
        "contained",
        lambda d: (
            d.pop("medicationCodeableConcept"),
            d.update(
                medicationReference={"reference": "#med"},
                contained=[{**MED, "modifierExtension": [{"url": "urn:example:x", "valueCode": "z"}]}],
            ),
        ),
        "contained.0.modifierExtension",
    ),
    ("implicit-rules", lambda d: d.update(implicitRules="http://his.example.cn/rules"), "implicitRules"),
]


@pytest.mark.parametrize(("name", "change", "field"), MODIFIERS, ids=[m[0] for m in MODIFIERS])
def test_modifiers_not_understood_are_refused(
    name: str, change: Callable[[dict[str, Any]], object], field: str
) -> None:
    """An unknown modifier may reverse the meaning (a dispense that did not happen): never read past it."""
    refused("rx.issue", mutate(ISSUE, change), "RX_RULE_VIOLATION", field)
