"""Drug traceability codes on a dispense: each form checked and normalised (GS1 per the GS1 General
Specifications: GTIN-14 mod-10, AIs (01) (17) (10) (21); 码上放心 20 digits; makers' numeric codes)."""

from __future__ import annotations

from datetime import date

import pytest

from adapters import adapt
from adapters.rx.trace_codes import counts_packages, digest, expiry, identity, normalise
from provenance.crypto.sm3 import sm3_hex
from provenance.errors import PayloadInvalid
from tests.kit.gateway import rx_dispense

# GS1's own example GTIN (GS1 General Specifications, GS1 DataMatrix examples): check digit 2.
GTIN = "09506000134352"


@pytest.mark.parametrize(
    ("scanned", "form", "normal"),
    [
        ("81234567890123456789", "nmpa20", "81234567890123456789"),
        (" 81234567890123456789 ", "nmpa20", "81234567890123456789"),
        ("1234567890123456", "numeric", "1234567890123456"),
        (f"(01){GTIN}(21)SN001", "gs1", f"(01){GTIN}(21)SN001"),
        # Any AI order as printed; one normal form: (01)(17)(10)(21).
        (f"(21)SN001(10)B7(17)271231(01){GTIN}", "gs1", f"(01){GTIN}(17)271231(10)B7(21)SN001"),
        # Raw from a DataMatrix: symbology identifier, fixed-length AIs run on, FNC1 (GS) ends variable ones.
        (f"]d201{GTIN}17271231" + "10B7\x1d21SN001", "gs1", f"(01){GTIN}(17)271231(10)B7(21)SN001"),
        (f"01{GTIN}21SN-1/A", "gs1", f"(01){GTIN}(21)SN-1/A"),
    ],
)
def test_codes_normalise(scanned: str, form: str, normal: str) -> None:
    assert normalise(scanned, "f") == (form, normal)


@pytest.mark.parametrize(
    "scanned",
    [
        "812345678901234",  # 15 digits: neither 码上放心 (20) nor a maker's (16-30)
        "812345678901234567890123456789012",  # 33 digits
        "１２３４５６７８９０１２３４５６７８９０",  # full-width digits
        f"(01){GTIN[:-1]}3(21)SN001",  # wrong GS1 check digit
        f"(01){GTIN}",  # no serial: not one box
        "(21)SN001",  # no GTIN
        f"(01){GTIN}(17)271331(21)S",  # month 13
        f"(01){GTIN}(21)S(21)T",  # an AI twice
        f"(01){GTIN}(99)X(21)S",  # an AI not read here
        f"(01){GTIN}(21){'S' * 21}",  # serial over 20 characters
        f"(01){GTIN}(21)序列",  # outside GS1's character set 82
        "ABC-123",
        "",
    ],
)
def test_malformed_codes_refused(scanned: str) -> None:
    with pytest.raises(PayloadInvalid) as e:
        normalise(scanned, "extension.0.valueString")
    assert e.value.code == "TRACE_CODE_INVALID" and e.value.details == {"field": "extension.0.valueString"}


def test_dispense_facts_carry_normal_forms_and_their_sm3() -> None:
    codes = ["81234567890123456789", f"]d201{GTIN}21SN9"]  # the golden dispense hands over 2 boxes (盒)
    facts = adapt("rx.dispense", rx_dispense("RX1", codes)).facts
    normal = ["81234567890123456789", f"(01){GTIN}(21)SN9"]
    assert facts["trace_codes"] == normal
    assert facts["trace_code_digests"] == [sm3_hex(c.encode()) for c in normal]


@pytest.mark.parametrize(
    ("codes", "field"),
    [
        ([], "extension"),  # 2 boxes handed over, none of their codes
        (["81234567890123456789"], "extension"),  # 1 code for 2 boxes
        (["81234567890123456789", "81234567890123456780", "81234567890123456781"], "extension"),
        # The same box twice, written two ways.
        ([f"(01){GTIN}(21)S1", f"01{GTIN}21S1"], "extension.1.valueString"),
    ],
)
def test_codes_distinct_and_one_per_box(codes: list[str], field: str) -> None:
    with pytest.raises(PayloadInvalid) as e:
        adapt("rx.dispense", rx_dispense("RX1", codes))
    assert e.value.code == "TRACE_CODE_INVALID" and e.value.details["field"] == field


def test_boxes_counted_by_the_coded_unit_too() -> None:
    # "盒" shown as "pack" but coded {box}: still boxes, so still one code per box.
    obj = rx_dispense("RX1", [])
    obj["quantity"]["unit"] = "pack"
    with pytest.raises(PayloadInvalid) as e:
        adapt("rx.dispense", obj)
    assert e.value.code == "TRACE_CODE_INVALID" and e.value.details["field"] == "extension"


