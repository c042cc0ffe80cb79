"""The fifth outside attack's prescription-chain findings (F5-1, 2, 3, 4, 9, 10 and the rx ones of 13),
replayed with the attacker's inputs (kit5 t02, t03, t04, t08, t15, t37, t38, t39, t45, t49, t53) through
the real HTTP API, signed with real SM2 keys, on the gateway suite's network (review not required)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters._common import canonical_json
from provenance.crypto.sm3 import sm3_hex
from provenance.demo_rx import fresh_code
from provenance.trace_code import gtin_check_ok
from tests.kit.gateway import (
    Harness,
    OrgClient,
    kit_code,
    refused,
    rx_dispense,
    rx_issue,
    rx_settle,
    with_trace_codes,
)


def _gtin() -> str:
    """A random GTIN-14 of a Chinese maker (069…) with its check digit, as the attacker's gtin14()."""
    body = "0695" + f"{secrets.randbelow(10**9):09d}"
    return next(body + d for d in "0123456789" if gtin_check_ok(body + d))


def _serial() -> str:
    """A 10-digit numeric serial like the attacker's, holding no AI (10, 17, 21): scanned without GS it
    reads as one box (a serial that holds one is TRACE_CODE_AMBIGUOUS then: F5-2)."""
    return "".join(secrets.choice("3456789") for _ in range(10))


def _rx() -> str:
    return "RXA5" + secrets.token_hex(5).upper()


def _send(client: OrgClient, kind: str, obj: dict[str, Any], rx: str) -> Any:
    """Sent as is: the client's own adapter would refuse to digest what the gateway must refuse."""
    return client.submit(kind, obj, subject=f"rx:{rx}", payload_digest=sm3_hex(canonical_json(obj)))


def _issue(h: Harness, quantity: dict[str, Any] | None = None, **changes: Any) -> str:
    rx = _rx()
    obj = rx_issue(rx)
    obj["dispenseRequest"]["quantity"] = quantity or {"value": 1, "unit": "盒"}
    obj.update(changes)
    r = h.client("hospital-2").submit("rx.issue", obj)
    assert r.status_code == 202, r.text
    return rx


def _dispense(h: Harness, rx: str, codes: list[str], quantity: dict[str, Any] | None = None) -> Any:
    obj = with_trace_codes(rx_dispense(rx, []), codes)
    obj["quantity"] = quantity or {"value": len(codes), "unit": "盒"}
    return _send(h.client("pharmacy-2"), "rx.dispense", obj, rx)


def _dispensed(h: Harness, rx: str) -> bool:
    return bool(h.client("auditor").get(f"/api/v1/rx/{rx}/check").json()["dispensed"])


def _look_up(h: Harness, code: str) -> Any:
    return h.client("regulator").get("/api/v1/rx/codes", params={"code": code})


def test_f5_1_a_gs1_box_is_one_box_in_every_digit_form(harness: Harness) -> None:
    # t39: the printed code dispensed, then "0" + its digits-only form (read as a maker's number before).
    h = harness
    gtin, serial = _gtin(), _serial()
    printed, digits = f"(01){gtin}(21){serial}", f"01{gtin}21{serial}"
    first = _dispense(h, _issue(h), [printed])
    assert first.status_code == 202, first.text
    for written in ("0" + digits, digits, "00" + digits, digits[1:]):
        rx = _issue(h)
        assert refused(_dispense(h, rx, [written]), 409, "TRACE_CODE_REUSED") == {
            "field": "extension",
            "code": printed,
        }, written
        assert not _dispensed(h, rx)
        doc = _look_up(h, written).json()
        assert (doc["form"], doc["identity"], doc["dispense"]["record"]) == (
            "gs1",
            printed,
            first.json()["id"],
        )

    # t02, t03: 20 digits that read as GS1 (01 + GTIN + 21 + 2 digits) and their spelling with a leading 0.
    gtin = _gtin()
    x = f"01{gtin}21{secrets.randbelow(100):02d}"
    assert len(x) == 20
    rx = _issue(h, {"value": 2, "unit": "盒"})
    details = refused(_dispense(h, rx, [x, "0" + x]), 400, "TRACE_CODE_INVALID")
    assert details == {"field": "extension.1.valueString"} and not _dispensed(h, rx)
    assert _dispense(h, _issue(h), [x]).status_code == 202
    refused(_dispense(h, _issue(h), ["0" + x]), 409, "TRACE_CODE_REUSED")
    assert _look_up(h, x).json()["form"] == "gs1"

    # t53: both forms in one bulk request, two prescriptions: the second is the same box.
    gtin, serial = _gtin(), _serial()
    pharmacy = h.client("pharmacy-2")
    items = []
    for code in (f"(01){gtin}(21){serial}", f"001{gtin}21{serial}"):
        rx = _issue(h)
        obj = with_trace_codes(rx_dispense(rx, []), [code])
        obj["quantity"] = {"value": 1, "unit": "盒"}
        body = pharmacy.body(
            "rx.dispense", obj, subject=f"rx:{rx}", payload_digest=sm3_hex(canonical_json(obj))
        )
        items.append({**body, "access_code": str(kit_code(rx))})
    r = h.http.post("/api/v1/records:bulk", json={"records": items}, headers=pharmacy.headers)
    assert r.status_code == 200, r.text
    out = [(it["status"], (it["error"] or {}).get("code")) for it in r.json()["items"]]
    assert out == [("accepted", None), ("rejected", "TRACE_CODE_REUSED")], out


