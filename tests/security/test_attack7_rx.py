"""The seventh outside attack's findings 2, 3 and 5 on prescriptions (kit7 rx1.py rx2.py rx3.py rx6.py rx6b.py
rx8.py): a dispense naming another drug, expired boxes handed over "in the past", and dispense content that
contradicts the record, replayed with the attacker's inputs through the real HTTP API, signed with real SM2
keys, on the gateway suite's network; and the eighth attack's residuals of finding 5 (``test_f8_…``)."""

from __future__ import annotations

import copy
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from adapters._common import canonical_json
from adapters.abc import DEFAULT_TIME_ZONE
from provenance.crypto.sm3 import sm3_hex
from provenance.demo_rx import DEMO_GTIN
from tests.kit.gateway import Harness, OrgClient, iso_second, refused, rx_dispense, rx_issue, with_trace_codes

YB = "http://www.nhsa.gov.cn/fhir/CodeSystem/yb-drug"
AMOXICILLIN = {"system": YB, "code": "XJ01CAA040A001010100139"}  # the golden prescription's code
RXNORM_MORPHINE = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "value": "7052"}


def _send(client: OrgClient, obj: dict[str, Any], rx: str) -> Any:
    """Sent as is: the client's own adapter would refuse to digest what the gateway must refuse."""
    return client.submit("rx.dispense", obj, subject=f"rx:{rx}", payload_digest=sm3_hex(canonical_json(obj)))


def _issued(h: Harness, *, written: timedelta = timedelta(minutes=5)) -> str:
    """A prescription for the golden amoxicillin, written ``written`` ago (valid from then, 3 days on)."""
    rx = "RXA7" + secrets.token_hex(5).upper()
    obj = rx_issue(rx)
    start = iso_second(datetime.now(UTC) - written)
    obj["authoredOn"] = start
    obj["dispenseRequest"]["validityPeriod"]["start"] = start
    r = h.client("hospital-2").submit("rx.issue", obj)
    assert r.status_code == 202, r.text
    return rx


def _box(expiry: str) -> str:
    """A GS1 box (human-readable form) with the (17) expiry ``expiry`` (YYMMDD)."""
    serial = "SN" + "".join(secrets.choice("ABCDEFGHJK3456789") for _ in range(10))
    return f"(01){DEMO_GTIN}(17){expiry}(21){serial}"


def _contained(**reference: Any) -> dict[str, Any]:
    """The medication as a contained Medication carrying exactly the prescription's code (rx8.py)."""
    return {
        "contained": [{"resourceType": "Medication", "id": "m1", "code": {"coding": [dict(AMOXICILLIN)]}}],
        "medicationReference": {"reference": "#m1", **reference},
    }


def _dispense(rx: str, **changes: Any) -> dict[str, Any]:
    obj = rx_dispense(rx)
    if "medicationReference" in changes:
        obj.pop("medicationCodeableConcept")
    obj.update(copy.deepcopy(changes))
    return obj


def test_f7_3_a_dispense_names_no_other_drug(harness: Harness) -> None:
    h = harness
    pharmacy = h.client("pharmacy-2")
    rx = _issued(h)
    concept = rx_dispense(rx)["medicationCodeableConcept"]

    def coded(*extra: dict[str, Any]) -> dict[str, Any]:
        return {"medicationCodeableConcept": {**concept, "coding": [*concept["coding"], *extra]}}

    r3 = _contained()
    r3["contained"][0]["code"]["coding"].append({"code": "7052", "display": "阿莫西林胶囊"})
    for name, changes in (
        ("R1 reference display", _contained(display="盐酸吗啡注射液 10mg")),
        ("R2 reference identifier", _contained(identifier=RXNORM_MORPHINE)),
        ("B1 system-less coding", coded({"code": "7052", "display": "阿莫西林胶囊"})),
        ("B1b system-less code only", coded({"code": "7052"})),
        ("R3 system-less coding in the contained Medication", r3),
    ):
        r = _send(pharmacy, _dispense(rx, **changes), rx)
        assert refused(r, 400, "RX_DISPENSE_MISMATCH") == {"field": "medication[x]"}, name
    substituted = {
        "wasSubstituted": True,
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution",
                    "code": "TE",
                }
            ],
            "text": "替换为盐酸吗啡注射液",
        },
    }
    r = _send(pharmacy, _dispense(rx, substitution=substituted), rx)
    assert refused(r, 400, "RX_DISPENSE_MISMATCH") == {"field": "substitution"}
    # The prescription's own words as the reference's display, and no substitution: the box goes in.
    held = _dispense(rx, **_contained(display="阿莫西林胶囊"), substitution={"wasSubstituted": False})
    r = _send(pharmacy, held, rx)
    assert r.status_code == 202, r.text
    assert h.wait_chain(r.json()["id"])["chain_status"] == "confirmed"


