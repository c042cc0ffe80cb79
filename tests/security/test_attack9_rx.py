"""The ninth outside attack's findings on the dispense rules (kit9 rx_variants.py, rx_variants2.py, on main at
96a4224), replayed with the attacker's inputs through the real HTTP API, signed with real SM2 keys, on the
gateway suite's network: pharmacy-2 (观音桥药店) naming another organisation as its practitioner by a variant
of its id or by its name, an identifier beside a performer's reference, a ``Reference.type`` contradicting
its reference, another organisation's id as the location, and extensions on the elements the rules read."""

from __future__ import annotations

from typing import Any

from tests.kit.gateway import Harness, refused, rx_dispense
from tests.security.test_attack7_rx import _dispense, _issued, _registry_name, _send

OURS = {"reference": "Organization/pharmacy-2", "display": "观音桥药店"}  # the attacker's own performer (O)
V3 = "http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution"
ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"


def _by(*actors: dict[str, Any], **performer: Any) -> dict[str, Any]:
    return {"performer": [{"actor": a, **performer} for a in actors]}


def _translated(text: str) -> dict[str, Any]:
    return {"extension": [{"url": TRANSLATION, "extension": [{"url": "content", "valueString": text}]}]}


def _refuses(h: Harness, rx: str, cases: list[tuple[str, dict[str, Any], str]]) -> None:
    """Each case signed by pharmacy-2 is refused RX_DISPENSE_MISMATCH naming its field."""
    pharmacy = h.client("pharmacy-2")
    for name, changes, field in cases:
        r = _send(pharmacy, _dispense(rx, **changes), rx)
        assert refused(r, 400, "RX_DISPENSE_MISMATCH")["field"] == field, name


def test_f9_1_no_other_organisation_is_named_as_the_practitioner(harness: Harness) -> None:
    """Finding 1: a practitioner's id is compared with the registered ids case- and punctuation-blind, and
    its display (or a registered pharmacist's name) is not, nor contains, another organisation's name; the
    signer's own pharmacist displayed with the signer's name goes in."""
    h = harness
    rx = _issued(h)
    theirs = _registry_name(h, "pharmacy-1")
    assert theirs == "解放碑大药房"
    practitioner = "performer.0.actor"
    _refuses(
        h,
        rx,
        [
            (
                "Pharmacy-1 displayed 解放碑大药房",
                _by({"reference": "Practitioner/Pharmacy-1", "display": theirs}),
                f"{practitioner}.reference",
            ),
            (
                "PHARMACY-1 no display",
                _by({"reference": "Practitioner/PHARMACY-1"}),
                f"{practitioner}.reference",
            ),
            (
                "HOSPITAL-1",
                _by({"reference": "Practitioner/HOSPITAL-1", "display": "山城第一人民医院"}),
                f"{practitioner}.reference",
            ),
            (
                "Regulator",
                _by({"reference": "Practitioner/Regulator", "display": "市场监管局"}),
                f"{practitioner}.reference",
            ),
            (
                "pharmacy-1. dot",
                _by({"reference": "Practitioner/pharmacy-1.", "display": theirs}),
                f"{practitioner}.reference",
            ),
            (
                "second performer Pharmacy-1",
                _by(OURS, {"reference": "Practitioner/Pharmacy-1", "display": theirs}),
                "performer.1.actor.reference",
            ),
            (
                "PHARMACIST-1 displayed otherwise",
                _by({"reference": "Practitioner/PHARMACIST-1", "display": "解放碑大药房 执业药师 王敏"}),
                f"{practitioner}.reference",
            ),
            (
                "pharmacist-1 (registered as 解放碑大药房's) by id alone",
                _by(OURS, {"reference": "Practitioner/pharmacist-1"}),
                "performer.1.actor.reference",
            ),
            (
                "unregistered X1 displayed 解放碑 大药房",
                _by({"reference": "Practitioner/X1", "display": "解放碑 大药房"}),
                f"{practitioner}.display",
            ),
            (
                "unregistered PH-031 displayed 解放碑大药房",
                _by({"reference": "Practitioner/PH-031", "display": theirs}),
                f"{practitioner}.display",
            ),
            (
                "another pharmacy's pharmacist by name",
                _by(OURS, {"reference": "Practitioner/PH-031", "display": "解放碑大药房 执业药师 王敏"}),
                "performer.1.actor.display",
            ),
            (
                "fullwidth and punctuated",
                _by({"reference": "Practitioner/PH-031", "display": "ＸＸ（解放碑·大药房）"}),
                f"{practitioner}.display",
            ),
        ],
    )
    # The signer's own pharmacist, displayed with the signer's name: recorded and confirmed.
    own = _dispense(
        rx, **_by(OURS, {"reference": "Practitioner/PH-031", "display": "观音桥药店 执业药师 刘洋"})
    )
    r = _send(h.client("pharmacy-2"), own, rx)
    assert r.status_code == 202, r.text
    assert h.wait_chain(r.json()["id"])["chain_status"] == "confirmed"