def test_f5_2_a_gs1_string_without_fnc1_that_reads_as_two_boxes_is_refused(harness: Harness) -> None:
    # t08: box (01)G(10)7717(21)1768 listed three times in one dispense of 3, two of them scanned without GS.
    h = harness
    gtin = _gtin()
    printed = f"(01){gtin}(10)7717(21)1768"
    serial_first, batch_first = f"01{gtin}211768107717", f"01{gtin}107717211768"
    rx = _issue(h, {"value": 3, "unit": "盒"})
    details = refused(_dispense(h, rx, [printed, serial_first, batch_first]), 400, "TRACE_CODE_AMBIGUOUS")
    assert details["field"] == "extension.1.valueString"
    assert {f"(01){gtin}(10)7717(21)1768", f"(01){gtin}(21)1768107717"} <= set(details["readings"])
    assert not _dispensed(h, rx)
    # The batch-first string reads one way only: the same box as the printed code, listed twice.
    rx = _issue(h, {"value": 2, "unit": "盒"})
    details = refused(_dispense(h, rx, [printed, batch_first]), 400, "TRACE_CODE_INVALID")
    assert details == {"field": "extension.1.valueString"} and not _dispensed(h, rx)
    # The look-up refuses to guess too; with FNC1 (GS) the scan is one box.
    assert refused(_look_up(h, f"]d2{serial_first}"), 400, "TRACE_CODE_AMBIGUOUS")["field"] == "code"
    assert _look_up(h, f"]d201{gtin}211768\x1d107717").json()["identity"] == f"(01){gtin}(21)1768"


def test_f5_3_only_dose_units_go_without_codes(harness: Harness) -> None:
    # t04: invisible characters in a unit are refused; look-alike and other package units need their codes.
    h = harness
    for unit in ("盒\u200b", "盒\u00ad", "盒\ufe0f", "盒\u2060", "b\u200box"):
        obj = rx_issue(rx := _rx())
        obj["dispenseRequest"]["quantity"] = {"value": 2, "unit": unit}
        r = _send(h.client("hospital-2"), "rx.issue", obj, rx)
        assert refused(r, 400, "RX_UNIT_INVALID") == {"field": "dispenseRequest.quantity.unit"}, repr(unit)
    ucum = "http://unitsofmeasure.org"
    packages = [
        {"unit": "Вох"},
        {"unit": "箱"},
        {"unit": "盒子"},
        {"unit": "pk"},
        {"unit": "bo x"},
        {"unit": "片", "system": "urn:un:unece:rec20", "code": "PK"},
        {"unit": "片", "system": ucum, "code": "{pkg}"},
        {"unit": "片", "system": ucum, "code": "{盒}"},
    ]
    for unit in packages:
        quantity = {"value": 2, **unit}
        rx = _issue(h, quantity)
        details = refused(_dispense(h, rx, [], dict(quantity)), 400, "TRACE_CODE_INVALID")
        assert details == {"field": "extension"} and not _dispensed(h, rx), unit


def test_f5_4_a_dispense_in_dose_units_lists_no_codes(harness: Harness) -> None:
    # t49: 1 片 listing 100 sequential 码上放心 codes marked them all dispensed.
    h = harness
    base = secrets.randbelow(10**12)
    codes = [f"8{(base + i):019d}" for i in range(100)]
    tablet = {"value": 1, "unit": "片"}
    rx = _issue(h, tablet)
    details = refused(_dispense(h, rx, codes, dict(tablet)), 400, "TRACE_CODE_DOSE_UNITS")
    assert details == {"field": "extension", "unit": "片"} and not _dispensed(h, rx)
    assert _look_up(h, codes[57]).json()["dispensed"] is False
    assert _dispense(h, _issue(h), [codes[57]]).status_code == 202  # the real box, later
    assert _dispense(h, rx, [], dict(tablet)).status_code == 202  # the tablet, without codes


def test_f5_9_a_box_past_its_expiry_is_refused(harness: Harness) -> None:
    # t38: (17) 200101, handed over in 2026.
    h = harness
    gtin, serial = _gtin(), secrets.token_hex(3).upper()
    rx = _issue(h)
    details = refused(_dispense(h, rx, [f"(01){gtin}(17)200101(21){serial}"]), 400, "TRACE_CODE_EXPIRED")
    assert details == {
        "field": "extension.0.valueString",
        "code": f"(01){gtin}(17)200101(21){serial}",
        "expiry": "2020-01-01",
    }
    assert not _dispensed(h, rx)
    later = (datetime.now(UTC) + timedelta(days=400)).strftime("%y%m00")  # day 00: the month's last day
    assert _dispense(h, rx, [f"(01){gtin}(17){later}(21){serial}"]).status_code == 202


