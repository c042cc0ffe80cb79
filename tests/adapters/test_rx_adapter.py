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
from provenance.crypto.sm3 import sm3_hex
from provenance.errors import DuplicateKey
from tests.kit.adapter_samples import ASSETS, PSEUDONYM_KEY

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
    (
        "hours-without-zone",
        lambda d: d.update(authoredOn="2026-11-25T09:42:10"),
        "FHIR_INVALID",
        "authoredOn",
    ),
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
        "dispenseRequest.validityPeriod.end",
    ),
    ("draft", lambda d: d.update(status="draft"), "RX_RULE_VIOLATION", "status"),
    ("plan", lambda d: d.update(intent="plan"), "RX_RULE_VIOLATION", "intent"),
    (
        "zero-quantity",
        lambda d: d["dispenseRequest"]["quantity"].update(value=0),
        "RX_QUANTITY_INVALID",
        "dispenseRequest.quantity.value",
    ),
    (
        "validity-reversed",
        lambda d: d["dispenseRequest"]["validityPeriod"].update(end="2026-11-24T00:00:00+08:00"),
        "FHIR_INVALID",  # per-1: a Period's start is not after its end
        "dispenseRequest.validityPeriod",
    ),
    (
        "validity-empty",
        lambda d: d["dispenseRequest"]["validityPeriod"].update(end="2026-11-25T09:42:10+08:00"),
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
    """Facts are kept in clear beside the encrypted payload and shown to a prescription's readers: the
    patient reference is a keyed digest, never a plain SM3 that a guess ("Patient/bob") would confirm."""
    facts = adapt("rx.issue", ISSUE, AdaptContext(pseudonym_key=PSEUDONYM_KEY)).facts
    text = json.dumps(facts)
    reference = ISSUE["subject"]["reference"]
    assert "PID-0087654321" not in text and sm3_hex(reference.encode()) not in text
    assert len(facts["patient_ref_hmac"]) == 64 and "patient_ref_digest" not in facts
    # The prescriber too (Practitioner/D1024): keyed, under its own label (not the patient's digest).
    prescriber = ISSUE["requester"]["reference"]
    assert prescriber.split("/")[1] not in text and "requester" not in facts
    assert facts["requester_ref_hmac"] not in (facts["patient_ref_hmac"], sm3_hex(prescriber.encode()))
    other = adapt("rx.issue", ISSUE, AdaptContext(pseudonym_key=bytes(32))).facts
    assert other["patient_ref_hmac"] != facts["patient_ref_hmac"]  # another deployment, another digest
    assert "patient_ref_hmac" not in adapt("rx.issue", ISSUE).facts  # no key (a client): no such fact
    assert facts["expires_at"] == "2026-11-28T15:59:59Z"


DISPENSE_REJECTIONS: list[tuple[str, Callable[[dict[str, Any]], object], str, str]] = [
    ("wrong-resource", lambda d: d.update(resourceType="MedicationRequest"), "FHIR_INVALID", "resourceType"),
    ("in-progress", lambda d: d.update(status="in-progress"), "RX_RULE_VIOLATION", "status"),
    ("zero-quantity", lambda d: d["quantity"].update(value=-1), "RX_QUANTITY_INVALID", "quantity.value"),
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


REJECTIONS = [("rx.issue", ISSUE, *r) for r in ISSUE_REJECTIONS] + [
    ("rx.dispense", DISPENSE, *r) for r in DISPENSE_REJECTIONS
]


@pytest.mark.parametrize(
    ("kind", "valid", "name", "change", "code", "field"),
    REJECTIONS,
    ids=[f"{kind.split('.')[1]}-{r[0]}" for kind, _, *r in REJECTIONS],
)
def test_rejections(
    kind: str,
    valid: dict[str, Any],
    name: str,
    change: Callable[[dict[str, Any]], object],
    code: str,
    field: str,
) -> None:
    """A valid issue or dispense changed one way is refused with its code, naming the field."""
    expect(kind, mutate(valid, change), code, field)


def test_dispense_against_its_issue() -> None:
    key = PSEUDONYM_KEY
    issued = dict(adapt("rx.issue", ISSUE, AdaptContext(pseudonym_key=key)).facts)
    ok = adapt("rx.dispense", DISPENSE, AdaptContext(prior=issued, pseudonym_key=key))
    assert ok.subject == "rx:RX20261125000123"
    expect(
        "rx.dispense",
        DISPENSE,
        "RX_DISPENSE_MISMATCH",
        "quantity.value",
        prior={**issued, "quantity": 1},
        pseudonym_key=key,
    )
    expect(
        "rx.dispense",
        DISPENSE,
        "RX_DISPENSE_MISMATCH",
        "rx_id",
        prior={**issued, "rx_id": "RX9"},
        pseudonym_key=key,
    )
    other = mutate(DISPENSE, lambda d: d["subject"].update(reference="Patient/bob"))
    e = expect(
        "rx.dispense", other, "RX_DISPENSE_MISMATCH", "subject.reference", prior=issued, pseudonym_key=key
    )
    assert e.details == {"field": "subject.reference"}  # never the prescribed value
    # Facts stored before the keyed digest hold a plain SM3: still compared, never stored again.
    plain = sm3_hex(ISSUE["subject"]["reference"].encode())
    legacy = {k: v for k, v in issued.items() if k != "patient_ref_hmac"} | {"patient_ref_digest": plain}
    again = adapt("rx.dispense", DISPENSE, AdaptContext(prior=legacy, pseudonym_key=key)).facts
    assert plain not in json.dumps(again)
    expect("rx.dispense", other, "RX_DISPENSE_MISMATCH", "subject.reference", prior=legacy, pseudonym_key=key)
    late = {**issued, "expires_at": "2026-11-25T02:00:00Z"}
    expect("rx.dispense", DISPENSE, "RX_RULE_VIOLATION", "whenHandedOver", prior=late, pseudonym_key=key)
    early = {**issued, "valid_from": "2026-11-26T00:00:00Z"}
    expect("rx.dispense", DISPENSE, "RX_RULE_VIOLATION", "whenHandedOver", prior=early, pseudonym_key=key)


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


YB = "http://www.nhsa.gov.cn/fhir/CodeSystem/yb-drug"
ATC = {"system": "http://www.whocc.no/atc", "code": "J01CA04"}


def _with_medication(doc: dict[str, Any], medication: dict[str, Any]) -> dict[str, Any]:
    return mutate(doc, lambda d: d.update(medicationCodeableConcept=medication))


def test_dispense_medication_matches_in_normal_form() -> None:
    """#23 finding 7: a coded medication was accepted against a text-only prescription (morphine's code
    beside the text "amoxicillin"). Either side coded: both coded, the same code in every system both
    carry; neither coded: the same text, normalised."""
    issued = dict(adapt("rx.issue", ISSUE).facts)  # coded: yb-drug and ATC
    # Fewer systems, the same codes: accepted.
    for medication in ({"coding": [ATC]}, {"coding": [{"system": YB, "code": "XJ01CAA040A001010100139"}]}):
        assert adapt("rx.dispense", _with_medication(DISPENSE, medication), AdaptContext(prior=issued))
    refused = [
        {"text": "阿莫西林胶囊"},  # text only against a coded prescription
        {"coding": [{"system": YB, "code": "XJ01CAA040A001010100999"}, ATC]},  # another code in a system
        {"coding": [{"system": "urn:other", "code": "J01CA04"}]},  # no system in common
    ]
    for medication in refused:
        dispense = _with_medication(DISPENSE, medication)
        e = expect("rx.dispense", dispense, "RX_DISPENSE_MISMATCH", "medication[x]", prior=issued)
        assert e.details == {"field": "medication[x]"}  # never the prescribed medication
    # A text-only prescription: the attack's coded morphine with the text "amoxicillin" is refused, the
    # same text in another case or spacing (NFKC, full-width letters) is accepted.
    text_only = _with_medication(ISSUE, {"text": "Amoxicillin  0.25g"})
    issued_text = dict(adapt("rx.issue", text_only).facts)
    attack = _with_medication(DISPENSE, {"coding": [MORPHINE], "text": "Amoxicillin 0.25g"})
    expect("rx.dispense", attack, "RX_DISPENSE_MISMATCH", "medication[x]", prior=issued_text)
    expect("rx.dispense", _with_medication(DISPENSE, {"text": "amoxicillin"}), "RX_DISPENSE_MISMATCH",
           "medication[x]", prior=issued_text)  # fmt: skip
    same = _with_medication(DISPENSE, {"text": " ＡＭＯＸＩＣＩＬＬＩＮ 0.25g "})
    assert adapt("rx.dispense", same, AdaptContext(prior=issued_text)).facts["quantity"] == 2
    # Facts stored before medication_ids existed: the first coding they kept still decides.
    legacy = {k: v for k, v in issued.items() if k != "medication_ids"}
    assert adapt("rx.dispense", DISPENSE, AdaptContext(prior=legacy)).facts["rx_id"]
    other = _with_medication(DISPENSE, {"coding": [MORPHINE]})
    expect("rx.dispense", other, "RX_DISPENSE_MISMATCH", "medication[x]", prior=legacy)
    metformin = dict(adapt("rx.issue", load("rx-issue-metformin-by-id.json")).facts)
    by_reference = load("rx-dispense-metformin-by-reference.json")
    assert adapt("rx.dispense", by_reference, AdaptContext(prior=metformin)).facts["unit"] == "片"


# A contained Medication's description of another drug (the sixth attack's finding 2).
MORPHINE_INJECTION: dict[str, Any] = {
    "ingredient": [
        {
            "itemCodeableConcept": {"text": "盐酸吗啡"},
            "strength": {"numerator": {"value": 10, "unit": "mg"}, "denominator": {"value": 1, "unit": "ml"}},
        }
    ],
    "form": {"text": "注射液"},
}


def test_dispense_says_no_more_about_the_drug_than_its_prescription() -> None:
    """Sixth attack, finding 2 (kit6 coding.py): the amoxicillin code beside RxNorm's morphine, under the
    words "盐酸吗啡注射液", or in a contained Medication of morphine injection, matched. A dispense carries no
    code system, words, form, ingredient or amount the prescription does not (docs/design/rx-chain.md)."""
    issued = dict(adapt("rx.issue", ISSUE).facts)  # yb-drug and ATC, text 阿莫西林胶囊
    amoxicillin = {"system": YB, "code": "XJ01CAA040A001010100139"}
    rxnorm = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7052", "display": "morphine"}
    refused = [
        {"coding": [{**amoxicillin, "display": "阿莫西林胶囊 0.25g×24粒"}, rxnorm], "text": "吗啡注射液"},
        {"coding": [amoxicillin, rxnorm]},  # the extra system alone
        {"coding": [{**amoxicillin, "display": "盐酸吗啡注射液 10mg"}], "text": "盐酸吗啡注射液"},
        {"coding": [amoxicillin], "text": "吗啡"},
    ]
    for medication in refused:
        e = expect(
            "rx.dispense", _with_medication(DISPENSE, medication), "RX_DISPENSE_MISMATCH", prior=issued
        )
        assert e.details == {"field": "medication[x]"}
    assert "rxnorm" in expect("rx.dispense", _with_medication(DISPENSE, refused[1]), "RX_DISPENSE_MISMATCH",
                              prior=issued).message  # fmt: skip

    def contained(med: dict[str, Any]) -> Callable[[dict[str, Any]], object]:
        def change(d: dict[str, Any]) -> None:
            d.pop("medicationCodeableConcept")
            d["contained"] = [
                {"resourceType": "Medication", "id": "m1", "code": {"coding": [amoxicillin]}, **med}
            ]
            d["medicationReference"] = {"reference": "#m1"}

        return change

    for med in (MORPHINE_INJECTION, {"form": {"text": "注射液"}}):
        expect(
            "rx.dispense",
            mutate(DISPENSE, contained(med)),
            "RX_DISPENSE_MISMATCH",
            "medication[x]",
            prior=issued,
        )
    # The same form in the prescription's own contained Medication: stated identically, accepted.
    capsule = {"form": {"text": "胶囊"}}
    issued_capsule = dict(adapt("rx.issue", mutate(ISSUE, contained(capsule))).facts)
    assert issued_capsule["medication_ids"]["details"] == capsule
    assert adapt("rx.dispense", mutate(DISPENSE, contained(capsule)), AdaptContext(prior=issued_capsule))
    expect("rx.dispense", mutate(DISPENSE, contained({"form": {"text": "注射液"}})), "RX_DISPENSE_MISMATCH",
           "medication[x]", prior=issued_capsule)  # fmt: skip
    # Fewer words and codes, a batch of the pharmacy's stock: accepted.
    stock = {"batch": {"lotNumber": "B7"}, "manufacturer": {"display": "某药厂"}}
    for dispense in (
        _with_medication(DISPENSE, {"coding": [amoxicillin]}),
        _with_medication(DISPENSE, {"coding": [amoxicillin], "text": "阿莫西林胶囊 0.25G×24粒"}),
        mutate(DISPENSE, contained(stock)),
    ):
        assert adapt("rx.dispense", dispense, AdaptContext(prior=issued)).facts["quantity"] == 2
    # Facts kept before the displays were: codes only, as before.
    legacy_ids = {k: v for k, v in issued["medication_ids"].items() if k != "displays"}
    legacy = {**issued, "medication_ids": legacy_ids}
    words = _with_medication(DISPENSE, refused[2])
    assert adapt("rx.dispense", words, AdaptContext(prior=legacy)).facts["quantity"] == 2


def test_a_dispense_names_no_drug_beside_the_prescribed_one_by_any_element() -> None:
    """Seventh attack, finding 3 (kit7 rx1.py rx2.py rx8.py): a system-less coding, a coding version, a
    medicationReference display or identifier named another drug beside the prescribed code."""
    issued = dict(adapt("rx.issue", ISSUE).facts)
    amoxicillin = {"system": YB, "code": "XJ01CAA040A001010100139"}

    def referenced(**ref: Any) -> Callable[[dict[str, Any]], object]:
        def change(d: dict[str, Any]) -> None:
            d.pop("medicationCodeableConcept")
            d["contained"] = [{"resourceType": "Medication", "id": "m1", "code": {"coding": [amoxicillin]}}]
            d["medicationReference"] = {"reference": "#m1", **ref}

        return change

    for dispense in (
        _with_medication(DISPENSE, {"coding": [amoxicillin, {"code": "7052"}]}),
        _with_medication(DISPENSE, {"coding": [{**amoxicillin, "version": "morphine-2026"}]}),
        mutate(DISPENSE, referenced(display="盐酸吗啡注射液 10mg")),
        mutate(DISPENSE, referenced(identifier={"system": "urn:rxnorm", "value": "7052"})),
    ):
        expect("rx.dispense", dispense, "RX_DISPENSE_MISMATCH", "medication[x]", prior=issued)
    assert "no code system" in expect(
        "rx.dispense", _with_medication(DISPENSE, {"coding": [amoxicillin, {"code": "7052"}]}),
        "RX_DISPENSE_MISMATCH", prior=issued,
    ).message  # fmt: skip
    # The prescription's own words as the reference's display: accepted.
    ok = mutate(DISPENSE, referenced(display="阿莫西林胶囊"))
    assert adapt("rx.dispense", ok, AdaptContext(prior=issued)).facts["quantity"] == 2


V3_SUBSTITUTION = "http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution"
_F8_REFUSED: list[tuple[str, Callable[[dict[str, Any]], object], str, str]] = [
    (
        "statusReason on a completed dispense",
        lambda d: d.update(statusReasonCodeableConcept={"text": "缺货，改由解放碑大药房调配"}),
        "RX_DISPENSE_MISMATCH",
        "statusReasonCodeableConcept",
    ),
    (
        "statusReason by reference",
        lambda d: d.update(statusReasonReference={"reference": "DetectedIssue/1"}),
        "RX_DISPENSE_MISMATCH",
        "statusReasonReference",
    ),
    (
        "substitution type TE, not substituted",
        lambda d: d.update(
            substitution={
                "wasSubstituted": False,
                "type": {"coding": [{"system": V3_SUBSTITUTION, "code": "TE"}]},
            }
        ),
        "RX_DISPENSE_MISMATCH",
        "substitution.type",
    ),
    (
        "substitution type N with a text",
        lambda d: d.update(
            substitution={
                "wasSubstituted": False,
                "type": {
                    "coding": [{"system": V3_SUBSTITUTION, "code": "N"}],
                    "text": "替换为盐酸吗啡注射液",
                },
            }
        ),
        "RX_DISPENSE_MISMATCH",
        "substitution.type",
    ),
    (
        "substitution reason, not substituted",
        lambda d: d.update(substitution={"wasSubstituted": False, "reason": [{"text": "缺货替换"}]}),
        "RX_DISPENSE_MISMATCH",
        "substitution.reason",
    ),
    (
        "substitution responsible party, not substituted",
        lambda d: d.update(
            substitution={"wasSubstituted": False, "responsibleParty": [{"reference": "Practitioner/X"}]}
        ),
        "RX_DISPENSE_MISMATCH",
        "substitution.responsibleParty",
    ),
    (
        "daysSupply negative",
        lambda d: d["daysSupply"].update(value=-5),
        "RX_QUANTITY_INVALID",
        "daysSupply.value",
    ),
    ("daysSupply zero", lambda d: d["daysSupply"].update(value=0), "RX_QUANTITY_INVALID", "daysSupply.value"),
    (
        "daysSupply in weeks",
        lambda d: d["daysSupply"].update(unit="周", code="wk"),
        "RX_UNIT_INVALID",
        "daysSupply.code",
    ),
    (
        "daysSupply text in boxes",
        lambda d: d.update(daysSupply={"value": 7, "unit": "盒"}),
        "RX_UNIT_INVALID",
        "daysSupply.unit",
    ),
    (
        "daysSupply without unit",
        lambda d: d.update(daysSupply={"value": 7}),
        "RX_UNIT_INVALID",
        "daysSupply.unit",
    ),
    (
        "daysSupply code without system (qty-3)",
        lambda d: d.update(daysSupply={"value": 7, "code": "d"}),
        "FHIR_INVALID",
        "daysSupply.system",
    ),
    (
        "receiver another patient",
        lambda d: d.update(receiver=[{"reference": "Patient/PID-9999"}]),
        "RX_DISPENSE_MISMATCH",
        "receiver.0.reference",
    ),
    (
        "receiver a practitioner",
        lambda d: d.update(receiver=[{"reference": "Practitioner/PH-PHARM-031"}]),
        "RX_DISPENSE_MISMATCH",
        "receiver.0.reference",
    ),
    (
        "receiver by display only",
        lambda d: d.update(receiver=[{"display": "李四"}]),
        "RX_DISPENSE_MISMATCH",
        "receiver.0.reference",
    ),
    (
        "location by absolute URL",
        lambda d: d.update(location={"reference": "http://example.org/fhir/Location/jfb"}),
        "RX_DISPENSE_MISMATCH",
        "location",
    ),
    (
        "location by identifier",
        lambda d: d.update(location={"reference": "Location/L1", "identifier": {"value": "pharmacy-1"}}),
        "RX_DISPENSE_MISMATCH",
        "location",
    ),
]


@pytest.mark.parametrize(("name", "change", "code", "field"), _F8_REFUSED, ids=[r[0] for r in _F8_REFUSED])
def test_a_completed_dispense_states_nothing_the_record_contradicts(
    name: str, change: Callable[[dict[str, Any]], object], code: str, field: str
) -> None:
    """Eighth attack on F7-5's residuals: a completed dispense stating why it was not done, a substitution
    it did not make, a supply in negative days or in boxes, another person or a place anywhere as receiver
    or location (the organisation displays: ``tests/security/test_attack8_rx.py``)."""
    issued = dict(adapt("rx.issue", ISSUE, AdaptContext(pseudonym_key=PSEUDONYM_KEY)).facts)
    expect("rx.dispense", mutate(DISPENSE, change), code, field, prior=issued, pseudonym_key=PSEUDONYM_KEY)


def test_a_receiver_is_the_prescriptions_patient() -> None:
    """A receiver is the subject by reference, and what it says beside it is the prescription's (keyed
    digests, as the subject's); an unsubstituted dispense may say so with type N, and daysSupply in days."""
    key = PSEUDONYM_KEY
    issued = dict(adapt("rx.issue", ISSUE, AdaptContext(pseudonym_key=key)).facts)
    patient = DISPENSE["subject"]["reference"]
    other = mutate(DISPENSE, lambda d: d.update(receiver=[{"reference": patient, "display": "李四"}]))
    expect("rx.dispense", other, "RX_DISPENSE_MISMATCH", "receiver.0", prior=issued, pseudonym_key=key)

    def fine(d: dict[str, Any]) -> None:
        d["receiver"] = [{"reference": patient, "display": "张三"}]  # the prescription's display
        d["location"] = {"reference": "Location/counter-2"}
        d["substitution"] = {
            "wasSubstituted": False,
            "type": {"coding": [{"system": V3_SUBSTITUTION, "code": "N", "display": "none"}]},
        }
        d["daysSupply"] = {"value": 3.5, "unit": "Days"}

    ok = adapt("rx.dispense", mutate(DISPENSE, fine), AdaptContext(prior=issued, pseudonym_key=key))
    assert ok.facts["quantity"] == 2 and ok.detail["org_displays"] == {}
    shown = mutate(
        DISPENSE,
        lambda d: d.update(
            performer=[{"actor": {"reference": "Organization/pharmacy-2", "display": "解放碑大药房"}}],
            location={"reference": "Location/counter-2", "display": "观音桥药店"},
        ),
    )
    # Who and where it displays goes to the workflow (never stored), which holds it to OrgRegistry.
    done = adapt("rx.dispense", shown)
    assert {k: v for k, v in done.detail.items() if k != "texts"} == {
        "org_displays": {"performer.0.actor.display": "解放碑大药房", "location.display": "观音桥药店"},
        "practitioners": {},
        "places": {"location.reference": "counter-2"},
    }
    assert done.detail["texts"]["location.display"] == "观音桥药店"  # every text, for the workflow
    assert "org_displays" not in done.facts
    assert adapt("rx.dispense", DISPENSE).detail["practitioners"] == {
        "performer.0.actor": ["PH-PHARM-031", "王药师"]
    }


@pytest.mark.parametrize(
    ("kind", "doc", "path"),
    [("rx.issue", ISSUE, ("dispenseRequest", "quantity")), ("rx.dispense", DISPENSE, ("quantity",))],
)
def test_quantities_carry_no_comparator(kind: str, doc: dict[str, Any], path: tuple[str, ...]) -> None:
    """Sixth attack, finding 2 (kit6 misc.py): "> 2 boxes" dispensed, "< 2 boxes" prescribed (R4 types both
    as SimpleQuantity: no comparator)."""

    def change(d: dict[str, Any]) -> None:
        q = d
        for step in path:
            q = q[step]
        q["comparator"] = ">" if kind == "rx.dispense" else "<"

    prior = dict(adapt("rx.issue", ISSUE).facts) if kind == "rx.dispense" else None
    expect(kind, mutate(doc, change), "RX_QUANTITY_INVALID", ".".join((*path, "comparator")), prior=prior)


@pytest.mark.parametrize("value", [0, -1, 1e300, 10**6 + 1, 1e-300, 1.5e-7, 0.0001, 123456789.123456789, "2"])
def test_quantities_are_bounded(value: object) -> None:
    """#23 finding 8: quantities of 1e300 or 1e-300 were accepted. 0 < value ≤ 10^6, at most 3 decimals."""
    e = expect("rx.issue", mutate(ISSUE, lambda d: d["dispenseRequest"]["quantity"].update(value=value)),
               "RX_QUANTITY_INVALID", "dispenseRequest.quantity.value")  # fmt: skip
    assert e.details == {"field": "dispenseRequest.quantity.value"}
    expect("rx.dispense", mutate(DISPENSE, lambda d: d["quantity"].update(value=value)),
           "RX_QUANTITY_INVALID", "quantity.value")  # fmt: skip


def test_quantity_edges_accepted() -> None:
    tablets = {"unit": "片", "system": "http://unitsofmeasure.org", "code": "{tbl}"}
    for value in (10**6, 0.001, 2.5, 1):
        issue = mutate(ISSUE, lambda d, v=value: d["dispenseRequest"]["quantity"].update(tablets, value=v))
        assert adapt("rx.issue", issue).facts["quantity"] == value
    # In packages at most what one dispense lists codes of (F5-13: 150 boxes could never be dispensed).
    assert adapt("rx.issue", mutate(ISSUE, lambda d: d["dispenseRequest"]["quantity"].update(value=100)))
    expect(
        "rx.issue",
        mutate(ISSUE, lambda d: d["dispenseRequest"]["quantity"].update(value=101)),
        "RX_QUANTITY_INVALID",
        "dispenseRequest.quantity.value",
    )


def test_declared_dates_are_not_in_the_future() -> None:
    """#23 finding 6: a hand-over dated in the validity period of a prescription valid next year was
    accepted today. Every date a record declares as past lies before now plus the skew (DATE_IN_FUTURE),
    checked before the validity rule reads it."""
    now = datetime(2026, 11, 25, 1, tzinfo=UTC)  # before every date of the golden resources
    expect("rx.issue", ISSUE, "DATE_IN_FUTURE", "authoredOn", now=now)
    issued = dict(adapt("rx.issue", ISSUE).facts)
    expect("rx.dispense", DISPENSE, "DATE_IN_FUTURE", "whenHandedOver", now=now, prior=issued)
    prepared_late = mutate(DISPENSE, lambda d: d.update(whenPrepared="2027-01-01T00:00:00Z"))
    handed = datetime(2026, 11, 25, 3, tzinfo=UTC)
    expect("rx.dispense", prepared_late, "DATE_IN_FUTURE", "whenPrepared", now=handed)
    expect("rx.revoke", REVOKE, "DATE_IN_FUTURE", "revoked_at", now=now)
    assert adapt("rx.dispense", DISPENSE, AdaptContext(now=handed, prior=issued)).facts["rx_id"]
