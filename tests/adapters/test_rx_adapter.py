"""E-prescription adapter: every rejection code, on mutations of the golden FHIR resources."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters import AdaptContext, adapt
from adapters.errors import PayloadInvalid
from provenance.errors import DuplicateKey
from tests.kit.adapter_samples import ASSETS

FHIR = ASSETS / "fhir"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FHIR / name).read_text(encoding="utf-8"))
    return data


ISSUE = load("rx-issue-amoxicillin.json")
DISPENSE = load("rx-dispense-amoxicillin.json")
REVOKE = load("rx-revoke-amoxicillin.json")


def mutate(doc: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    change(out)
    return out


def expect(kind: str, payload: object, code: str, field: str | None = None, **ctx: Any) -> PayloadInvalid:
    with pytest.raises(PayloadInvalid) as e:
        adapt(kind, payload, AdaptContext(**ctx) if ctx else None)  # type: ignore[arg-type]
    assert e.value.code == code, e.value.to_dict()
    if field is not None:
        assert e.value.details["field"] == field, e.value.details
    return e.value


ISSUE_REJECTIONS: list[tuple[str, Callable[[dict[str, Any]], object], str, str]] = [
    ("wrong-resource", lambda d: d.update(resourceType="Patient"), "FHIR_INVALID", "resourceType"),
    ("unknown-element", lambda d: d.update(prescriber="x"), "FHIR_INVALID", "prescriber"),
    ("bad-status-code", lambda d: d.update(status=42), "FHIR_INVALID", "status"),
    ("no-subject", lambda d: d.pop("subject"), "FHIR_INVALID", "subject"),
    ("no-medication", lambda d: d.pop("medicationCodeableConcept"), "FHIR_INVALID", "medication[x]"),
    ("no-dosage", lambda d: d.pop("dosageInstruction"), "FHIR_INVALID", "dosageInstruction.0"),
    ("no-authored", lambda d: d.pop("authoredOn"), "FHIR_INVALID", "authoredOn"),
    ("date-only-authored", lambda d: d.update(authoredOn="2026-11-25"), "FHIR_INVALID", "authoredOn"),
    ("no-rx-id", lambda d: (d.pop("identifier"), d.pop("id")), "FHIR_INVALID", "id"),
    (
        "rx-id-with-space",
        lambda d: d["identifier"][0].update(value="RX 1"),
        "FHIR_INVALID",
        "identifier.0.value",
    ),
    (
        "no-validity",
        lambda d: d["dispenseRequest"].pop("validityPeriod"),
        "FHIR_INVALID",
        "dispenseRequest.validityPeriod.start",
    ),
    ("draft", lambda d: d.update(status="draft"), "RX_RULE_VIOLATION", "status"),
    ("plan", lambda d: d.update(intent="plan"), "RX_RULE_VIOLATION", "intent"),
    (
        "zero-quantity",
        lambda d: d["dispenseRequest"]["quantity"].update(value=0),
        "RX_RULE_VIOLATION",
        "dispenseRequest.quantity.value",
    ),
    (
        "validity-reversed",
        lambda d: d["dispenseRequest"]["validityPeriod"].update(end="2026-11-24T00:00:00+08:00"),
        "RX_RULE_VIOLATION",
        "dispenseRequest.validityPeriod.end",
    ),
    (
        "repeats",
        lambda d: d["dispenseRequest"].update(numberOfRepeatsAllowed=2),
        "RX_RULE_VIOLATION",
        "dispenseRequest.numberOfRepeatsAllowed",
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "code", "field"), ISSUE_REJECTIONS, ids=[r[0] for r in ISSUE_REJECTIONS]
)
def test_issue_rejections(
    name: str, change: Callable[[dict[str, Any]], object], code: str, field: str
) -> None:
    expect("rx.issue", mutate(ISSUE, change), code, field)


def test_issue_expired_at_now() -> None:
    expect(
        "rx.issue",
        ISSUE,
        "EXPIRY_NOT_IN_FUTURE",  # what Prescriptions.issue would answer (ExpiryNotInFuture)
        "dispenseRequest.validityPeriod.end",
        now=datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert adapt("rx.issue", ISSUE, AdaptContext(now=datetime(2026, 11, 25, 2, tzinfo=UTC))).facts["rx_id"]


def test_issue_facts_hide_the_patient() -> None:
    facts = adapt("rx.issue", ISSUE).facts
    assert "PID-0087654321" not in json.dumps(facts)
    assert facts["expires_at"] == "2026-11-28T15:59:59Z"


DISPENSE_REJECTIONS: list[tuple[str, Callable[[dict[str, Any]], object], str, str]] = [
    ("wrong-resource", lambda d: d.update(resourceType="MedicationRequest"), "FHIR_INVALID", "resourceType"),
    ("in-progress", lambda d: d.update(status="in-progress"), "RX_RULE_VIOLATION", "status"),
    ("zero-quantity", lambda d: d["quantity"].update(value=-1), "RX_RULE_VIOLATION", "quantity.value"),
    (
        "no-prescription",
        lambda d: d.pop("authorizingPrescription"),
        "FHIR_INVALID",
        "authorizingPrescription",
    ),
    (
        "two-prescriptions",
        lambda d: d["authorizingPrescription"].append({"reference": "MedicationRequest/RX2"}),
        "RX_RULE_VIOLATION",
        "authorizingPrescription",
    ),
    (
        "reference-to-other-type",
        lambda d: d.update(authorizingPrescription=[{"reference": "Patient/RX1"}]),
        "FHIR_INVALID",
        "authorizingPrescription.0",
    ),
    ("no-hand-over", lambda d: d.pop("whenHandedOver"), "FHIR_INVALID", "whenHandedOver"),
]


@pytest.mark.parametrize(
    ("name", "change", "code", "field"), DISPENSE_REJECTIONS, ids=[r[0] for r in DISPENSE_REJECTIONS]
)
def test_dispense_rejections(
    name: str, change: Callable[[dict[str, Any]], object], code: str, field: str
) -> None:
    expect("rx.dispense", mutate(DISPENSE, change), code, field)


def test_dispense_against_its_issue() -> None:
    issued = dict(adapt("rx.issue", ISSUE).facts)
    assert adapt("rx.dispense", DISPENSE, AdaptContext(prior=issued)).subject == "rx:RX20261125000123"
    expect("rx.dispense", DISPENSE, "RX_DISPENSE_MISMATCH", "quantity.value", prior={**issued, "quantity": 1})
    expect("rx.dispense", DISPENSE, "RX_DISPENSE_MISMATCH", "rx_id", prior={**issued, "rx_id": "RX9"})
    expect(
        "rx.dispense",
        DISPENSE,
        "RX_DISPENSE_MISMATCH",
        "patient_ref_digest",
        prior={**issued, "patient_ref_digest": "0" * 64},
    )
    late = {**issued, "expires_at": "2026-11-25T02:00:00Z"}
    expect("rx.dispense", DISPENSE, "RX_RULE_VIOLATION", "whenHandedOver", prior=late)
    early = {**issued, "valid_from": "2026-11-26T00:00:00Z"}
    expect("rx.dispense", DISPENSE, "RX_RULE_VIOLATION", "whenHandedOver", prior=early)


def test_dispense_and_issue_share_a_subject() -> None:
    for issue, dispense in [
        ("rx-issue-amoxicillin.json", "rx-dispense-amoxicillin.json"),
        ("rx-issue-metformin-by-id.json", "rx-dispense-metformin-by-reference.json"),
    ]:
        assert adapt("rx.issue", load(issue)).subject == adapt("rx.dispense", load(dispense)).subject


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rx_id": ""}, "rx_id"),
        ({"reason": ""}, "reason"),
        ({"revoked_at": "2026-11-25 09:58:03"}, "revoked_at"),
        ({"revoked_at": 1764035883}, "revoked_at"),
        ({"by": "me"}, "by"),
    ],
)
def test_revoke_rejections(change: dict[str, Any], field: str) -> None:
    expect("rx.revoke", {**REVOKE, **change}, "PAYLOAD_INVALID", field)


@pytest.mark.parametrize(
    "raw",
    [b"", b"[]", b"\xff", b'{"x": NaN}', b"{" * 5000 + b"}" * 5000, b'{"n": 1e400}'],
)
def test_not_json_object(raw: bytes) -> None:
    for kind in ("rx.issue", "rx.dispense", "rx.revoke"):
        expect(kind, raw, "PAYLOAD_INVALID")


@pytest.mark.parametrize(
    "raw", [b'{"a": 1, "a": 2}', b'{"dispenseRequest": {"quantity": {"value": 1, "value": 999}}}']
)
def test_duplicate_keys_refused_at_any_depth(raw: bytes) -> None:
    for kind in ("rx.issue", "rx.dispense", "rx.revoke"):
        with pytest.raises(DuplicateKey) as e:
            adapt(kind, raw)
        assert e.value.code == "JSON_DUPLICATE_KEY" and e.value.details["key"] in ("a", "value")


def test_mapping_with_non_json_values() -> None:
    expect("rx.revoke", {**REVOKE, "revoked_at": datetime(2026, 1, 1, tzinfo=UTC)}, "PAYLOAD_INVALID", "$")
    expect("rx.revoke", {**REVOKE, "n": 2**60}, "PAYLOAD_INVALID", "$")


MORPHINE = {"system": "http://www.whocc.no/atc", "code": "N02AA01", "display": "吗啡"}


@pytest.mark.parametrize(
    ("name", "change", "field"),
    [
        ("other-drug", lambda d: d.update(medicationCodeableConcept={"coding": [MORPHINE]}), "medication[x]"),
        (
            "other-drug-same-text",  # the codes decide when both sides are coded
            lambda d: d.update(medicationCodeableConcept={"coding": [MORPHINE], "text": "阿莫西林胶囊"}),
            "medication[x]",
        ),
        ("other-text", lambda d: d.update(medicationCodeableConcept={"text": "吗啡片"}), "medication[x]"),
        ("other-unit", lambda d: d["quantity"].update(unit="kg"), "quantity.unit"),
        ("no-unit", lambda d: d["quantity"].pop("unit"), "quantity.unit"),
        ("more", lambda d: d["quantity"].update(value=3), "quantity.value"),
    ],
)
def test_dispense_must_match_its_prescription(
    name: str, change: Callable[[dict[str, Any]], object], field: str
) -> None:
    issued = dict(adapt("rx.issue", ISSUE).facts)
    expect("rx.dispense", mutate(DISPENSE, change), "RX_DISPENSE_MISMATCH", field, prior=issued)


def test_dispense_matches_by_any_shared_code_or_the_text() -> None:
    issued = dict(adapt("rx.issue", ISSUE).facts)
    atc = {"system": "http://www.whocc.no/atc", "code": "J01CA04"}  # a generic substitute: same ATC code
    for medication in ({"coding": [atc]}, {"text": "阿莫西林胶囊"}):
        dispense = mutate(DISPENSE, lambda d, m=medication: d.update(medicationCodeableConcept=m))
        assert adapt("rx.dispense", dispense, AdaptContext(prior=issued)).facts["quantity"] == 2
    # Facts stored before medication_ids existed: the first coding they kept still decides.
    legacy = {k: v for k, v in issued.items() if k != "medication_ids"}
    assert adapt("rx.dispense", DISPENSE, AdaptContext(prior=legacy)).facts["rx_id"]
    other = mutate(DISPENSE, lambda d: d.update(medicationCodeableConcept={"coding": [MORPHINE]}))
    expect("rx.dispense", other, "RX_DISPENSE_MISMATCH", "medication[x]", prior=legacy)
    metformin = dict(adapt("rx.issue", load("rx-issue-metformin-by-id.json")).facts)
    by_text = load("rx-dispense-metformin-by-reference.json")
    assert adapt("rx.dispense", by_text, AdaptContext(prior=metformin)).facts["unit"] == "片"
