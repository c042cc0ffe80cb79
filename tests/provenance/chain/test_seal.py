"""The seal format: digest definition, JSON round trip, and each check failing for its own reason."""

from __future__ import annotations

import struct

import pytest

from provenance.chain.seal import DOMAIN, GENESIS_PREV, Seal, seal_digest
from provenance.crypto import SM2PrivateKey, sm3
from provenance.errors import FormatError


def _seal(key: SM2PrivateKey, prev: bytes = GENESIS_PREV) -> Seal:
    return Seal.make(
        key=key, number=5, block_hash=b"\xaa" * 32, header_rlp=b"\xc0header", prev_seal_digest=prev
    )


def test_digest_is_defined_as_documented() -> None:
    prev = b"\x01" * 32
    assert seal_digest(7, b"hdr", prev) == sm3(DOMAIN + struct.pack(">Q", 7) + sm3(b"hdr") + prev)
    with pytest.raises(FormatError):
        seal_digest(7, b"hdr", b"short")


def test_round_trip_and_checks() -> None:
    key = SM2PrivateKey.generate()
    seal = _seal(key)
    again = Seal.from_json(seal.to_json())
    assert again == seal
    assert again.check(key.public_key(), GENESIS_PREV) is None
    assert "link" in (again.check(key.public_key(), b"\x02" * 32) or "")
    assert "unknown validator" in (again.check(SM2PrivateKey.generate().public_key(), GENESIS_PREV) or "")


def test_malformed_json_is_a_format_error() -> None:
    with pytest.raises(FormatError):
        Seal.from_json({"number": "0x1"})
    with pytest.raises(FormatError):
        Seal.from_json([])
