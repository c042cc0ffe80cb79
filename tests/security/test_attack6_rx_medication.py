"""The sixth outside attack's finding 2 (kit6 coding.py, misc.py): a dispense naming another drug beside
the prescribed code, or "more than" a quantity, replayed with the attacker's inputs through the real HTTP
API, signed with real SM2 keys, on the gateway suite's network."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from adapters._common import canonical_json
from provenance.crypto.sm3 import sm3_hex
from provenance.demo_rx import fresh_code
from tests.adapters.test_rx_adapter import MORPHINE_INJECTION
from tests.kit.gateway import Harness, OrgClient, refused, rx_dispense, rx_issue, with_trace_codes

YB = "http://www.nhsa.gov.cn/fhir/CodeSystem/yb-drug"
AMOXICILLIN = {"system": YB, "code": "XJ01CAA040A001010100139", "display": "阿莫西林胶囊 0.25g×24粒"}
MORPHINE_RXNORM = {
    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "code": "7052",
    "display": "morphine",
}


def _send(client: OrgClient, kind: str, obj: dict[str, Any], rx: str) -> Any:
    """Sent as is: the client's own adapter would refuse to digest what the gateway must refuse."""
    return client.submit(kind, obj, subject=f"rx:{rx}", payload_digest=sm3_hex(canonical_json(obj)))


def _issued(h: Harness) -> str:
    rx = "RXA6" + secrets.token_hex(5).upper()
    obj = rx_issue(rx)
    obj["medicationCodeableConcept"] = {"coding": [AMOXICILLIN], "text": "阿莫西林胶囊"}  # the attack's
    obj["dispenseRequest"]["quantity"] = {"value": 1, "unit": "盒"}
    r = h.client("hospital-2").submit("rx.issue", obj)
    assert r.status_code == 202, r.text
    return rx


def _dispense(rx: str, **changes: Any) -> dict[str, Any]:
    obj = with_trace_codes(rx_dispense(rx, []), [fresh_code()])
    obj["quantity"] = {"value": 1, "unit": "盒"}
    obj.update(copy.deepcopy(changes))
    return obj


def test_f6_2_a_dispense_says_no_more_about_the_drug_than_its_prescription(harness: Harness) -> None:
    h = harness
    pharmacy = h.client("pharmacy-2")
    rx = _issued(h)
    morphine_beside = {"coding": [AMOXICILLIN, MORPHINE_RXNORM], "text": "吗啡注射液"}
    morphine_words = {
        "coding": [{**AMOXICILLIN, "display": "盐酸吗啡注射液 10mg"}],
        "text": "盐酸吗啡注射液",
    }
    contained = {
        "contained": [
            {
                "resourceType": "Medication",
                "id": "m1",
                "code": {"coding": [{"system": YB, "code": AMOXICILLIN["code"]}]},
                **MORPHINE_INJECTION,
            }
        ],
        "medicationReference": {"reference": "#m1"},
    }
    for name, changes in (
        ("extra coding + other text", {"medicationCodeableConcept": morphine_beside}),
        ("same code, other display/text", {"medicationCodeableConcept": morphine_words}),
    ):
        r = _send(pharmacy, "rx.dispense", _dispense(rx, **changes), rx)
        assert refused(r, 400, "RX_DISPENSE_MISMATCH") == {"field": "medication[x]"}, name
        if name.startswith("extra"):  # the error names the code system the prescription lacks
            assert MORPHINE_RXNORM["system"] in r.json()["error"]["message"]
    obj = _dispense(rx, **contained)
    obj.pop("medicationCodeableConcept")
    r = _send(pharmacy, "rx.dispense", obj, rx)
    assert refused(r, 400, "RX_DISPENSE_MISMATCH") == {"field": "medication[x]"}
    # misc.py: "more than one box" is no quantity, in a dispense or a prescription (R4 SimpleQuantity).
    more = _dispense(rx, quantity={"value": 1, "unit": "盒", "comparator": ">"})
    r = _send(pharmacy, "rx.dispense", more, rx)
    assert refused(r, 400, "RX_QUANTITY_INVALID") == {"field": "quantity.comparator"}
    issue = rx_issue(other := "RXA6" + secrets.token_hex(5).upper())
    issue["dispenseRequest"]["quantity"]["comparator"] = "<"
    r = _send(h.client("hospital-2"), "rx.issue", issue, other)
    assert refused(r, 400, "RX_QUANTITY_INVALID") == {"field": "dispenseRequest.quantity.comparator"}
    assert h.client("auditor").get(f"/api/v1/rx/{other}/check").status_code == 404
    # The prescription's own words, fewer of them, and a batch the pharmacy adds: the box goes in.
    same = {"coding": [{"system": YB, "code": AMOXICILLIN["code"]}], "text": " 阿莫西林胶囊 "}
    stocked = {
        "contained": [
            {
                "resourceType": "Medication",
                "id": "m1",
                "code": same,
                "batch": {"lotNumber": "B7", "expirationDate": "2028-12-31"},
            }
        ],
        "medicationReference": {"reference": "#m1"},
    }
    obj = _dispense(rx, **stocked)
    obj.pop("medicationCodeableConcept")
    r = pharmacy.submit("rx.dispense", obj)
    assert r.status_code == 202, r.text
    assert h.wait_chain(r.json()["id"])["chain_status"] == "confirmed"