def test_f7_2_expired_boxes_are_not_handed_over_in_the_past(harness: Harness) -> None:
    h = harness
    pharmacy = h.client("pharmacy-2")
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo(DEFAULT_TIME_ZONE)).date()
    # rx6b.py: written half a year ago, boxes expired three months ago, "handed over" the day after writing.
    rx = _issued(h, written=timedelta(days=180))
    old = with_trace_codes(
        rx_dispense(rx), [_box((today - timedelta(days=90)).strftime("%y%m%d")) for _ in "ab"]
    )
    old["whenPrepared"] = old["whenHandedOver"] = iso_second(now - timedelta(days=179))
    r = _send(pharmacy, old, rx)
    assert refused(r, 400, "RX_HANDED_OVER_TOO_EARLY")["field"] == "whenHandedOver"
    # rx6.py: boxes that expired yesterday, handed over (within the window) yesterday, recorded today.
    rx = _issued(h, written=timedelta(hours=30))
    yesterday = (today - timedelta(days=1)).strftime("%y%m%d")
    late = with_trace_codes(rx_dispense(rx), [_box(yesterday), _box(yesterday)])
    late["whenPrepared"] = late["whenHandedOver"] = iso_second(now - timedelta(hours=25))
    r = _send(pharmacy, late, rx)
    assert refused(r, 400, "TRACE_CODE_EXPIRED")["field"] == "extension.0.valueString"
    # A late upload within the window, of boxes still good today: recorded, with the day it says.
    good = (today + timedelta(days=300)).strftime("%y%m%d")
    late = with_trace_codes(late, [_box(good), _box(good)])
    r = _send(pharmacy, late, rx)
    assert r.status_code == 202, r.text
    assert h.wait_chain(r.json()["id"])["chain_status"] == "confirmed"


