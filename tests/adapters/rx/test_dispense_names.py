"""The dispense rules of the tenth attack at the adapter (tests/security/test_attack10_rx.py replays them
through the gateway): displays made of letters, digits, spaces and a name's punctuation; ids compared by
their skeleton; extensions, element ids and types on every element the rules read; names in traditional
characters."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from adapters import AdaptContext, adapt
from adapters._common import id_key, id_skeleton, name_fault
from adapters.errors import PayloadInvalid
from adapters.gas.payload import asset_key
from adapters.rx.medication import name_key
from adapters.rx.workflow import _ids_another, _names_another
from tests.kit.adapter_samples import ASSETS

DISPENSE: dict[str, Any] = json.loads((ASSETS / "fhir" / "rx-dispense-amoxicillin.json").read_text("utf-8"))
OURS = {"reference": "Organization/pharmacy-2", "display": "观音桥药店"}
NOTE = {
    "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}
    ]
}
FUNCTION = "http://terminology.hl7.org/CodeSystem/medicationdispense-performer-function"
FINAL = {"system": FUNCTION, "code": "finalchecker"}
NAME = "解放碑大药房"
# The attacker's characters (kit10 rx3.py): each passed inside 解放碑大药房 as a practitioner's display.
INVISIBLE = [
    "\u115f",
    "\u1160",
    "\u3164",
    "\uffa0",
    "\u2800",
    "\u034f",
    "\ufe0f",
    "\U000e0101",
    "\u17b5",
    "\u0332",
]


def _set(**changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.update(copy.deepcopy(changes))


def _coding(d: dict[str, Any]) -> dict[str, Any]:
    coding: dict[str, Any] = d["medicationCodeableConcept"]["coding"][0]
    return coding


def _contained(d: dict[str, Any], coding: dict[str, Any]) -> None:
    """The medication as a contained Medication of ``coding``, by reference."""
    del d["medicationCodeableConcept"]
    d["contained"] = [{"resourceType": "Medication", "id": "m1", "code": {"coding": [coding]}}]
    d["medicationReference"] = {"reference": "#m1"}


def _performed(**function: Any) -> Callable[[dict[str, Any]], None]:
    return _set(performer=[{"actor": OURS, "function": {"coding": [{**FINAL, **function}]}}])


REFUSED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    *[
        (
            f"U+{ord(c):04X} in a practitioner's display",
            _set(
                performer=[{"actor": {"reference": "Practitioner/PH-77", "display": NAME[0] + c + NAME[1:]}}]
            ),
            "performer.0.actor.display",
        )
        for c in INVISIBLE
    ],
    (
        "Hangul filler in the location's display",
        _set(location={"reference": "Location/L1", "display": "解\u3164放碑大药房"}),
        "location.display",
    ),
    (
        "medication coding extension",
        lambda d: _coding(d).update(NOTE),
        "medicationCodeableConcept.coding.0.extension",
    ),
    (
        "medication coding _code",
        lambda d: _coding(d).update(_code=NOTE),
        "medicationCodeableConcept.coding.0._code",
    ),
    (
        "medication coding _display",
        lambda d: _coding(d).update(_display=NOTE),
        "medicationCodeableConcept.coding.0._display",
    ),
    (
        "medication extension",
        lambda d: d["medicationCodeableConcept"].update(NOTE),
        "medicationCodeableConcept.extension",
    ),
    (
        "medication _text",
        lambda d: d["medicationCodeableConcept"].update(_text=NOTE),
        "medicationCodeableConcept._text",
    ),
    (
        "prescription extension",
        lambda d: d["authorizingPrescription"][0].update(NOTE),
        "authorizingPrescription.0.extension",
    ),
    (
        "prescription _reference",
        lambda d: d["authorizingPrescription"][0].update(_reference=NOTE),
        "authorizingPrescription.0._reference",
    ),
    (
        "prescription typed Patient",
        lambda d: d["authorizingPrescription"][0].update(type="Patient"),
        "authorizingPrescription.0.type",
    ),
    (
        "partOf typed otherwise",
        _set(partOf=[{"reference": "Procedure/x", "type": "Patient"}]),
        "partOf.0.type",
    ),
    ("function coding _code", _performed(_code=NOTE), "performer.0.function.coding.0._code"),
    ("function coding extension", _performed(**NOTE), "performer.0.function.coding.0.extension"),
    ("function coding _system", _performed(_system=NOTE), "performer.0.function.coding.0._system"),
    ("function coding displayed 解放碑大药房", _performed(display=NAME), "performer.0.function"),
    (
        "contained Medication's coding extension",
        lambda d: _contained(d, {**d["medicationCodeableConcept"]["coding"][0], **NOTE}),
        "contained.0.code.coding.0.extension",
    ),
    ("performer element id", _set(performer=[{"id": "pharmacy-1", "actor": OURS}]), "performer.0.id"),
    ("actor element id", _set(performer=[{"actor": {**OURS, "id": "pharmacy-1"}}]), "performer.0.actor.id"),
    ("location element id", _set(location={"reference": "Location/L1", "id": "pharmacy-1"}), "location.id"),
    # The eleventh attack (kit11 rx5.py .. rx8.py): element ids on every element the rules read, a withdrawn
    # contained Medication, the destination and a note's author held as the location and a performer are.
    ("quantity element id", lambda d: d["quantity"].update(id="pharmacy-1"), "quantity.id"),
    (
        "medication element id",
        lambda d: d["medicationCodeableConcept"].update(id="pharmacy-1"),
        "medicationCodeableConcept.id",
    ),
    (
        "coding element id",
        lambda d: _coding(d).update(id="pharmacy-1"),
        "medicationCodeableConcept.coding.0.id",
    ),
    (
        "contained Medication entered-in-error",
        lambda d: (_contained(d, _coding(d)), d["contained"][0].update(status="entered-in-error")),
        "contained.0.status",
    ),
    (
        "contained Medication's manufacturer by identifier",
        lambda d: (
            _contained(d, _coding(d)),
            d["contained"][0].update(manufacturer={"identifier": {"value": "pharmacy-1"}}),
        ),
        "contained.0.manufacturer",
    ),
    ("destination absolute", _set(destination={"reference": "https://x.example/Location/1"}), "destination"),
    (
        "destination displayed with a Hangul filler",
        _set(destination={"reference": "Location/L1", "display": "解\u3164放碑大药房"}),
        "destination.display",
    ),
    ("destination element id", _set(destination={"reference": "Location/L1", "id": "p1"}), "destination.id"),
    (
        "note author by identifier",
        _set(note=[{"text": "ok", "authorReference": {"identifier": {"value": "pharmacy-1"}}}]),
        "note.0.authorReference",
    ),
    (
        "note author displayed in Cyrillic",
        _set(
            note=[{"text": "ok", "authorReference": {"reference": "Practitioner/P1", "display": "\u0440h"}}]
        ),
        "note.0.authorReference.display",
    ),
]


@pytest.mark.parametrize(("change", "field"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_what_the_rules_read_is_plain(change: Callable[[dict[str, Any]], None], field: str) -> None:
    obj = copy.deepcopy(DISPENSE)
    change(obj)
    with pytest.raises(PayloadInvalid) as e:
        adapt("rx.dispense", obj, AdaptContext())
    assert (e.value.code, e.value.details.get("field")) == ("RX_DISPENSE_MISMATCH", field), e.value.to_dict()


def test_names_of_letters_digits_and_a_names_punctuation_pass() -> None:
    for name in (
        "观音桥药店 执业药师 刘洋",
        "ＸＸ（解放碑·大药房）",
        "Dr. Wang-Li (药师)",
        "王　敏",
        "ＰＨＡＲＭＡＣＹ２ 王敏",
    ):
        assert name_fault(name) is None, name
    for name, char in [
        ("解\u3164放碑", "U+3164"),
        ("解\u2800", "U+2800"),
        ("a\u0332", "U+0332"),
        ("\ue000", "U+E000"),
        ("\u0378", "U+0378"),
        ("a\tb", "U+0009"),
        ("☺", "U+263A"),
        ("ジョン・スミス", "U+30B8"),
        ("김민", "U+AE40"),
        ("Müller", "U+00FC"),
    ]:
        assert name_fault(name) == char, name
    obj = copy.deepcopy(DISPENSE)
    obj["performer"] = [
        {"actor": OURS, "function": {"coding": [{**FINAL, "display": "Final Checker"}]}},
        {"actor": {"reference": "Practitioner/PH-031", "display": "观音桥药店 执业药师 刘洋"}},
    ]
    obj["contained"] = [
        {"resourceType": "Medication", "id": "m1", "code": obj.pop("medicationCodeableConcept")}
    ]
    obj["medicationReference"] = {"reference": "#m1"}
    done = adapt("rx.dispense", obj, AdaptContext())
    assert done.detail["practitioners"] == {"performer.1.actor": ["PH-031", "观音桥药店 执业药师 刘洋"]}


def test_ids_compare_by_skeleton_and_names_in_simplified_characters() -> None:
    """id_skeleton (comparison only) folds ids written without separators; id_key, gas asset keys' form, is
    unchanged; name_key folds traditional characters; a display spelling another's id is found."""
    assert {id_skeleton(v) for v in ("pharmacy1", "Pharmacy-1.", "pharmacy_1", "PHARMACY..1")} == {
        "PHARMACYI"  # 1 read as its look-alikes l, I, i
    }
    assert id_key("pharmacy1") == "PHARMACY1" != id_key("pharmacy-1") == "PHARMACY-1"
    assert asset_key("pipe_0ec5") == "PIPE-0EC5"
    assert name_key("解放碑大藥房") == name_key("解放碑大药房") == "解放碑大药房"
    assert name_key("解放碑大薬房") == "解放碑大药房" and name_key("空気自動站") == "空气自动站"  # shinjitai
    assert _names_another("解放碑大薬房 薬剤師", ["解放碑大药房"], "观音桥药店")
    assert _names_another("山城第一人民醫院 藥師", ["山城第一人民医院"], "观音桥药店")
    assert _ids_another("pharmacy-1 药师", ["pharmacy-1", "hospital-1"], "pharmacy-2")
    assert not _ids_another("pharmacy-2 药师 刘洋", ["pharmacy-1"], "pharmacy-2")
    assert not _ids_another("pharmacy-11 药师", ["pharmacy-1"], "pharmacy-11")
    assert not _ids_another("王药师", ["pharmacy-1"], "pharmacy-2")


