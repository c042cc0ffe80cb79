"""SM3: GB/T 32905 vectors, the incremental hasher, and agreement with `openssl dgst -sm3`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.crypto import SM3Hasher, sm3, sm3_hex

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "crypto"
VECTORS = json.loads((ASSETS / "sm3-vectors.json").read_text())["vectors"]


@pytest.mark.parametrize("v", VECTORS, ids=["abc", "abcd*16"])
def test_standard_vectors(v: dict[str, str]) -> None:
    msg = bytes.fromhex(v["message_hex"])
    assert sm3(msg).hex() == v["digest_hex"]
    assert sm3_hex(msg) == v["digest_hex"]


def test_named_vectors_literal() -> None:
    assert sm3_hex(b"abc").startswith("66c7f0f4") and sm3_hex(b"abc").endswith("8f4ba8e0")
    assert sm3_hex(b"abcd" * 16).startswith("debe9ff9") and sm3_hex(b"abcd" * 16).endswith("9c0c5732")


@given(st.lists(st.binary(max_size=300), max_size=8))
@settings(max_examples=60, deadline=None)
def test_incremental_matches_one_shot(chunks: list[bytes]) -> None:
    h = SM3Hasher()
    for c in chunks:
        h.update(c)
    assert h.digest() == sm3(b"".join(chunks))
    # digest() must not consume the hasher.
    h.update(b"more")
    assert h.hexdigest() == sm3_hex(b"".join(chunks) + b"more")


def test_hasher_copy_is_independent() -> None:
    h = SM3Hasher(b"ab")
    c = h.copy()
    c.update(b"c")
    assert c.hexdigest() == sm3_hex(b"abc")
    assert h.hexdigest() == sm3_hex(b"ab")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_matches_openssl_dgst(tmp_path: Path) -> None:
    data = bytes(range(256)) * 41 + b"tail"
    f = tmp_path / "data.bin"
    f.write_bytes(data)
    out = subprocess.run(
        ["openssl", "dgst", "-sm3", "-r", str(f)], check=True, capture_output=True, text=True
    ).stdout
    assert out.split()[0] == sm3_hex(data)


@given(st.binary(max_size=300))
@settings(max_examples=60, deadline=None)
def test_fallback_context_agrees(data: bytes) -> None:
    """``cryptography``'s SM3 (used when Python's OpenSSL lacks SM3) gives the same digests."""
    from provenance.crypto.sm3 import _CryptographyContext

    h = _CryptographyContext()
    h.update(data)
    c = h.copy()
    c.update(b"x")
    assert h.digest() == sm3(data)
    assert c.digest() == sm3(data + b"x")