def test_f7_5_dispense_content_does_not_contradict_the_record(harness: Harness) -> None:
    h = harness
    pharmacy = h.client("pharmacy-2")
    rx = _issued(h)
    subject = rx_dispense(rx)["subject"]
    other_person = {"system": "urn:oid:2.16.156.10011.1.1", "value": "110101199001011234"}
    versioned = rx_dispense(rx)["medicationCodeableConcept"]
    versioned["coding"][0]["version"] = "morphine-2026"
    expired_batch = _contained()
    expired_batch["contained"][0]["batch"] = {
        "lotNumber": "盐酸吗啡注射液10mg",
        "expirationDate": "2020-01-01",
    }
    after = iso_second(datetime.now(UTC) + timedelta(seconds=100))
    for name, changes, code, field in (
        (
            "C1 performer pharmacy-1",
            {"performer": [{"actor": {"reference": "Organization/pharmacy-1", "display": "解放碑大药房"}}]},
            "RX_DISPENSE_MISMATCH",
            "performer",
        ),
        (
            "performer by absolute URL",
            {"performer": [{"actor": {"reference": "http://127.0.0.1:18000/fhir/Organization/pharmacy-1"}}]},
            "RX_DISPENSE_MISMATCH",
            "performer",
        ),
        (
            "performer by search",
            {"performer": [{"actor": {"reference": "Organization?identifier=pharmacy-1"}}]},
            "RX_DISPENSE_MISMATCH",
            "performer",
        ),
        (
            "performer by urn",
            {
                "performer": [
                    {
                        "actor": {
                            "reference": "urn:uuid:0b6e3f3c-1b1a-4a57-9d35-7f0a0e7c2a11",
                            "display": "解放碑大药房",
                        }
                    }
                ]
            },
            "RX_DISPENSE_MISMATCH",
            "performer",
        ),
        (
            "performer contained",
            {"performer": [{"actor": {"reference": "#o1"}}]},
            "RX_DISPENSE_MISMATCH",
            "performer",
        ),
        (
            "performer as a PractitionerRole",
            {"performer": [{"actor": {"reference": "PractitionerRole/pharmacy-1"}}]},
            "RX_DISPENSE_MISMATCH",
            "performer",
        ),
        (
            "performer by identifier only",
            {"performer": [{"actor": {"identifier": {"value": "pharmacy-1"}}}]},
            "RX_DISPENSE_MISMATCH",
            "performer",
        ),
        (
            "C2 another person's identifier",
            {"subject": {**subject, "identifier": other_person, "display": "张三"}},
            "RX_DISPENSE_MISMATCH",
            "subject",
        ),
        (
            "C2b another display",
            {"subject": {**subject, "display": "李四"}},
            "RX_DISPENSE_MISMATCH",
            "subject",
        ),
        (
            "A2 coding version",
            {"medicationCodeableConcept": versioned},
            "RX_DISPENSE_MISMATCH",
            "medication[x]",
        ),
        ("C5 batch expired 2020", expired_batch, "RX_BATCH_EXPIRED", "contained.0.batch.expirationDate"),
        ("C9 whenPrepared after whenHandedOver", {"whenPrepared": after}, "FHIR_INVALID", "whenPrepared"),
    ):
        r = _send(pharmacy, _dispense(rx, **changes), rx)
        assert refused(r, 400, code)["field"] == field, name
    # The signer as performer, the prescription's display of the patient: the dispense goes in.
    ours = {
        "performer": [{"actor": {"reference": "Organization/pharmacy-2"}}],
        "subject": {**subject, "display": "张三"},
    }
    r = _send(pharmacy, _dispense(rx, **ours), rx)
    assert r.status_code == 202, r.text
    assert h.wait_chain(r.json()["id"])["chain_status"] == "confirmed"


def _registry_name(h: Harness, org: str) -> str:
    """The organisation's name as the gateway's OrgRegistry export lists it."""
    r = h.client(org).get("/api/v1/orgs")
    assert r.status_code == 200, r.text
    return str(next(o["name"] for o in r.json()["orgs"] if o["id"] == org))


