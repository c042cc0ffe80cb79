"""SM3 (GB/T 32905) through ``cryptography`` (OpenSSL's implementation)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

DIGEST_SIZE = 32


def sm3(data: bytes) -> bytes:
    """SM3 digest of ``data`` (32 bytes)."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def sm3_hex(data: bytes) -> str:
    """SM3 digest of ``data`` as lowercase hex, the project's ``Digest`` form."""
    return sm3(data).hex()