def test_no_codes_where_the_unit_counts_doses() -> None:
    # 10 capsules: they cannot be counted against boxes, so no code is required, and none is listed (F5-4:
    # the quantity could not bound them: 1 片 listing 100 boxes marked them all dispensed).
    obj = rx_dispense("RX1", [])
    obj["quantity"] = {"value": 10, "unit": "粒", "system": "http://unitsofmeasure.org", "code": "{capsule}"}
    assert "trace_codes" not in adapt("rx.dispense", obj).facts
    obj = rx_dispense("RX1", ["81234567890123456789"])
    obj["quantity"] = {"value": 10, "unit": "粒"}
    with pytest.raises(PayloadInvalid) as e:
        adapt("rx.dispense", obj)
    assert e.value.code == "TRACE_CODE_DOSE_UNITS" and e.value.details["field"] == "extension"


@pytest.mark.parametrize(
    ("normal", "box"),
    [
        (f"(01){GTIN}(21)S", f"(01){GTIN}(21)S"),
        # Expiry and batch describe the box; GTIN and serial name it.
        (f"(01){GTIN}(17)281105(21)S", f"(01){GTIN}(21)S"),
        (f"(01){GTIN}(17)291231(10)B1(21)S", f"(01){GTIN}(21)S"),
        ("81234567890123456789", "81234567890123456789"),
        ("087207909381203097936", "87207909381203097936"),  # a leading zero is insignificant
        ("0000000000000000", "0"),
    ],
)
def test_identity_is_gtin_and_serial_or_digits_without_leading_zeros(normal: str, box: str) -> None:
    assert identity(normal) == box
    assert digest(normal) == sm3_hex(box.encode())


def test_a_digits_only_gs1_element_string_is_gs1_not_a_makers_number() -> None:
    # The raw DataMatrix string with its FNC1s lost: 01 + GTIN-14 (valid check digit) + 21 + serial.
    assert normalise(f"01{GTIN}21424242", "f") == ("gs1", f"(01){GTIN}(21)424242")
    assert normalise(f"01{GTIN}1728110521424242", "f") == ("gs1", f"(01){GTIN}(17)281105(21)424242")
    # 01 then no valid GTIN-14 (check digit), or no (21): a maker's numeric code still.
    assert normalise(f"01{GTIN[:-1]}321424242", "f") == ("numeric", f"01{GTIN[:-1]}321424242")
    assert normalise(f"01{GTIN}10424242", "f") == ("numeric", f"01{GTIN}10424242")


@pytest.mark.parametrize(
    "codes",
    [
        # One box in one dispense, written twice: another batch, the digits-only GS1 string, a leading zero.
        [f"(01){GTIN}(10)A(21)X", f"(01){GTIN}(10)B(21)X"],
        [f"(01){GTIN}(21)424242", f"01{GTIN}21424242"],
        [f"(01){GTIN}(17)281105(21)S", f"(01){GTIN}(21)S"],
        ["87207909381203097936", "087207909381203097936"],
    ],
)
def test_one_box_in_two_forms_is_listed_twice(codes: list[str]) -> None:
    with pytest.raises(PayloadInvalid) as e:
        adapt("rx.dispense", rx_dispense("RX1", codes))
    assert e.value.code == "TRACE_CODE_INVALID" and e.value.details["field"] == "extension.1.valueString"
    assert "listed twice" in e.value.message


@pytest.mark.parametrize(
    ("unit", "coded"),
    [
        ("Box", None),
        ("BOX", None),
        ("Boxes", None),
        ("盒 ", None),
        ("ｂｏｘ", None),  # full-width letters
        ("盒装", None),
        ("pack", None),
        ("瓶", None),
        ("支", None),
        ("Box", "{Box}"),
        ("件", "{Bottle}"),  # the coded unit counts packages whatever the display text says
        ("vial", "{VIAL}"),
    ],
)
def test_every_spelling_of_a_package_unit_needs_its_codes(unit: str, coded: str | None) -> None:
    obj = rx_dispense("RX1", [])
    obj["quantity"] = {"value": 2, "unit": unit}
    if coded is not None:
        obj["quantity"] |= {"system": "http://unitsofmeasure.org", "code": coded}
    with pytest.raises(PayloadInvalid) as e:
        adapt("rx.dispense", obj)
    assert e.value.code == "TRACE_CODE_INVALID" and e.value.details == {"field": "extension"}
    # With one code per package it is accepted.
    obj["extension"] = rx_dispense("RX1", [f"(01){GTIN}(21)U1", "81234567890123456789"])["extension"]
    assert len(adapt("rx.dispense", obj).facts["trace_codes"]) == 2


# The fifth attack (F5-1, F5-2): the attacker's boxes, every form a scanner or a keyboard can produce.
SERIAL = "1577980617"


