"""The strict DER/PEM codec: round trips, and arbitrary input fails only with the specific error."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.crypto import SM2PrivateKey, SM2PublicKey, _curve, _der
from provenance.errors import KeyInvalid, SignatureInvalid

scalars = st.integers(min_value=1, max_value=_curve.N - 1)


@given(scalars, scalars)
def test_signature_round_trip(r: int, s: int) -> None:
    der = _der.encode_signature(r, s)
    assert _der.decode_signature(der) == (r, s)
    assert len(der) <= 72


@given(st.binary(max_size=80))
@settings(max_examples=300)
def test_arbitrary_signature_bytes(data: bytes) -> None:
    try:
        r, s = _der.decode_signature(data)
    except SignatureInvalid:
        return
    # Anything accepted is canonical: it re-encodes to the very same bytes.
    assert _der.encode_signature(r, s) == data


@given(st.binary(max_size=200))
@settings(max_examples=300)
def test_arbitrary_key_bytes(data: bytes) -> None:
    for parse in (_der.decode_spki, _der.decode_private_der):
        with contextlib.suppress(KeyInvalid):
            parse(data)


@given(
    st.binary(min_size=1, max_size=120).map(
        lambda b: b"-----BEGIN PUBLIC KEY-----\n" + b + b"\n-----END PUBLIC KEY-----\n"
    )
)
@settings(max_examples=200)
def test_arbitrary_pem(pem: bytes) -> None:
    with contextlib.suppress(KeyInvalid):
        SM2PublicKey.from_pem(pem)


@given(st.integers(min_value=0, max_value=len(SM2PrivateKey.from_int(7).to_der()) - 1), st.integers(1, 255))
@settings(max_examples=200, deadline=None)
def test_bit_flipped_private_key_never_crashes(pos: int, flip: int) -> None:
    der = bytearray(SM2PrivateKey.from_int(7).to_der())
    der[pos] ^= flip
    with contextlib.suppress(KeyInvalid):
        SM2PrivateKey.from_der(bytes(der))


def test_pem_armor_round_trip() -> None:
    der = SM2PrivateKey.from_int(12345).public_key().to_der()
    pem = _der.pem_armor("PUBLIC KEY", der)
    assert _der.pem_blocks(pem) == [("PUBLIC KEY", der)]
    assert _der.pem_blocks(pem.replace(b"\n", b"\r\n")) == [("PUBLIC KEY", der)]
