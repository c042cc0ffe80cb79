import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.crypto import SM2PrivateKey, sm3_hex
from provenance.errors import FormatError, RecordInvalid, SignatureInvalid
from provenance.records import (
    Envelope,
    SignedRecord,
    b64decode,
    canonical_bytes,
    digest_of,
    load_json,
    sign_envelope,
)


def test_canonical_bytes_rfc8785_example():
    # RFC 8785 §3.2.2: the specification's own input and output. Read with the standard parser: its
    # 333333333.33333329 is not the value a reader holds, which `load_json` refuses (see below).
    value = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_bytes(value) == expected.encode("utf-8")


def test_number_text_must_be_the_value_read():
    """Finding 8 of the second attack: 1e-400 reads as 0 and 0.10000000000000000555 as 0.1, so a bundle
    showed one number while the digest covered another. The strict reader refuses a number whose text is not
    exactly the value read (the shortest form), and accepts every other spelling of that value."""
    for text, shortest in (("1e-400", "0.0"), ("0.10000000000000000555", "0.1"), ("1e400", "inf")):
        with pytest.raises(FormatError, match=f"not exactly the value a reader holds \\({shortest}\\)"):
            load_json(f'{{"a": {text}}}')
    same = ["0.1", "1E2", "100.0", "0.5e-2", "5e-324", "-0.0", "0e999999999999999999999", "2.5E+3", "1.50"]
    assert load_json(f"[{', '.join(same)}]") == [0.1, 100.0, 100.0, 0.005, 5e-324, -0.0, 0.0, 2500.0, 1.5]
    assert load_json("[333333333.3333333, 1e-27, 1E30]") == [333333333.3333333, 1e-27, 1e30]
    with pytest.raises(FormatError):
        load_json("[333333333.33333329]")  # RFC 8785's example input: not the double it reads as


def test_canonical_bytes_rejects_non_json_values():
    with pytest.raises(FormatError):
        canonical_bytes({"x": float("nan")})
    with pytest.raises(FormatError):
        canonical_bytes({"x": {1, 2}})


def test_envelope_digest_and_signature_roundtrip():
    key = SM2PrivateKey.generate()
    payload = {"resourceType": "MedicationRequest", "id": "rx-1", "status": "active"}
    env = Envelope.create(kind="rx.issue", subject="rx:rx-1", org="hosp-1", payload=payload)
    assert env.payload_digest == sm3_hex(canonical_bytes(payload)) == digest_of(payload)
    assert env.digest == sm3_hex(env.canonical())
    assert len(env.nonce) == 32
    signed = sign_envelope(env, key)
    key.public_key().verify(env.canonical(), signed.signature)
    again = SignedRecord.from_dict(signed.to_dict())
    assert again == signed and again.record_id == env.digest
    # Same envelope content, fresh nonce: a different record.
    other = Envelope.create(kind="rx.issue", subject="rx:rx-1", org="hosp-1", payload=payload)
    assert other.nonce != env.nonce and other.digest != env.digest


def test_subject_chain_through_prev():
    key = SM2PrivateKey.generate()
    first = sign_envelope(Envelope.create(kind="rx.issue", subject="rx:7", org="h", payload={"a": 1}), key)
    second = sign_envelope(
        Envelope.create(kind="rx.dispense", subject="rx:7", org="p", payload={"b": 2}, prev=first.record_id),
        key,
    )
    assert second.envelope.prev == first.record_id


def test_altered_envelope_fails_signature():
    key = SM2PrivateKey.generate()
    signed = sign_envelope(
        Envelope.create(kind="env.reading", subject="station:A1", org="st", payload=[1]), key
    )
    d = signed.envelope.to_dict() | {"subject": "station:A2"}
    with pytest.raises(SignatureInvalid):
        key.public_key().verify(Envelope.from_dict(d).canonical(), signed.signature)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": 2}, "version"),
        ({"version": True}, "version"),
        ({"kind": "Rx Issue"}, "kind"),
        ({"subject": "no-colon"}, "subject"),
        ({"subject": "rx:has space"}, "subject"),
        ({"org": ""}, "org"),
        ({"timestamp": "2026-01-01T00:00:00+08:00"}, None),
        ({"timestamp": "2026-13-01T00:00:00Z"}, None),
        ({"nonce": "xyz"}, "nonce"),
        ({"prev": "ABC"}, "prev"),
        ({"payload_digest": "0" * 63}, "payload_digest"),
    ],
)
def test_envelope_field_validation(change, field):
    env = Envelope.create(kind="party.record", subject="branch:b1", org="b1", payload={})
    with pytest.raises(RecordInvalid) as info:
        Envelope.from_dict(env.to_dict() | change)
    if field is not None:
        assert info.value.details["field"] == field