# The eleventh attack (kit11 rx1.py .. rx8.py): another organisation's id in other forms. Full-width and
# mathematical letters and digits are their ASCII ones after NFKC (the id check finds them); another
# script's letters and digits are refused by name_fault, naming the character.
ID_FORMS = [
    "ＰＨＡＲＭＡＣＹ１",
    "pharmacy１",
    "ｐｈａｒｍａｃｉｓｔ１ 王敏",
    "𝐩𝐡𝐚𝐫𝐦𝐚𝐜𝐲1",
    "ＨＯＳＰＩＴＡＬ１ 医生",
]
OTHER_SCRIPTS = [("рharmacy-1", "U+0440"), ("pharmacy١", "U+0661"), ("hospital१", "U+0967")]


def test_ids_in_other_forms_are_found_or_refused() -> None:
    others = ["pharmacy-1", "pharmacist-1", "hospital-1"]
    for display in ID_FORMS:
        assert name_fault(display) is None, display
        assert _ids_another(display, others, "pharmacy-2"), display
    assert not _ids_another("ＰＨＡＲＭＡＣＹ２ 王敏", others, "pharmacy-2")
    for display, char in OTHER_SCRIPTS:
        assert name_fault(display) == char, display
        obj = copy.deepcopy(DISPENSE)
        obj["performer"] = [{"actor": {"reference": "Practitioner/PH-77", "display": display}}]
        with pytest.raises(PayloadInvalid) as e:
            adapt("rx.dispense", obj, AdaptContext())
        assert e.value.code == "RX_DISPENSE_MISMATCH"
        assert e.value.details == {"field": "performer.0.actor.display", "character": char}


def test_displays_and_performers_are_bounded() -> None:
    """A display the rules read is at most 200 characters; a dispense names at most 10 performers."""
    person = {"actor": {"reference": "Practitioner/PH-1", "display": "王敏"}}
    for change, field in [
        (_set(performer=[{"actor": {"reference": "Practitioner/PH-1", "display": "王" * 201}}]),
         "performer.0.actor.display"),
        (_set(location={"reference": "Location/L1", "display": "药" * 201}), "location.display"),
        (_set(performer=[person] * 11), "performer"),
    ]:  # fmt: skip
        obj = copy.deepcopy(DISPENSE)
        change(obj)
        with pytest.raises(PayloadInvalid) as e:
            adapt("rx.dispense", obj, AdaptContext())
        assert (e.value.code, e.value.details.get("field")) == ("RX_DISPENSE_MISMATCH", field)
    obj = copy.deepcopy(DISPENSE)
    obj["performer"] = [{"actor": {"reference": "Practitioner/PH-1", "display": "王" * 200}}] * 10
    adapt("rx.dispense", obj, AdaptContext())
