"""The dispense rules of the ninth attack at the adapter (tests/security/test_attack9_rx.py replays them
through the gateway): an actor's identifier, ``Reference.type``, extensions on the elements the rules read,
a performer's function; and the id and name normal forms the workflow compares organisations with."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from adapters import AdaptContext, adapt
from adapters._common import id_key
from adapters.errors import PayloadInvalid
from adapters.gas.payload import asset_key
from adapters.rx.medication import name_key
from adapters.rx.workflow import _names_another
from tests.kit.adapter_samples import ASSETS

DISPENSE: dict[str, Any] = json.loads((ASSETS / "fhir" / "rx-dispense-amoxicillin.json").read_text("utf-8"))
PATIENT = DISPENSE["subject"]["reference"]
OURS = {"reference": "Organization/pharmacy-2", "display": "观音桥药店"}
NOTE = {"extension": [{"url": "urn:x", "valueString": "解放碑大药房"}]}
FUNCTION = "http://terminology.hl7.org/CodeSystem/medicationdispense-performer-function"


def _set(**changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.update(copy.deepcopy(changes))


REFUSED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "actor identifier",
        _set(performer=[{"actor": {**OURS, "identifier": {"value": "pharmacy-1"}}}]),
        "performer.0.actor.identifier",
    ),
    (
        "receiver typed Practitioner",
        _set(receiver=[{"reference": PATIENT, "type": "Practitioner"}]),
        "receiver.0.type",
    ),
    ("subject typed Group", lambda d: d["subject"].update(type="Group"), "subject.type"),
    (
        "performer typed Practitioner",
        _set(performer=[{"actor": {**OURS, "type": "Practitioner"}}]),
        "performer.0.actor.type",
    ),
    (
        "location typed Organization",
        _set(location={"reference": "Location/L1", "type": "Organization"}),
        "location.type",
    ),
    (
        "type on a contained location",
        _set(location={"reference": "#l1", "type": "Location"}),
        "location.type",
    ),
    ("_status", _set(_status=NOTE), "_status"),
    ("_whenHandedOver", _set(_whenHandedOver=NOTE), "_whenHandedOver"),
    (
        "performer _display",
        _set(performer=[{"actor": {**OURS, "_display": NOTE}}]),
        "performer.0.actor._display",
    ),
    (
        "performer _reference",
        _set(performer=[{"actor": {**OURS, "_reference": NOTE}}]),
        "performer.0.actor._reference",
    ),
    ("performer extension", _set(performer=[{"actor": OURS, **NOTE}]), "performer.0.extension"),
    ("location extension", _set(location={"reference": "Location/L1", **NOTE}), "location.extension"),
    ("receiver _display", _set(receiver=[{"reference": PATIENT, "_display": NOTE}]), "receiver.0._display"),
    ("subject extension", lambda d: d["subject"].update(NOTE), "subject.extension"),
    ("daysSupply _value", lambda d: d["daysSupply"].update(_value=NOTE), "daysSupply._value"),
    ("quantity _unit", lambda d: d["quantity"].update(_unit=NOTE), "quantity._unit"),
    (
        "substitution extension",
        _set(substitution={"wasSubstituted": False, **NOTE}),
        "substitution.extension",
    ),
    (
        "substitution type _text",
        _set(substitution={"wasSubstituted": False, "type": {"_text": NOTE}}),
        "substitution.type._text",
    ),
    (
        "function text",
        _set(performer=[{"actor": OURS, "function": {"text": "解放碑大药房代配"}}]),
        "performer.0.function",
    ),
    (
        "function of another system",
        _set(performer=[{"actor": OURS, "function": {"coding": [{"system": "urn:x", "code": "packager"}]}}]),
        "performer.0.function",
    ),
    ("function without a code", _set(performer=[{"actor": OURS, "function": {}}]), "performer.0.function"),
]


@pytest.mark.parametrize(("change", "field"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_what_the_rules_read_says_nothing_else(change: Callable[[dict[str, Any]], None], field: str) -> None:
    obj = copy.deepcopy(DISPENSE)
    change(obj)
    with pytest.raises(PayloadInvalid) as e:
        adapt("rx.dispense", obj, AdaptContext())
    assert (e.value.code, e.value.details.get("field")) == ("RX_DISPENSE_MISMATCH", field), e.value.to_dict()


def test_references_typed_as_they_name_and_coded_functions_pass() -> None:
    obj = copy.deepcopy(DISPENSE)
    obj["subject"]["type"] = "Patient"
    obj["receiver"] = [{"reference": PATIENT, "type": "http://hl7.org/fhir/StructureDefinition/Patient"}]
    obj["performer"] = [
        {
            "actor": {**OURS, "type": "Organization"},
            "function": {"coding": [{"system": FUNCTION, "code": "checker", "display": "Checker"}]},
        },
        {
            "actor": {
                "reference": "Practitioner/PH-031",
                "display": "观音桥药店 执业药师 刘洋",
                "type": "Practitioner",
            }
        },
    ]
    obj["location"] = {"reference": "Location/pharmacy-1.", "type": "Location"}
    done = adapt("rx.dispense", obj, AdaptContext())
    # The ids go to the workflow, which compares them with OrgRegistry's (test_attack9_rx.py).
    assert done.detail["places"] == {"location.reference": "pharmacy-1."}
    assert done.detail["practitioners"]["performer.1.actor"] == ["PH-031", "观音桥药店 执业药师 刘洋"]


def test_ids_and_names_compare_in_normal_form() -> None:
    """id_key: case and separators (runs, leading, trailing) fold; gas asset ids keep their old keys."""
    assert {id_key(v) for v in ("pharmacy-1", "Pharmacy-1", "PHARMACY_1", "pharmacy-1.", "pharmacy..1")} == {
        "PHARMACY-1"
    }
    assert id_key("pharmacy-1") != id_key("pharmacy-11") and id_key("药店-1") != id_key("医院-1")
    assert asset_key("pipe_0ec5") == asset_key("PIPE-0EC5") == "PIPE-0EC5"
    assert name_key("ＸＸ（解放碑·大药房）\u200b") == "xx解放碑大药房"
    others = ["解放碑大药房", "观音桥药店"]  # another pharmacy, and one named inside the signer's name
    signer = "观音桥药店二部"
    assert _names_another("解放碑 大药房 执业药师 王敏", others, signer)
    assert _names_another("观音桥药店", others, signer)  # exactly the other one's name
    assert not _names_another("观音桥药店二部 执业药师 刘洋", others, signer)
    assert _names_another("观音桥药店二部 观音桥药店", others, signer)
    assert not _names_another("王药师", others, None)