def test_f8_a_completed_dispense_states_nothing_the_record_contradicts(harness: Harness) -> None:
    """F7-5's residuals: the signer displayed as another pharmacy, another person or place as receiver or
    location, a statusReason, an unmade substitution's type or reason and a supply in negative days or
    boxes, each refused naming the element; the same dispense stating its own facts goes in."""
    h = harness
    pharmacy = h.client("pharmacy-2")
    rx = _issued(h)
    ours, theirs = _registry_name(h, "pharmacy-2"), _registry_name(h, "pharmacy-1")
    assert ours != theirs
    patient = rx_dispense(rx)["subject"]["reference"]
    v3 = "http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution"
    signer = {"reference": "Organization/pharmacy-2"}
    for name, changes, code, field in (
        (
            "the signer displayed as another pharmacy",
            {"performer": [{"actor": {**signer, "display": theirs}}]},
            "RX_DISPENSE_MISMATCH",
            "performer.0.actor.display",
        ),
        (
            "the second performer displayed as another pharmacy",
            {"performer": [{"actor": {**signer, "display": ours}}, {"actor": {**signer, "display": theirs}}]},
            "RX_DISPENSE_MISMATCH",
            "performer.1.actor.display",
        ),
        (
            "another pharmacy named as a practitioner",
            {"performer": [{"actor": {"reference": "Practitioner/pharmacy-1", "display": theirs}}]},
            "RX_DISPENSE_MISMATCH",
            "performer.0.actor.reference",
        ),
        (
            "a registered pharmacist displayed as another pharmacy",
            {
                "performer": [
                    {"actor": signer},
                    {"actor": {"reference": "Practitioner/pharmacist-1", "display": theirs}},
                ]
            },
            "RX_DISPENSE_MISMATCH",
            "performer.1.actor.display",
        ),
        (
            "the place displayed as another pharmacy",
            {"location": {"reference": "Location/counter-1", "display": theirs}},
            "RX_DISPENSE_MISMATCH",
            "location.display",
        ),
        (
            "a contained place",
            {"location": {"reference": "#l1"}},
            "RX_DISPENSE_MISMATCH",
            "location",
        ),
        (
            "a place by identifier",
            {"location": {"reference": "Location/counter-1", "identifier": {"value": "pharmacy-1"}}},
            "RX_DISPENSE_MISMATCH",
            "location",
        ),
        (
            "another patient received it",
            {"receiver": [{"reference": "Patient/PID-0000000001", "display": "李四"}]},
            "RX_DISPENSE_MISMATCH",
            "receiver.0.reference",
        ),
        (
            "the patient's reference displayed as another person",
            {"receiver": [{"reference": patient, "display": "李四"}]},
            "RX_DISPENSE_MISMATCH",
            "receiver.0",
        ),
        (
            "a completed dispense saying why it was not done",
            {"statusReasonCodeableConcept": {"text": "缺货，由解放碑大药房调配"}},
            "RX_DISPENSE_MISMATCH",
            "statusReasonCodeableConcept",
        ),
        (
            "an unmade substitution's type",
            {"substitution": {"wasSubstituted": False, "type": {"coding": [{"system": v3, "code": "TE"}]}}},
            "RX_DISPENSE_MISMATCH",
            "substitution.type",
        ),
        (
            "an unmade substitution's reason",
            {"substitution": {"wasSubstituted": False, "reason": [{"text": "替换为盐酸吗啡注射液"}]}},
            "RX_DISPENSE_MISMATCH",
            "substitution.reason",
        ),
        (
            "daysSupply -5",
            {"daysSupply": {"value": -5, "unit": "天"}},
            "RX_QUANTITY_INVALID",
            "daysSupply.value",
        ),
        (
            "daysSupply 0",
            {"daysSupply": {"value": 0, "unit": "天"}},
            "RX_QUANTITY_INVALID",
            "daysSupply.value",
        ),
        (
            "daysSupply in boxes",
            {
                "daysSupply": {
                    "value": 7,
                    "unit": "盒",
                    "system": "http://unitsofmeasure.org",
                    "code": "{box}",
                }
            },
            "RX_UNIT_INVALID",
            "daysSupply.code",
        ),
    ):
        r = _send(pharmacy, _dispense(rx, **changes), rx)
        assert refused(r, 400, code)["field"] == field, name
    # Its own name, the patient as receiver, no substitution and a week's supply: recorded and confirmed.
    held = _dispense(
        rx,
        performer=[{"actor": {**signer, "display": ours}}, {"actor": {"reference": "Practitioner/PH-031"}}],
        location={"reference": "Location/counter-1", "display": ours},
        receiver=[{"reference": patient, "display": "张三"}],
        substitution={"wasSubstituted": False, "type": {"coding": [{"system": v3, "code": "N"}]}},
    )
    r = _send(pharmacy, held, rx)
    assert r.status_code == 202, r.text
    assert h.wait_chain(r.json()["id"])["chain_status"] == "confirmed"
