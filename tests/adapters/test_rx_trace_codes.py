"""Drug traceability codes on a dispense: each form checked and normalised (GS1 per the GS1 General
Specifications: GTIN-14 mod-10, AIs (01) (17) (10) (21); 码上放心 20 digits; makers' numeric codes)."""

from __future__ import annotations

import pytest

from adapters import adapt
from adapters.rx.trace_codes import digest, identity, normalise
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