@pytest.mark.parametrize(
    "written",
    [
        f"(01){GTIN}(21){SERIAL}",
        f"01{GTIN}21{SERIAL}",
        f"001{GTIN}21{SERIAL}",  # "0" + the digits-only form: one digit string, leading zeros insignificant
        f"1{GTIN}21{SERIAL}",  # the digits without their leading zeros
        f"0000001{GTIN}21{SERIAL}",
        f"]d201{GTIN}21{SERIAL}",
        f"01{GTIN}17281105\x1d21{SERIAL}",
        f"1728110501{GTIN}21{SERIAL}",  # digits only, (17) first
        f"01{GTIN}10771721{SERIAL}",  # digits only, batch first: one reading
        # With GS: each segment reads one way; (10) repeated with its value is the same element.
        f"]d2\x1d01{GTIN}21{SERIAL}\x1d107717",
        f"01{GTIN}21{SERIAL}\x1d107717\x1d107717",
        f"\x1d01{GTIN}107717\x1d21{SERIAL}\x1d",
    ],
)
def test_one_gs1_box_has_one_identity_in_every_form(written: str) -> None:
    assert identity(normalise(written, "f")[1]) == f"(01){GTIN}(21){SERIAL}"


def test_twenty_digits_reading_as_gs1_are_gs1_with_or_without_leading_zeros() -> None:
    x = f"01{GTIN}2142"
    for written in (x, "0" + x, x[1:]):
        assert normalise(written, "f") == ("gs1", f"(01){GTIN}(21)42"), written


@pytest.mark.parametrize(
    "scanned",
    [
        f"01{GTIN}21176810{7717}",  # (21) 1768107717, or (21) 1768 and (10) 7717
        f"]d201{GTIN}21S10B",
        f"01{GTIN}21AB10CD",
        f"001{GTIN}2117681017281105",  # (21) to the end, or (21) 1768 (10) 17281105, or … (17) 281105
        # F6-1 (kit6 gs.py, gs3.py, misc.py): a GS elsewhere does not end the values of another segment.
        f"01{GTIN}\x1d21K6S110B7",
        f"01{GTIN}21K6S110B7\x1d17281231",
        f"01{GTIN}21S110B7\x1d10B7",  # (10) B7 once more after a GS: (21) S110B7, or (21) S1 (10) B7
        f"]d2\x1d01{GTIN}21S110B7",  # ]d2 + GS is a leading GS
        f"]d2\x1d01{GTIN}17281231\x1d21K68AFA10B7",
        f"01{GTIN}\x1d21K6EXQ17200101",  # (21) to the end, or (21) K6EXQ (17) 200101: an expired box
    ],
)
def test_a_gs1_string_without_fnc1_that_reads_as_two_boxes_is_ambiguous(scanned: str) -> None:
    with pytest.raises(PayloadInvalid) as e:
        normalise(scanned, "extension.0.valueString")
    assert e.value.code == "TRACE_CODE_AMBIGUOUS" and e.value.details["field"] == "extension.0.valueString"
    assert len(e.value.details["readings"]) > 1


@pytest.mark.parametrize(
    ("unit", "coded"),
    [  # kit5 t04: every one was dispensed without codes.
        *((u, None) for u in ("Вох", "ВОХ", "箱", "件", "板", "盒子", "支装", "管装", "瓶装", "罐装")),
        *((u, None) for u in ("pk", "pkg", "pkt", "carton", "case", "kit", "Bxs", "bo x", "packs", "vials")),
        *(("片", c) for c in ("PK", "CT", "BO", "{pkg}", "{pck}", "{Packs}", "{盒}", "{瓶}")),
        (None, None),  # a count of items
    ],
)
def test_units_outside_the_dose_list_count_packages(unit: str | None, coded: str | None) -> None:
    assert counts_packages((unit, coded))


@pytest.mark.parametrize(
    ("unit", "coded"),
    [
        ("片", None),
        ("片", "{tbl}"),
        ("粒", "{capsule}"),
        ("ｍｌ", "mL"),
        ("µg", "ug"),
        (" Tablets ", None),
        ("袋", None),
    ],
)
def test_dose_units_count_no_packages(unit: str, coded: str | None) -> None:
    assert not counts_packages((unit, coded))


@pytest.mark.parametrize(
    ("yymmdd", "on", "last"),
    [
        ("200101", date(2026, 12, 6), date(2020, 1, 1)),
        ("281100", date(2026, 12, 6), date(2028, 11, 30)),  # day 00: the month's last day
        ("240200", date(2026, 12, 6), date(2024, 2, 29)),
        ("991231", date(2026, 12, 6), date(1999, 12, 31)),  # 73 years ahead: the previous century
        ("500101", date(2026, 12, 6), date(2050, 1, 1)),
    ],
)
def test_gs1_expiry_dates(yymmdd: str, on: date, last: date) -> None:
    assert expiry(f"(01){GTIN}(17){yymmdd}(21)S", on) == last
    assert expiry(f"(01){GTIN}(21)S", on) is None