def test_f9_1_a_pharmacist_registered_as_the_signers_passes(harness: Harness) -> None:
    """pharmacy-1 naming its pharmacist pharmacist-1 (registered as 解放碑大药房 执业药师 王敏) in a variant
    spelling of its id, displayed by its registered name: its own, recorded."""
    h = harness
    rx = _issued(h)
    name = _registry_name(h, "pharmacist-1")
    obj = _dispense(rx, **_by({"reference": "Practitioner/PHARMACIST-1", "display": name}))
    r = _send(h.client("pharmacy-1"), obj, rx)
    assert r.status_code == 202, r.text


def test_f9_3_4_references_and_extensions_say_nothing_else(harness: Harness) -> None:
    """Findings 3 and 4 (the attacker's finding-2 identifier too): an identifier beside a performer's
    reference, a reference typed otherwise than it names, another organisation's id as the location, and an
    extension on an element the rules read are each refused naming the element; typed right, recorded."""
    h = harness
    rx = _issued(h)
    patient = rx_dispense(rx)["subject"]["reference"]
    days = {"value": 7, "unit": "d"}
    _refuses(
        h,
        rx,
        [
            (
                "performer identifier pharmacy-1",
                _by({**OURS, "identifier": {"value": "pharmacy-1"}}),
                "performer.0.actor.identifier",
            ),
            (
                "receiver typed Practitioner",
                {"receiver": [{"reference": patient, "type": "Practitioner"}]},
                "receiver.0.type",
            ),
            (
                "receiver typed RelatedPerson",
                {"receiver": [{"reference": patient, "type": "RelatedPerson"}]},
                "receiver.0.type",
            ),
            ("performer typed Practitioner", _by({**OURS, "type": "Practitioner"}), "performer.0.actor.type"),
            (
                "location typed Organization",
                {"location": {"reference": "Location/L1", "type": "Organization"}},
                "location.type",
            ),
            ("Location/pharmacy-1", {"location": {"reference": "Location/pharmacy-1"}}, "location.reference"),
            ("Location/hospital-1", {"location": {"reference": "Location/hospital-1"}}, "location.reference"),
            (
                "Location/PHARMACY-1. displayed ours",
                {"location": {"reference": "Location/PHARMACY-1.", "display": "观音桥药店"}},
                "location.reference",
            ),
            (
                "_status data-absent-reason",
                {"_status": {"extension": [{"url": ABSENT, "valueCode": "unknown"}]}},
                "_status",
            ),
            (
                "performer _display translation",
                _by({**OURS, "_display": _translated("解放碑大药房")}),
                "performer.0.actor._display",
            ),
            (
                "location _display",
                {"location": {"reference": "Location/L1", "_display": _translated("解放碑大药房")}},
                "location._display",
            ),
            (
                "location extension",
                {
                    "location": {
                        "reference": "Location/L1",
                        "extension": [{"url": "urn:x", "valueString": "解放碑大药房"}],
                    }
                },
                "location.extension",
            ),
            (
                "receiver _display",
                {
                    "receiver": [
                        {
                            "reference": patient,
                            "_display": {"extension": [{"url": "urn:x", "valueString": "李四"}]},
                        }
                    ]
                },
                "receiver.0._display",
            ),
            (
                "second receiver's extension",
                {
                    "receiver": [
                        {"reference": patient},
                        {"reference": patient, "extension": [{"url": "urn:x", "valueString": "李四"}]},
                    ]
                },
                "receiver.1.extension",
            ),
            (
                "daysSupply _value",
                {"daysSupply": {**days, "_value": {"extension": [{"url": "urn:x", "valueString": "-5"}]}}},
                "daysSupply._value",
            ),
            (
                "substitution extension",
                {
                    "substitution": {
                        "wasSubstituted": False,
                        "extension": [{"url": "urn:x", "valueString": "换为头孢"}],
                    }
                },
                "substitution.extension",
            ),
            (
                "substitution N coding extension",
                {
                    "substitution": {
                        "wasSubstituted": False,
                        "type": {
                            "coding": [
                                {
                                    "system": V3,
                                    "code": "N",
                                    "extension": [{"url": "urn:x", "valueString": "换为头孢"}],
                                }
                            ]
                        },
                    }
                },
                "substitution.type.coding.0.extension",
            ),
            (
                "performer function text",
                _by(OURS, function={"text": "解放碑大药房代配"}),
                "performer.0.function",
            ),
        ],
    )
    # Each reference typed as it names, a coded function, the signer's place: recorded and confirmed.
    fine = _dispense(
        rx,
        performer=[
            {
                "actor": {**OURS, "type": "Organization"},
                "function": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/medicationdispense-performer-function",
                            "code": "finalchecker",
                        }
                    ]
                },
            }
        ],
        receiver=[{"reference": patient, "type": "Patient"}],
        location={
            "reference": "Location/Pharmacy-2",
            "type": "http://hl7.org/fhir/StructureDefinition/Location",
        },
        daysSupply=days,
    )
    r = _send(h.client("pharmacy-2"), fine, rx)
    assert r.status_code == 202, r.text
    assert h.wait_chain(r.json()["id"])["chain_status"] == "confirmed"
