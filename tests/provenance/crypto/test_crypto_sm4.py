"""SM4: the GB/T 32907 block vector, the RFC 8998 GCM vector, round trips and tamper detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from provenance.crypto import DecryptionFailed, generate_sm4_key, sm4_gcm_decrypt, sm4_gcm_encrypt
from provenance.crypto.sm4 import NONCE_SIZE, TAG_SIZE, _encrypt
from provenance.errors import CryptoError, KeyInvalid

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "crypto"
V = json.loads((ASSETS / "sm4-vectors.json").read_text())


def test_block_vector() -> None:
    b = V["block"]
    enc = Cipher(algorithms.SM4(bytes.fromhex(b["key_hex"])), modes.ECB()).encryptor()
    assert (enc.update(bytes.fromhex(b["plaintext_hex"])) + enc.finalize()).hex() == b["ciphertext_hex"]


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