def test_envelope_rejects_missing_and_extra_fields():
    env = Envelope.create(kind="party.record", subject="branch:b1", org="b1", payload={}).to_dict()
    del env["nonce"]
    with pytest.raises(RecordInvalid) as info:
        Envelope.from_dict(env | {"extra": 1})
    assert info.value.details == {"missing": ["nonce"], "unexpected": ["extra"]}
    with pytest.raises(RecordInvalid):
        Envelope.from_dict(["not", "an", "object"])


def test_strict_base64_and_json_errors():
    with pytest.raises(FormatError):
        b64decode("not base64!")
    with pytest.raises(FormatError):
        b64decode(12)
    with pytest.raises(FormatError):
        load_json("{bad")
    for text in ('{"x": NaN}', '{"x": Infinity}', "[-Infinity]"):
        with pytest.raises(FormatError):
            load_json(text)


@settings(max_examples=300, deadline=None)
@given(
    subject_id=st.text(min_size=1, max_size=40),
    org=st.from_regex(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$", fullmatch=True),
)
def test_fast_envelope_canonical_equals_rfc8785(subject_id, org):
    """The envelope fast path is byte-identical to the RFC 8785 library for every valid envelope."""
    try:
        env = Envelope.create(kind="party.record", subject=f"branch:{subject_id}", org=org, payload={"x": 1})
    except RecordInvalid:
        return  # not a valid subject: never canonicalised
    assert env.canonical() == rfc8785.dumps(env.to_dict())
    signed = sign_envelope(env, _KEY)
    assert signed.leaf_entry() == rfc8785.dumps(signed.to_dict())


_KEY = SM2PrivateKey.generate()


def test_subject_rejects_control_characters_and_lone_surrogates():
    for bad in ("branch:a\x00b", "branch:a\x7f", "branch:\ud800"):
        with pytest.raises(RecordInvalid):
            Envelope.create(kind="party.record", subject=bad, org="b", payload={})


@pytest.mark.parametrize(
    "value",
    [
        {
            "\U0001f600": 1,
            "\uff61": 2,
            "a": {"\U00010000x": [], "\ue000": None},
        },  # UTF-16 order ≠ code points
        {"s": '\x00\x08\x1f\x7f\u2028\u2029"\\/\ud7ff\U0010ffff'},
        {"n": [2**53 - 1, -(2**53) + 1, 0, True, False, None]},
        {"n": 2**53},  # refused by JCS
        {"x": [1.5, -0.5, 0.1, 0.0001, 1e-4 + 1e-20, 9.9999e-5, 1e15 + 0.5, 9007199254740991.0]},
        {"x": [1e-7, 1e21, 2.0, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 1e-5, 123456.789e3]},
        {"a": "\ud800"},  # lone surrogate: refused
        {"\udfff": 1},
        [(1, 2), {"t": (3,)}],
    ],
)
def test_canonical_bytes_equals_rfc8785_on_edges(value):
    """The json.dumps fast path is taken only where it gives the RFC 8785 library's bytes."""
    try:
        expected = rfc8785.dumps(value)
    except ValueError:  # CanonicalizationError, or UnicodeEncodeError for a lone surrogate in a key
        with pytest.raises(FormatError):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == expected


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False) | st.floats(min_value=1e-5, max_value=1e17))
def test_canonical_float_equals_rfc8785(x):
    """Floats in fixed notation take the json.dumps path: the library's bytes at every magnitude."""
    try:
        expected = rfc8785.dumps({"v": [x, -x]})
    except ValueError:
        with pytest.raises(FormatError):
            canonical_bytes({"v": [x, -x]})
        return
    try:
        assert canonical_bytes({"v": [x, -x]}) == expected
    except FormatError:
        assert 2.0**53 <= abs(x) < 1e21  # refused: reads back as an unsafe integer


def test_canonical_bytes_of_every_code_point_is_rfc8785():
    """The orjson fast path escapes and sorts as ``json.dumps`` (fuzzed above against RFC 8785) for every
    code point as a string, and as a key in the BMP (beyond it, where UTF-16 order differs, keys take the
    library's path); and as the ``rfc8785`` library itself on every 61st code point."""

    def dumps(value: object) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    bmp = {c: n for n, c in enumerate(chars[: 0x10000 - 0x800])}
    assert canonical_bytes({"s": chars}) == dumps({"s": chars})
    assert canonical_bytes({"k": bmp}) == dumps({"k": bmp})
    sample = chars[::61]
    value = {"s": sample, "k": {c: n for n, c in enumerate(sample) if c <= "\uffff"}}
    assert canonical_bytes(value) == rfc8785.dumps(value)
