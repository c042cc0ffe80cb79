"""SM4-GCM (GB/T 32907 block cipher, NIST SP 800-38D mode) through ``cryptography``.

Blob layout: 12-byte nonce || ciphertext || 16-byte tag. The nonce is random per message (``secrets``);
with 96-bit random nonces keep well under 2**32 messages per key (SP 800-38D §8.3).
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from provenance.errors import CryptoError, KeyInvalid

KEY_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16


class DecryptionFailed(CryptoError, code="DECRYPTION_FAILED"):
    """Ciphertext, nonce, tag or associated data altered, or the wrong key."""


def generate_sm4_key() -> bytes:
    """A fresh 128-bit SM4 key from ``secrets``."""
    return secrets.token_bytes(KEY_SIZE)


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
        raise KeyInvalid("SM4 key must be 16 bytes")


def _encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    enc = Cipher(algorithms.SM4(bytes(key)), modes.GCM(nonce)).encryptor()
    if aad:
        enc.authenticate_additional_data(aad)
    ct = enc.update(plaintext) + enc.finalize()
    return nonce + ct + enc.tag


def sm4_gcm_encrypt(key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """Encrypt and authenticate ``plaintext`` (and ``aad``): nonce || ciphertext || tag."""
    _check_key(key)
    return _encrypt(key, secrets.token_bytes(NONCE_SIZE), plaintext, aad)


def sm4_gcm_decrypt(key: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    """Inverse of :func:`sm4_gcm_encrypt`; raises :class:`DecryptionFailed` on any tampering."""
    _check_key(key)
    if len(blob) < NONCE_SIZE + TAG_SIZE:
        raise DecryptionFailed("SM4-GCM blob shorter than nonce + tag")
    nonce, ct, tag = blob[:NONCE_SIZE], blob[NONCE_SIZE:-TAG_SIZE], blob[-TAG_SIZE:]
    dec = Cipher(algorithms.SM4(bytes(key)), modes.GCM(nonce, tag)).decryptor()
    if aad:
        dec.authenticate_additional_data(aad)
    try:
        return dec.update(ct) + dec.finalize()
    except InvalidTag:
        raise DecryptionFailed("SM4-GCM authentication failed") from None
