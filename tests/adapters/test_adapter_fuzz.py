"""Hypothesis: any input either adapts (and its canonical form is a fixed point) or raises our own error."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import KINDS, adapt
from adapters.env.stclass import family_of
from adapters.hj212 import DATA_FLAGS, crc16, encode_packet, parse_packet
from provenance.errors import ProvenanceError
from tests.kit.adapter_samples import good_samples, kind_of

# ADAPTER_FUZZ_EXAMPLES=5000 for a deeper run; the default keeps the suite fast.
FUZZ = settings(
    max_examples=int(os.environ.get("ADAPTER_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
SAMPLES = [(kind_of(p), p.read_bytes()) for p in good_samples()]
JSON_SAMPLES = [(k, json.loads(raw)) for k, raw in SAMPLES if raw.startswith(b"{")]


def check_adapt(kind: str, payload: Any) -> None:
    """The property every adapter must keep."""
    try:
        a = adapt(kind, payload)
    except ProvenanceError:
        return
    again = adapt(kind, a.canonical)
    assert again.canonical == a.canonical
    assert again.subject == a.subject
    assert json.loads(json.dumps(a.facts)) == a.facts


def check_packet(packet: bytes | str) -> None:
    try:
        p = parse_packet(packet)
    except ProvenanceError:
        return
    text = p.encode()
    assert parse_packet(text).data_segment() == p.data_segment()
    check_adapt("env.reading", text.encode())


@FUZZ
@given(st.binary(max_size=300))
def test_hj212_arbitrary_bytes(data: bytes) -> None:
    check_packet(data)
    check_packet(b"##" + data)


@FUZZ
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200))
def test_hj212_framed_segment(segment: str) -> None:
    # Correct frame, length and CRC around arbitrary text: exercises the data-segment grammar itself.
    check_packet(f"##{len(segment):04d}{segment}{crc16(segment.encode()):04X}\r\n")
    body = f"ST=32;CN=2011;PW=123456;MN=A1;CP=&&{segment}&&"
    check_packet(f"##{len(body):04d}{body}{crc16(body.encode()):04X}\r\n")


@FUZZ
@given(st.data())
def test_hj212_mutated_golden_packet(data: st.DataObject) -> None:
    raw = bytearray(next(raw for kind, raw in SAMPLES if kind == "env.reading"))
    i = data.draw(st.integers(0, len(raw) - 1))
    op = data.draw(st.sampled_from(["replace", "delete", "insert"]))
    byte = data.draw(st.integers(0, 255))
    if op == "replace":
        raw[i] = byte
    elif op == "delete":
        del raw[i]
    else:
        raw.insert(i, byte)
    check_packet(bytes(raw))


decimals = st.builds(
    lambda whole, frac: f"{whole}.{frac}" if frac else str(whole),
    st.integers(-999_999, 999_999),
    st.sampled_from(["", "0", "5", "25", "1234"]),
)
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
pollutant_fields = st.fixed_dictionaries(
    {"Rtd": decimals},
    optional={
        "Avg": decimals,
        "Min": decimals,
        "Max": decimals,
        "Cou": decimals,
        "Flag": st.sampled_from(sorted(DATA_FLAGS)),
    },
)


@FUZZ
@given(
    mn=st.text(alphabet=ALNUM, min_size=1, max_size=24),
    cn=st.sampled_from(["2011", "2051", "2061", "2031"]),
    pollutants=st.dictionaries(
        st.builds("{}{:05d}".format, st.sampled_from("aw"), st.integers(0, 99_999)),
        pollutant_fields,
        min_size=1,
        max_size=6,
    ),
    flag=st.none() | st.sampled_from([4, 5]),
)
def test_hj212_encode_parse_roundtrip(
    mn: str, cn: str, pollutants: dict[str, dict[str, str]], flag: int | None
) -> None:
    # a class of the codes' medium (water or air source); codes of both: noise (ST 23), held to no family
    st_ = {"w": "32", "a": "31"}.get(family_of(pollutants) or "", "23")
    if cn != "2011":  # a statistics upload's value is its Avg, and it carries no Rtd (HJ 212-2017)
        pollutants = {
            c: {"Avg": f["Rtd"]} | {k: v for k, v in f.items() if k != "Rtd"} for c, f in pollutants.items()
        }
    text = encode_packet(
        st=st_, cn=cn, pw="123456", mn=mn, flag=flag, data_time="20261125093000", pollutants=pollutants
    )
    assert parse_packet(text).encode() == text
    a = adapt("env.reading", text.encode())
    assert a.subject == f"station:{mn}"
    normalised = json.loads(a.canonical)
    # The normal form keeps every field but the station's password, and is itself the JSON form.
    assert "pw" not in normalised and "packet" not in normalised and "123456" not in a.canonical.decode()
    again = adapt("env.reading", normalised)
    assert again.facts == a.facts and again.digest == a.digest


@FUZZ
@given(kind=st.sampled_from(KINDS), value=json_values)
def test_arbitrary_json_into_every_adapter(kind: str, value: Any) -> None:
    check_adapt(kind, {"v": value} if not isinstance(value, dict) else value)
    try:
        raw = json.dumps(value).encode()
    except ValueError:
        return
    check_adapt(kind, raw)


@FUZZ
@given(kind=st.sampled_from(KINDS), data=st.binary(max_size=200))
def test_arbitrary_bytes_into_every_adapter(kind: str, data: bytes) -> None:
    check_adapt(kind, data)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@FUZZ
@given(data=st.data())
def test_mutated_golden_documents(data: st.DataObject) -> None:
    # Golden documents with one element replaced or removed: gets past the first checks into the rules.
    kind, doc = data.draw(st.sampled_from(JSON_SAMPLES))
    doc = json.loads(json.dumps(doc))
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if data.draw(st.booleans()):
        parent[path[-1]] = data.draw(json_values)
    else:
        del parent[path[-1]]
    check_adapt(kind, doc)
