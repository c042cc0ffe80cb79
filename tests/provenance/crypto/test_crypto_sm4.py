"""SM4: the SDK's SM4-GCM against an independent implementation checked on the GB/T 32907 block vector and the
RFC 8998 GCM vector, the RFC 8998 vector itself, round trips and tamper detection."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from gmssl.sm4 import SM4_ENCRYPT, CryptSM4

from provenance.crypto import DecryptionFailed, generate_sm4_key, sm4_gcm_decrypt, sm4_gcm_encrypt
from provenance.crypto.sm4 import NONCE_SIZE, TAG_SIZE, _encrypt
from provenance.errors import CryptoError, KeyInvalid

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "crypto"
V = json.loads((ASSETS / "sm4-vectors.json").read_text())


def _sm4_block(key: bytes) -> Callable[[bytes], bytes]:
    """One SM4 block by gmssl's pure-Python SM4: an implementation independent of the SDK's (OpenSSL's,
    through ``cryptography``)."""
    cipher = CryptSM4()
    cipher.set_key(key, SM4_ENCRYPT)
    return lambda block: cipher.crypt_ecb(block)[:16]  # crypt_ecb pads; the first block is the block's own


def _gf128(x: int, y: int) -> int:
    """Multiplication in GCM's GF(2^128) (SP 800-38D, algorithm 1; bit 0 is the leftmost)."""
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ (0xE1 << 120) if v & 1 else v >> 1
    return z


def _independent_gcm_open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """SP 800-38D decryption with a 96-bit nonce over :func:`_sm4_block`, of the SDK's blob layout."""
    block = _sm4_block(key)
    nonce, ct, tag = blob[:NONCE_SIZE], blob[NONCE_SIZE:-TAG_SIZE], blob[-TAG_SIZE:]
    h = int.from_bytes(block(bytes(16)), "big")

    def padded(data: bytes) -> bytes:
        return data + bytes(-len(data) % 16)

    y = 0
    lengths = (len(aad) * 8).to_bytes(8, "big") + (len(ct) * 8).to_bytes(8, "big")
    for i in range(0, len(padded(aad) + padded(ct) + lengths), 16):
        chunk = (padded(aad) + padded(ct) + lengths)[i : i + 16]
        y = _gf128(y ^ int.from_bytes(chunk, "big"), h)
    expected = bytes(a ^ b for a, b in zip(block(nonce + b"\0\0\0\1"), y.to_bytes(16, "big"), strict=True))
    assert tag == expected, "the tag does not authenticate under the independent GCM"
    stream = b"".join(block(nonce + (i + 2).to_bytes(4, "big")) for i in range((len(ct) + 15) // 16))
    return bytes(a ^ b for a, b in zip(ct, stream, strict=False))


def test_sdk_blobs_open_with_an_independent_sm4_gcm_checked_on_the_standards_vectors() -> None:
    b, g = V["block"], V["gcm"]
    # The independent implementation against GB/T 32907-2016 A.1 and RFC 8998 A.1 first...
    assert (
        _sm4_block(bytes.fromhex(b["key_hex"]))(bytes.fromhex(b["plaintext_hex"])).hex()
        == b["ciphertext_hex"]
    )
    key, nonce, aad = (bytes.fromhex(g[k]) for k in ("key_hex", "nonce_hex", "aad_hex"))
    vector = nonce + bytes.fromhex(g["ciphertext_hex"]) + bytes.fromhex(g["tag_hex"])
    assert _independent_gcm_open(key, vector, aad).hex() == g["plaintext_hex"]
    # ... then every blob the SDK writes (random nonce, any length, with and without associated data).
    for plaintext, data in (
        (b"", b""),
        (b"x", b"record-id"),
        (b"payload " * 1000, b""),
        (bytes(33), b"a" * 17),
    ):
        key = generate_sm4_key()
        blob = sm4_gcm_encrypt(key, plaintext, data)
        assert _independent_gcm_open(key, blob, data) == plaintext
    with pytest.raises(AssertionError, match="does not authenticate"):  # and the check is a check
        _independent_gcm_open(key, blob[:-1] + bytes([blob[-1] ^ 1]), data)


def test_gcm_vector_rfc8998() -> None:
    g = V["gcm"]
    key, nonce, aad = (bytes.fromhex(g[k]) for k in ("key_hex", "nonce_hex", "aad_hex"))
    blob = _encrypt(key, nonce, bytes.fromhex(g["plaintext_hex"]), aad)
    assert blob == nonce + bytes.fromhex(g["ciphertext_hex"]) + bytes.fromhex(g["tag_hex"])
    assert sm4_gcm_decrypt(key, blob, aad).hex() == g["plaintext_hex"]


@pytest.mark.parametrize("pt", [b"", b"x", b"payload " * 1000])
def test_round_trip(pt: bytes) -> None:
    key = generate_sm4_key()
    blob = sm4_gcm_encrypt(key, pt, b"record-id")
    assert len(blob) == NONCE_SIZE + len(pt) + TAG_SIZE
    assert sm4_gcm_decrypt(key, blob, b"record-id") == pt


def test_nonces_differ() -> None:
    key = generate_sm4_key()
    assert sm4_gcm_encrypt(key, b"same")[:NONCE_SIZE] != sm4_gcm_encrypt(key, b"same")[:NONCE_SIZE]
    assert generate_sm4_key() != generate_sm4_key()


def test_tamper_detected_everywhere() -> None:
    key = generate_sm4_key()
    blob = sm4_gcm_encrypt(key, b"personal health data", b"aad")
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(DecryptionFailed):
            sm4_gcm_decrypt(key, bytes(bad), b"aad")
    with pytest.raises(DecryptionFailed):
        sm4_gcm_decrypt(key, blob, b"other aad")
    with pytest.raises(DecryptionFailed):
        sm4_gcm_decrypt(generate_sm4_key(), blob, b"aad")
    with pytest.raises(DecryptionFailed):
        sm4_gcm_decrypt(key, blob[: NONCE_SIZE + TAG_SIZE - 1])
    assert issubclass(DecryptionFailed, CryptoError)


@pytest.mark.parametrize("key", [b"", b"k" * 15, b"k" * 32])
def test_bad_key_length(key: bytes) -> None:
    with pytest.raises(KeyInvalid):
        sm4_gcm_encrypt(key, b"x")
    with pytest.raises(KeyInvalid):
        sm4_gcm_decrypt(key, b"x" * 40)
