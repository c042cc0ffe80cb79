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


class SM3Hasher:
    """Incremental SM3 with the ``hashlib`` shape (``update``/``digest``/``hexdigest``/``copy``)."""

    __slots__ = ("_h",)
    digest_size = DIGEST_SIZE
    name = "sm3"

    def __init__(self, data: bytes = b"") -> None:
        self._h = hashes.Hash(hashes.SM3())
        if data:
            self._h.update(data)

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def copy(self) -> SM3Hasher:
        c = SM3Hasher.__new__(SM3Hasher)
        c._h = self._h.copy()
        return c

    def digest(self) -> bytes:
        # finalize() consumes the context; finalising a copy keeps this hasher usable, like hashlib.
        return self._h.copy().finalize()

    def hexdigest(self) -> str:
        return self.digest().hex()
