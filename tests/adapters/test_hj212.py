"""HJ 212-2017 codec and the ``env.reading`` adapter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters import AdaptContext, adapt
from adapters.errors import (
    EnvRuleViolation,
    Hj212CrcMismatch,
    Hj212LengthMismatch,
    Hj212Malformed,
    PayloadInvalid,
)
from adapters.hj212 import crc16, encode_packet, parse_packet
from tests.kit.adapter_samples import ASSETS

HJ = ASSETS / "hj212"
WATER = (HJ / "water-realtime-2011.txt").read_bytes()
STANDARD_EXAMPLE = (HJ / "standard-example-1062.txt").read_bytes()

FAULTS = {
    "crc-mismatch": ("HJ212_CRC_MISMATCH", Hj212CrcMismatch),
    "length-mismatch": ("HJ212_LENGTH_MISMATCH", Hj212LengthMismatch),
    "malformed": ("HJ212_MALFORMED", Hj212Malformed),
}


def test_crc_reproduces_the_standards_example() -> None:
    segment = STANDARD_EXAMPLE[6:-6]
    assert len(segment) == 101
    assert crc16(segment) == 0x1C80
    assert parse_packet(STANDARD_EXAMPLE).cp == {"RtdInterval": "30"}


def _appendix_crc16(data: bytes) -> int:
    # The appendix's C routine, bit by bit: the oracle for the table-driven implementation.
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_crc_matches_the_appendix_routine() -> None:
    for path in HJ.glob("*.txt"):
        data = path.read_bytes()
        assert crc16(data) == _appendix_crc16(data)
        assert crc16(data[6:-6]) == _appendix_crc16(data[6:-6])
    for n in range(300):
        data = bytes((n * 37 + i * 11) % 256 for i in range(n))
        assert crc16(data) == _appendix_crc16(data)


def test_crc_is_not_modbus() -> None:
    # CRC-16/MODBUS of "123456789" is 0x4B37; the HJ 212 appendix algorithm gives another value.
    assert crc16(b"123456789") != 0x4B37


def test_lowercase_crc_accepted() -> None:
    text = WATER.decode()
    lower = text[:-6] + text[-6:-2].lower() + "\r\n"
    assert parse_packet(lower).mn == "33010020261125WS0001"


@pytest.mark.parametrize(
    "path", sorted(p for p in HJ.glob("*.txt") if p.name.startswith(tuple(FAULTS))), ids=lambda p: p.name
)
def test_fault_samples(path: Path) -> None:
    code, cls = next(v for k, v in FAULTS.items() if path.name.startswith(k))
    with pytest.raises(cls) as e:
        adapt("env.reading", path.read_bytes())
    assert e.value.code == code
    assert "part" in e.value.details


def test_parse_then_encode_is_byte_exact() -> None:
    for path in HJ.glob("*.txt"):
        if path.name.startswith(tuple(FAULTS)):
            continue
        text = path.read_bytes().decode("ascii")
        assert parse_packet(text).encode() == text


def test_several_pollutants_with_all_fields() -> None:
    p = parse_packet((HJ / "water-hourly-2061.txt").read_bytes())
    assert p.cn == "2061" and p.data_time == "20261125090000"
    assert p.pollutants["w01018"] == {
        "Cou": "1.296",
        "Min": "25.1",
        "Avg": "28.0",
        "Max": "31.4",
        "Flag": "N",
    }
    assert set(p.pollutants) == {"w01018", "w21003", "w01001", "w00000"}


def test_flags_in_facts() -> None:
    a = adapt("env.reading", (HJ / "air-quality-minute-2051-flags.txt").read_bytes())
    assert a.facts["flags"]["a21026"] == "C"
    assert a.facts["abnormal"] == ["a05024", "a21004", "a21026"]
    assert a.facts["pollutants"]["a34004"] == 35.0
    assert a.facts["data_time"] == "2026-11-25T01:30:00Z"  # DataTime is Beijing time


def test_offset_from_context() -> None:
    a = adapt("env.reading", WATER, AdaptContext(hj212_utc_offset=timedelta(0)))
    assert a.facts["data_time"] == "2026-11-25T09:30:00Z"


@pytest.mark.parametrize(
    ("segment", "part"),
    [
        ("ST=32;CN=2011;PW=123456;MN=A1;CP=&&DataTime=20261125093000;w01018-Rtd=1&", "CP"),
        (
            "ST=32;CN=2011;PW=123456;MN=A1;CP=&&DataTime=20261125093000;w01018-Rtd=1,w01018-Rtd=2&&",
            "w01018-Rtd",
        ),
        ("ST=32;CN=2011;PW=123456;MN=A1;XX=1;CP=&&&&", "XX"),
        ("ST=32;CN=2011;PW=123456;MN=A1;CP=&&DataTime=20261125093000;w01018&&", "CP"),
        ("ST=32;CN=2011;PW=123456;MN=A1;Flag=7;CP=&&&&", "PNUM"),
        ("ST=32;CN=2011;PW=123456;MN=A1;Flag=7;PNUM=2;PNO=3;CP=&&&&", "PNO"),
        ("ST=32;CN=2011;PW=123456;MN=A1;PNUM=2;PNO=1;CP=&&&&", "PNUM"),
        ("ST=32;ST=32;CN=2011;PW=123456;MN=A1;CP=&&&&", "ST"),
        ("ST=3;CN=2011;PW=123456;MN=A1;CP=&&&&", "ST"),
        ("QN=20261399000000000;ST=32;CN=2011;PW=123456;MN=A1;CP=&&&&", "QN"),
        ("ST=32;CN=2011;PW=123456;MN=A1;CP=&&DataTime=20261125093000;-Rtd=1&&", "-Rtd"),
        ("ST=32;CN=2011;PW=123456;MN=A1;CP=&&DataTime=20261125093000;w01018-Rtd=1e5&&", "w01018-Rtd"),
        ("ST=32;CN=2011;PW=123456;MN=A1CP=&&&&", "header"),
    ],
)
def test_malformed_segments_name_the_part(segment: str, part: str) -> None:
    packet = f"##{len(segment):04d}{segment}{crc16(segment.encode()):04X}\r\n"
    with pytest.raises(Hj212Malformed) as e:
        parse_packet(packet)
    assert e.value.code == "HJ212_MALFORMED"
    assert e.value.details["part"] == part


@pytest.mark.parametrize(
    ("packet", "part"),
    [
        (b"", "header"),
        (b"#0010", "header"),
        (b"##00a1QN=1\r\n", "length"),
        (b"##0000\r\n", "crc"),
        (b"##0000ZZZZ\r\n", "crc"),
        ("##0002\u00e9\u00e9ABCD\r\n".encode(), "packet"),
        (WATER.rstrip(b"\r\n") + b"\n", "trailer"),
    ],
)
def test_malformed_frames(packet: bytes, part: str) -> None:
    with pytest.raises(Hj212Malformed) as e:
        parse_packet(packet)
    assert e.value.details["part"] == part


def test_subpacket_roundtrip() -> None:
    seg = "ST=32;CN=2011;PW=123456;MN=A1;Flag=7;PNUM=2;PNO=1;CP=&&DataTime=20261125093000;w01018-Rtd=1.5&&"
    text = f"##{len(seg):04d}{seg}{crc16(seg.encode()):04X}\r\n"
    p = parse_packet(text)
    assert (p.flag, p.pnum, p.pno) == (7, 2, 1)
    assert p.encode() == text
    assert adapt("env.reading", text.encode()).facts["mn"] == "A1"


def test_encode_packet_refuses_what_parse_refuses() -> None:
    with pytest.raises(Hj212Malformed):
        encode_packet(st="32", cn="2011", pw="123456", mn="A;1", data_time="20261125093000")
    with pytest.raises(Hj212Malformed):
        encode_packet(st="32", cn="2011", pw="123456", mn="A1", pollutants={"w01018": {"Flag": "Z"}})


def test_json_form_equals_packet_form() -> None:
    from_packet = adapt("env.reading", WATER)
    normalised = json.loads(from_packet.canonical)
    from_json = adapt("env.reading", normalised)
    assert from_json.subject == from_packet.subject == "station:33010020261125WS0001"
    assert from_json.digest == from_packet.digest  # one normal form, whichever way the reading came
    assert from_json.facts == from_packet.facts


def test_the_station_password_is_not_part_of_a_reading() -> None:
    """HJ 212's PW authenticates a station to a data platform: a credential, never kept in the signed,
    logged payload (#23 finding 8). A packet's normal form leaves it (and the packet text) out; the JSON form
    carrying it is refused, naming the member."""
    pw = WATER.decode().split("PW=")[1].split(";")[0]
    normalised = adapt("env.reading", WATER).canonical.decode()
    assert f'"{pw}"' not in normalised and "PW=" not in normalised
    doc = json.loads(normalised)
    for member, value in (("pw", pw), ("packet", WATER.decode())):
        with pytest.raises(PayloadInvalid) as e:
            adapt("env.reading", {**doc, member: value})
        assert (e.value.code, e.value.details["field"]) == ("PAYLOAD_INVALID", member)
        assert "password" in e.value.message


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"mn": "A;CN=2011"}, "HJ212_MALFORMED"),
        ({"pollutants": {"w01018": {"Rtd": "1", "Flag": "Q"}}}, "HJ212_MALFORMED"),
        ({"pollutants": {"w01018": {}}}, "HJ212_MALFORMED"),
        ({"cp": {"DataTime": "20261125093000"}}, "PAYLOAD_INVALID"),
        ({"pollutants": {"w01018": {"Rtd": 1.5}}}, "PAYLOAD_INVALID"),
        ({"extra": 1}, "PAYLOAD_INVALID"),
        ({"pollutants": {}}, "ENV_RULE_VIOLATION"),
        ({"cn": "1062"}, "ENV_RULE_VIOLATION"),
        # #23 finding 8: values that are no finite decimal, field names in another case, no value at all
        ({"pollutants": {"w01018": {"Rtd": "NaN"}}}, "HJ212_MALFORMED"),
        ({"pollutants": {"w01018": {"Rtd": "Infinity"}}}, "HJ212_MALFORMED"),
        ({"pollutants": {"w01018": {"Rtd": "1e999"}}}, "HJ212_MALFORMED"),
        ({"pollutants": {"w01018": {"rtd": "NaN", "Flag": "N"}}}, "HJ212_MALFORMED"),
        ({"pollutants": {"w01018": {"Rtd": "1", "flag": "X"}}}, "HJ212_MALFORMED"),
        ({"pollutants": {"w01018": {"Flag": "N"}}}, "ENV_RULE_VIOLATION"),
    ],
)
def test_json_form_rejections(change: dict[str, object], code: str) -> None:
    base = {"mn": "A1", "st": "32", "cn": "2011", "data_time": "20261125093000"}
    payload = {**base, "pollutants": {"w01018": {"Rtd": "12.3", "Flag": "N"}}, **change}
    with pytest.raises(PayloadInvalid) as e:
        adapt("env.reading", payload)
    assert e.value.code == code


def test_not_a_reading_and_future_reading() -> None:
    with pytest.raises(EnvRuleViolation) as e:
        adapt("env.reading", STANDARD_EXAMPLE)
    assert e.value.details["field"] == "CN"
    now = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # the packet is for 01:30 UTC
    with pytest.raises(EnvRuleViolation) as e:
        adapt("env.reading", WATER, AdaptContext(now=now))
    assert e.value.details["field"] == "DataTime"
    adapt("env.reading", WATER, AdaptContext(now=now + timedelta(minutes=26)))


@pytest.mark.parametrize("change", [{"qn": None}, {"cp": {}}, {"flag": None}])
def test_json_form_must_be_normal(change: dict[str, object]) -> None:
    base = {"mn": "A1", "st": "32", "cn": "2011", "data_time": "20261125093000"}
    with pytest.raises(PayloadInvalid) as e:
        adapt("env.reading", {**base, "pollutants": {"w01018": {"Rtd": "1"}}, **change})
    assert e.value.details["field"] == next(iter(change))


def test_client_signs_the_normalised_document() -> None:
    # A station holding a packet signs the digest of its normalised JSON form and sends that form.
    from provenance.records import Envelope

    adapted = adapt("env.reading", WATER)
    doc = adapted.document()
    env = Envelope.create(kind="env.reading", subject=adapted.subject, org="st-1", payload=doc)
    assert env.payload_digest == adapted.digest == adapt("env.reading", doc).digest
