"""The tenth outside attack's findings on the dispense rules (kit10 rx1.py .. rx7.py, on main at cbc607b),
replayed with the attacker's inputs through the real HTTP API (single records and /api/v1/records:bulk),
signed with real SM2 keys, on the gateway suite's network: pharmacy-2 (观音桥药店) naming another
organisation through invisible characters inside its name, ids written without their separators,
extensions and element ids outside the elements the ninth round held, a function coding's display, a
prescription's reference typed Patient, another organisation's id inside a display, and names in
traditional characters or split across two practitioners."""

from __future__ import annotations

from typing import Any

from adapters._common import canonical_json
from adapters.rx.mentions import MAX_ITEMS, MAX_TEXT
from provenance.crypto.sm3 import sm3_hex
from tests.adapters.rx.test_dispense_names import FINAL, ID_FORMS, INVISIBLE, NAME, OTHER_SCRIPTS
from tests.adapters.rx.test_dispense_names import NOTE as ABSENT
from tests.adapters.rx.test_dispense_texts import NAMED, TRACED
from tests.kit.gateway import Harness, OrgClient, kit_code, refused
from tests.security.test_attack7_rx import _dispense, _issued, _registry_name, _send
from tests.security.test_attack9_rx import OURS, _by, _refuses


def _practitioner(ref: str, display: str | None = None) -> dict[str, Any]:
    actor = {"reference": f"Practitioner/{ref}"}
    return _by(actor if display is None else {**actor, "display": display})


def _medication(rx: str, **changes: Any) -> dict[str, Any]:
    """The dispense's first medication coding with ``changes``."""
    obj = _dispense(rx)
    obj["medicationCodeableConcept"]["coding"][0].update(changes)
    return {"medicationCodeableConcept": obj["medicationCodeableConcept"]}


def _prescription(rx: str, **changes: Any) -> dict[str, Any]:
    obj = _dispense(rx)
    obj["authorizingPrescription"][0].update(changes)
    return {"authorizingPrescription": obj["authorizingPrescription"]}


def _function(**coding: Any) -> dict[str, Any]:
    return _by({"reference": "Practitioner/PH-9"}, function={"coding": [{**FINAL, **coding}]})