def test_f5_10_hand_over_and_settlement_dates_follow_the_prescription(harness: Harness) -> None:
    h = harness
    now = datetime.now(UTC)
    # t37: a month says no day; it was recorded as the month's first instant, before authoredOn.
    rx = _issue(h)
    month = {**rx_dispense(rx, [fresh_code()]), "quantity": {"value": 1, "unit": "盒"}}
    month["whenHandedOver"] = now.strftime("%Y-%m")
    assert refused(_send(h.client("pharmacy-2"), "rx.dispense", month, rx), 400, "RX_RULE_VIOLATION") == {
        "field": "whenHandedOver"
    }
    # Valid from two hours ago, written five minutes ago: handed over an hour ago is before it was written.
    obj = rx_issue(rx := _rx())
    obj["dispenseRequest"]["quantity"] = {"value": 1, "unit": "盒"}
    obj["dispenseRequest"]["validityPeriod"]["start"] = (now - timedelta(hours=2)).isoformat()
    assert h.client("hospital-2").submit("rx.issue", obj).status_code == 202
    early = {**rx_dispense(rx, [fresh_code()]), "quantity": {"value": 1, "unit": "盒"}}
    early["whenHandedOver"] = (now - timedelta(hours=1)).isoformat()
    early.pop("whenPrepared")
    r = _send(h.client("pharmacy-2"), "rx.dispense", early, rx)
    assert refused(r, 400, "RX_HANDED_OVER_BEFORE_ISSUE") == {"field": "whenHandedOver"}
    assert not _dispensed(h, rx)
    # t15: settled_at 2020-01-01, before the dispense.
    dispense = _dispense(h, rx, [fresh_code()])
    assert dispense.status_code == 202, dispense.text
    insurer = h.client("insurer")
    settle = {**rx_settle(rx, dispense.json()["id"]), "settled_at": "2020-01-01T00:00:00Z"}
    details = refused(insurer.submit("rx.settle", settle), 400, "RX_SETTLED_BEFORE_DISPENSE")
    assert details == {"rx_id": rx, "field": "settled_at"}
    assert insurer.submit("rx.settle", rx_settle(rx, dispense.json()["id"])).status_code == 202


def test_f5_13_prescription_bounds(harness: Harness) -> None:
    h = harness
    insurer = h.client("insurer")
    settled = []
    for _ in range(3):
        rx = _issue(h)
        d = _dispense(h, rx, [fresh_code()])
        assert d.status_code == 202, d.text
        settled.append((rx, d.json()["id"]))
    # t15: a settlement id differing only in case is the same id.
    sid = "YB" + secrets.token_hex(6).upper()
    assert insurer.submit("rx.settle", rx_settle(*settled[0], settlement_id=sid)).status_code == 202
    r = insurer.submit("rx.settle", rx_settle(*settled[1], settlement_id=sid.lower()))
    assert refused(r, 409, "RX_SETTLEMENT_ID_REUSED")["settlement_id"] == sid.lower()
    # t15: 999999999.99 yuan for one box.
    huge = {**rx_settle(*settled[2]), "fund_paid": "999999999.99", "personal_paid": "999999999.99"}
    r = _send(insurer, "rx.settle", huge, settled[2][0])
    assert refused(r, 400, "RX_AMOUNT_INVALID") == {"field": "fund_paid"}
    assert insurer.submit("rx.settle", rx_settle(*settled[2])).status_code == 202
    # t06: 150 boxes could never be dispensed (a dispense lists at most 100 codes).
    obj = rx_issue(rx := _rx())
    obj["dispenseRequest"]["quantity"] = {"value": 150, "unit": "盒"}
    r = _send(h.client("hospital-2"), "rx.issue", obj, rx)
    assert refused(r, 400, "RX_QUANTITY_INVALID") == {"field": "dispenseRequest.quantity.value"}
    # t45: 12,000 contained Medications, each referenced so that dom-3 holds.
    obj = rx_issue(rx := _rx())
    medication = obj.pop("medicationCodeableConcept")
    obj["contained"] = [
        {"resourceType": "Medication", "id": f"m{i}", "code": medication} for i in range(12000)
    ]
    obj["medicationReference"] = {"reference": "#m0"}
    obj["supportingInformation"] = [{"reference": f"#m{i}"} for i in range(1, 12000)]
    r = _send(h.client("hospital-2"), "rx.issue", obj, rx)
    assert refused(r, 400, "FHIR_INVALID") == {"field": "contained"}
    assert h.client("auditor").get(f"/api/v1/rx/{rx}/check").status_code == 404