def _bulk(h: Harness, pharmacy: OrgClient, dispenses: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """Each dispense (of its own prescription) in one /api/v1/records:bulk request: (status, code, field)."""
    items = []
    for obj in dispenses:
        rx = obj["authorizingPrescription"][0]["reference"].partition("/")[2]
        body = pharmacy.body(
            "rx.dispense", obj, subject=f"rx:{rx}", payload_digest=sm3_hex(canonical_json(obj))
        )
        items.append({**body, "access_code": str(kit_code(rx))})
    r = h.http.post("/api/v1/records:bulk", json={"records": items}, headers=pharmacy.headers)
    assert r.status_code == 200, r.text
    return [
        (
            it["status"],
            (it["error"] or {}).get("code"),
            ((it["error"] or {}).get("details") or {}).get("field"),
        )
        for it in r.json()["items"]
    ]


def _recorded(h: Harness, obj: dict[str, Any], rx: str) -> None:
    r = _send(h.client("pharmacy-2"), obj, rx)
    assert r.status_code == 202, r.text
    assert h.wait_chain(r.json()["id"])["chain_status"] == "confirmed"


def test_f10_1_no_invisible_character_inside_a_display(harness: Harness) -> None:
    """Finding 1: a practitioner's or the location's display carrying a Hangul filler, a braille blank, a
    combining or variation mark is refused naming the display, single and in bulk."""
    h = harness
    rx = _issued(h)
    assert _registry_name(h, "pharmacy-1") == NAME
    cases = [
        (f"U+{ord(c):04X}", _practitioner("PH-77", NAME[0] + c + NAME[1:]), "performer.0.actor.display")
        for c in INVISIBLE
    ]
    cases.append(
        (
            "location displayed with a Hangul filler",
            {"location": {"reference": "Location/L1", "display": "解\u3164放碑大药房"}},
            "location.display",
        )
    )
    _refuses(h, rx, cases)
    pharmacy = h.client("pharmacy-2")
    bulk = [
        _dispense(_issued(h), **_practitioner("PH-8", "解\ufe0f放碑大药房 执业药师 王敏")),
        _dispense(_issued(h), **_practitioner("PH-8", "解\u3164放碑大药房")),
    ]
    assert _bulk(h, pharmacy, bulk) == [
        ("rejected", "RX_DISPENSE_MISMATCH", "performer.0.actor.display"),
        ("rejected", "RX_DISPENSE_MISMATCH", "performer.0.actor.display"),
    ]


def test_f10_2_ids_written_without_separators_are_the_organisations(harness: Harness) -> None:
    """Finding 2: Practitioner/pharmacy1, hospital1, logoperator, dataowner are those organisations;
    pharmacist1 is pharmacist-1, displayed otherwise than registered; Location/pharmacy1 and hospital1 are
    other organisations' places: single and in bulk."""
    h = harness
    rx = _issued(h)
    _refuses(
        h,
        rx,
        [
            *[
                (f"Practitioner/{ref}", _practitioner(ref), "performer.0.actor.reference")
                for ref in ("pharmacy1", "hospital1", "logoperator", "dataowner")
            ],
            (
                "pharmacist1 displayed 执业药师 王敏",
                _by(OURS, {"reference": "Practitioner/pharmacist1", "display": "执业药师 王敏"}),
                "performer.1.actor.display",
            ),
            ("Location/pharmacy1", {"location": {"reference": "Location/pharmacy1"}}, "location.reference"),
            ("Location/hospital1", {"location": {"reference": "Location/hospital1"}}, "location.reference"),
        ],
    )
    bulk = [
        _dispense(_issued(h), **_practitioner("pharmacy1")),
        _dispense(_issued(h), location={"reference": "Location/pharmacy1"}),
    ]
    assert _bulk(h, h.client("pharmacy-2"), bulk) == [
        ("rejected", "RX_DISPENSE_MISMATCH", "performer.0.actor.reference"),
        ("rejected", "RX_DISPENSE_MISMATCH", "location.reference"),
    ]


def test_f10_3_the_medication_prescription_and_function_carry_no_extension(harness: Harness) -> None:
    """Finding 3: extensions and ``_x`` companions on the medication and its codings, the prescription's
    reference, a performer function's codings: refused naming the element, single and in bulk."""
    h = harness
    rx = _issued(h)
    concept = _dispense(rx)["medicationCodeableConcept"]
    _refuses(
        h,
        rx,
        [
            ("coding extension", _medication(rx, **ABSENT), "medicationCodeableConcept.coding.0.extension"),
            ("coding _code", _medication(rx, _code=ABSENT), "medicationCodeableConcept.coding.0._code"),
            (
                "coding _display",
                _medication(rx, _display=ABSENT),
                "medicationCodeableConcept.coding.0._display",
            ),
            (
                "medication extension",
                {"medicationCodeableConcept": {**concept, **ABSENT}},
                "medicationCodeableConcept.extension",
            ),
            (
                "medication _text",
                {"medicationCodeableConcept": {**concept, "_text": ABSENT}},
                "medicationCodeableConcept._text",
            ),
            ("prescription extension", _prescription(rx, **ABSENT), "authorizingPrescription.0.extension"),
            (
                "prescription _reference",
                _prescription(rx, _reference=ABSENT),
                "authorizingPrescription.0._reference",
            ),
            ("function coding extension", _function(**ABSENT), "performer.0.function.coding.0.extension"),
            ("function coding _code", _function(_code=ABSENT), "performer.0.function.coding.0._code"),
            ("function coding _system", _function(_system=ABSENT), "performer.0.function.coding.0._system"),
        ],
    )
    bulk = [_dispense(_issued(h), **_medication(rx, _code=ABSENT))]
    assert _bulk(h, h.client("pharmacy-2"), bulk) == [
        ("rejected", "RX_DISPENSE_MISMATCH", "medicationCodeableConcept.coding.0._code")
    ]


def test_f10_4_names_ids_and_types_in_other_forms(harness: Harness) -> None:
    """Finding 4: a function coding displayed as another organisation, a prescription typed Patient,
    element ids on the performer, actor and location, another organisation's id in a display, its name in
    traditional characters or split across two practitioners: each refused naming the element; the
    signer's own pharmacist with R4's function display and typed references is recorded."""
    h = harness
    rx = _issued(h)
    _refuses(
        h,
        rx,
        [
            ("function displayed 解放碑大药房", _function(display=NAME), "performer.0.function"),
            (
                "prescription typed Patient",
                _prescription(rx, type="Patient"),
                "authorizingPrescription.0.type",
            ),
            (
                "performer element id",
                {"performer": [{"id": "pharmacy-1", "actor": {"reference": "Practitioner/PH-9"}}]},
                "performer.0.id",
            ),
            (
                "actor element id",
                _by({"id": "pharmacy-1", "reference": "Practitioner/PH-9"}),
                "performer.0.actor.id",
            ),
            (
                "location element id",
                {"location": {"id": "pharmacy-1", "reference": "Location/L1"}},
                "location.id",
            ),
            (
                "another's id in a display",
                _practitioner("PH-5", "pharmacy-1 药师"),
                "performer.0.actor.display",
            ),
            (
                "traditional 解放碑大藥房",
                _practitioner("PH-031", "解放碑大藥房 药师"),
                "performer.0.actor.display",
            ),
            (
                "traditional 山城第一人民醫院",
                _practitioner("PH-031", "山城第一人民醫院 藥師"),
                "performer.0.actor.display",
            ),
            (
                "a registered pharmacist's name in traditional characters",
                _practitioner("PH-5", "解放碑大藥房 執業藥師 王敏"),
                "performer.0.actor.display",
            ),
            (
                "split across two practitioners",
                _by(
                    {"reference": "Practitioner/PH-5", "display": "解放碑"},
                    {"reference": "Practitioner/PH-6", "display": "大药房 王敏"},
                ),
                "performer",
            ),
        ],
    )
    fine = _dispense(
        rx,
        performer=[
            {
                "actor": {**OURS, "type": "Organization"},
                "function": {"coding": [{**FINAL, "display": "Final Checker"}]},
            },
            {"actor": {"reference": "Practitioner/PH-031", "display": "观音桥药店 执业药师 刘洋"}},
            {"actor": {"reference": "Practitioner/PH-032", "display": "王 药师"}},
        ],
        **_prescription(rx, type="MedicationRequest"),
    )
    _recorded(h, fine, rx)


def test_f10_a_refused_display_answers_its_character(harness: Harness) -> None:
    """The refusal names the character it found (``details.character``), so a pharmacy can fix its data."""
    h = harness
    rx = _issued(h)
    r = _send(h.client("pharmacy-2"), _dispense(rx, **_practitioner("PH-77", "王\u3164敏")), rx)
    assert refused(r, 400, "RX_DISPENSE_MISMATCH") == {
        "field": "performer.0.actor.display",
        "character": "U+3164",
    }


def test_f11_1_ids_in_other_forms_and_other_scripts(harness: Harness) -> None:
    """Eleventh attack, finding 1 (kit11 rx1.py, rx2.py): another organisation's id in full-width,
    mathematical or full-width-digit forms is found after NFKC; in Cyrillic, Arabic-Indic or Devanagari
    characters it is refused naming the character: single and in bulk."""
    h = harness
    rx = _issued(h)
    _refuses(h, rx, [(d, _practitioner("PH-5", d), "performer.0.actor.display") for d in ID_FORMS])
    pharmacy = h.client("pharmacy-2")
    for display, char in OTHER_SCRIPTS:
        r = _send(pharmacy, _dispense(rx, **_practitioner("PH-5", display)), rx)
        assert refused(r, 400, "RX_DISPENSE_MISMATCH") == {
            "field": "performer.0.actor.display",
            "character": char,
        }
    bulk = [_dispense(_issued(h), **_practitioner("PH-5", d)) for d in (ID_FORMS[0], OTHER_SCRIPTS[0][0])]
    assert _bulk(h, pharmacy, bulk) == [("rejected", "RX_DISPENSE_MISMATCH", "performer.0.actor.display")] * 2


def test_f11_3_displays_and_performers_are_bounded(harness: Harness) -> None:
    """Eleventh attack, finding 3 (kit11 big1.py): a 200,000-character display and 200 practitioners are
    refused naming the field; a 200-character display among 10 performers is recorded."""
    h = harness
    rx = _issued(h)
    _refuses(
        h,
        rx,
        [
            ("long display", _practitioner("PH-5", "王" * 200_000), "performer.0.actor.display"),
            (
                "200 practitioners",
                _by(*[{"reference": f"Practitioner/PH-{i}"} for i in range(200)]),
                "performer",
            ),
        ],
    )
    people = [{"reference": f"Practitioner/PH-{i}", "display": "王" * 200} for i in range(10)]
    _recorded(h, _dispense(rx, **_by(*people)), rx)


def test_f11_4_a_record_twice_in_one_bulk_request_is_one_record(harness: Harness) -> None:
    """Eleventh attack, finding 4 (kit11 race3.py): the same signed dispense twice in one bulk request is
    answered as a resubmission is (accepted, ``existing: true``, the same id), as a later bulk request
    answers it; the prescription is dispensed once."""
    h = harness
    pharmacy = h.client("pharmacy-2")
    rx = _issued(h)
    obj = _dispense(rx)
    body = pharmacy.body("rx.dispense", obj, subject=f"rx:{rx}", payload_digest=sm3_hex(canonical_json(obj)))
    item = {**body, "access_code": str(kit_code(rx))}
    answers = []
    for _ in range(2):
        r = h.http.post("/api/v1/records:bulk", json={"records": [item, item]}, headers=pharmacy.headers)
        assert r.status_code == 200, r.text
        answers.append(r.json()["items"])
    first, later = answers
    assert [(it["status"], it["existing"]) for it in first] == [("accepted", False), ("accepted", True)]
    assert [(it["status"], it["existing"]) for it in later] == [("accepted", True), ("accepted", True)]
    assert len({it["id"] for it in first + later}) == 1
    assert h.wait_chain(first[0]["id"])["chain_status"] == "confirmed"


def _made_by(rx: str, status: str = "active", **maker: Any) -> dict[str, Any]:
    """The dispense's medication as a contained Medication of ``status`` made by ``maker``."""
    concept = _dispense(rx)["medicationCodeableConcept"]
    res = {"resourceType": "Medication", "id": "m1", "status": status, "code": concept}
    return {
        "contained": [{**res, **({"manufacturer": maker} if maker else {})}],
        "medicationReference": {"reference": "#m1"},
    }


def test_f11_2_ids_status_destination_note_authors_and_makers(harness: Harness) -> None:
    """Eleventh attack, finding 2 (kit11 rx5.py .. rx8.py): element ids on the quantity, the medication and
    its codings; a contained Medication entered in error; a destination at another organisation's place; a
    note written by another organisation or by a practitioner id that is one; a manufacturer that is a
    registered organisation; another organisation's name in Japanese shinjitai: each refused naming the
    element, single and in bulk. The signer's own note and an outside manufacturer are recorded."""
    h = harness
    rx = _issued(h)
    quantity = {**_dispense(rx)["quantity"], "id": "pharmacy-1"}
    concept = _dispense(rx)["medicationCodeableConcept"]
    noted = [{"text": "已核对", "authorReference": {"reference": "Organization/pharmacy-1"}}]
    cases = [
        ("quantity id", {"quantity": quantity}, "quantity.id"),
        (
            "medication id",
            {"medicationCodeableConcept": {**concept, "id": "pharmacy-1"}},
            "medicationCodeableConcept.id",
        ),
        ("coding id", _medication(rx, id="pharmacy-1"), "medicationCodeableConcept.coding.0.id"),
        ("entered-in-error", _made_by(rx, "entered-in-error"), "contained.0.status"),
        ("destination", {"destination": {"reference": "Location/pharmacy1"}}, "destination.reference"),
        ("note by another", {"note": noted}, "note.0.authorReference.reference"),
        (
            "note by a practitioner id that is a pharmacy",
            {"note": [{"text": "已核对", "authorReference": {"reference": "Practitioner/pharmacy1"}}]},
            "note.0.authorReference.reference",
        ),
        ("maker by id", _made_by(rx, reference="Organization/hospital-1"), "contained.0.manufacturer"),
        ("maker by name", _made_by(rx, display=NAME), "contained.0.manufacturer"),
        ("shinjitai", _practitioner("PH-5", "解放碑大薬房 薬剤師"), "performer.0.actor.display"),
    ]
    _refuses(h, rx, cases)
    bulk = [_dispense(_issued(h), **changes) for _name, changes, _field in cases[4:6]]
    assert _bulk(h, h.client("pharmacy-2"), bulk) == [
        ("rejected", "RX_DISPENSE_MISMATCH", field) for _n, _c, field in cases[4:6]
    ]
    own = [
        {
            "text": "已核对",
            "authorReference": {"reference": "Organization/pharmacy-2", "display": OURS["display"]},
        }
    ]
    _recorded(h, _dispense(rx, note=own, **_made_by(rx, display="华北制药")), rx)


def _named(rx: str, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` (tests/adapters/rx/test_dispense_texts.py NAMED) on ``rx``'s dispense: an added extension
    follows the dispense's own trace codes (the sample's boxes are another prescription's)."""
    obj = _dispense(rx, **changes)
    if "extension" in changes:
        obj["extension"] = [*_dispense(rx)["extension"], *changes["extension"][len(TRACED) :]]
    return obj


def test_f12_1_no_text_names_another_organisation(harness: Harness) -> None:
    """Twelfth attack, finding 1: pharmacy-2's dispense naming pharmacy-1 (解放碑大药房, pharmacy-1) in the
    narrative, a contained Organization, an identifier's assigner, supportingInformation, a note's author
    string, an extension, a tag, partOf, context, eventHistory, detectedIssue, category, type, a note's or
    an instruction's text: each refused naming the field, single and in bulk. The prescribing hospital
    within authorizingPrescription and the signer's own name in the narrative are recorded."""
    h = harness
    rx = _issued(h)
    pharmacy = h.client("pharmacy-2")
    for name, changes, field in NAMED:
        r = _send(pharmacy, _named(rx, changes), rx)
        assert refused(r, 400, "RX_DISPENSE_MISMATCH") == {"field": field}, name
    bulk = [_named(_issued(h), changes) for _name, changes, _field in NAMED[:3]]
    assert _bulk(h, pharmacy, bulk) == [("rejected", "RX_DISPENSE_MISMATCH", f) for _n, _c, f in NAMED[:3]]
    obj = _dispense(
        rx,
        text={
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">观音桥药店 发药</div>',
        },
    )
    obj["authorizingPrescription"][0]["display"] = f"{_registry_name(h, 'hospital-2')} 处方"
    _recorded(h, obj, rx)


def test_f12_2_han_numerals_are_digits(harness: Harness) -> None:
    """Twelfth attack, finding 2: "pharmacy一", "hospital一 医生" and "山城第1人民医院 医生" (hospital-1's
    山城第一人民医院) as a practitioner's display are another organisation's id or name: refused, single and
    in bulk."""
    h = harness
    rx = _issued(h)
    assert _registry_name(h, "hospital-1") == "山城第一人民医院"
    displays = ["pharmacy一", "hospital一 医生", "山城第1人民医院 医生", "Pharmacy壹"]
    _refuses(h, rx, [(d, _practitioner("PH-5", d), "performer.0.actor.display") for d in displays])
    bulk = [_dispense(_issued(h), **_practitioner("PH-5", d)) for d in displays[1:3]]
    assert (
        _bulk(h, h.client("pharmacy-2"), bulk)
        == [("rejected", "RX_DISPENSE_MISMATCH", "performer.0.actor.display")] * 2
    )


def test_f12_3_a_contained_medications_status_carries_no_extension(harness: Harness) -> None:
    """Twelfth attack, finding 3: a contained Medication without status but ``_status`` (data-absent-reason)
    is refused naming ``contained.0._status``."""
    h = harness
    rx = _issued(h)
    made = _made_by(rx)
    del made["contained"][0]["status"]
    made["contained"][0]["_status"] = ABSENT
    _refuses(h, rx, [("_status", made, "contained.0._status")])


def test_f12_4_arrays_and_texts_are_bounded(harness: Harness) -> None:
    """Twelfth attack, finding 4: 200,000 notes, 21 instructions, a note of 300,000 characters are refused
    RX_DISPENSE_TOO_LARGE naming the field and its bound, single and in bulk; 20 notes of 2,000 characters
    are recorded."""
    h = harness
    rx = _issued(h)
    pharmacy = h.client("pharmacy-2")
    cases = [
        ({"note": [{"text": "已核对"}] * 200_000}, "note", MAX_ITEMS),
        ({"dosageInstruction": [{"text": "口服"}] * (MAX_ITEMS + 1)}, "dosageInstruction", MAX_ITEMS),
        ({"note": [{"text": "核" * 300_000}]}, "note.0.text", MAX_TEXT),
    ]
    for changes, field, limit in cases:
        r = _send(pharmacy, _dispense(rx, **changes), rx)
        assert refused(r, 400, "RX_DISPENSE_TOO_LARGE") == {"field": field, "limit": limit}
    bulk = [_dispense(_issued(h), **changes) for changes, _f, _l in cases[1:]]
    assert _bulk(h, pharmacy, bulk) == [("rejected", "RX_DISPENSE_TOO_LARGE", f) for _c, f, _l in cases[1:]]
    _recorded(h, _dispense(rx, note=[{"text": "核" * MAX_TEXT}] * MAX_ITEMS), rx)
