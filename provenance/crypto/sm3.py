"""SM3 (GB/T 32905): OpenSSL's implementation, through ``hashlib`` or else ``cryptography``.

Every verification hashes a leaf and a dozen or more Merkle nodes, so the per-call cost matters: a copy of a
ready ``hashlib`` context is ~0.7 µs a short message, ``cryptography``'s ``Hash`` object ~1.7 µs. Python's
``hashlib`` has SM3 only when the OpenSSL it was built against provides it; it is used only after
answering the standard's test vector, otherwise ``cryptography`` (which always bundles SM3) is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac

DIGEST_SIZE = 32
_ABC = bytes.fromhex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")  # GB/T 32905 A.1


class _Context(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def copy(self) -> _Context: ...
    def digest(self) -> bytes: ...


class _CryptographyContext:
    """``cryptography``'s SM3 with the ``hashlib`` context shape."""

    __slots__ = ("_h",)

    def __init__(self, h: hashes.Hash | None = None) -> None:
        self._h = h if h is not None else hashes.Hash(hashes.SM3())

    def update(self, data: bytes, /) -> None:
        self._h.update(data)

    def copy(self) -> _CryptographyContext:
        return _CryptographyContext(self._h.copy())

    def digest(self) -> bytes:
        # finalize() consumes the context; finalising a copy keeps this one usable, like hashlib.
        return self._h.copy().finalize()


def _fresh_context() -> _Context:
    try:
        ctx: _Context = hashlib.new("sm3")
        probe = ctx.copy()
        probe.update(b"abc")
        if probe.digest() == _ABC:
            return ctx
    except ValueError:  # this Python's OpenSSL has no SM3
        pass
    return _CryptographyContext()


_EMPTY = _fresh_context()


def sm3(data: bytes) -> bytes:
    """SM3 digest of ``data`` (32 bytes)."""
    h = _EMPTY.copy()
    h.update(data)
    return h.digest()


def sm3_each(prefix: bytes, items: Iterable[bytes]) -> list[bytes]:
    """SM3(prefix ‖ item) of each item, in one pass (a batch's Merkle leaves and nodes): one context fed the
    prefix, copied for each."""
    base = _EMPTY.copy()
    base.update(prefix)
    out = []
    for item in items:
        h = base.copy()
        h.update(item)
        out.append(h.digest())
    return out


def sm3_hex(data: bytes) -> str:
    """SM3 digest of ``data`` as lowercase hex, the project's ``Digest`` form."""
    return sm3(data).hex()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC (RFC 2104; GB/T 15852.2) with SM3 as the hash: 32 bytes, as ``openssl mac -digest SM3 HMAC``."""
    mac = _hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()


def keyed_hex(key: bytes, label: bytes, what: str, value: str) -> str:
    """``HMAC-SM3(key, label ‖ what ‖ NUL ‖ value)`` as hex: a keyed digest of a guessable value (a patient
    reference in facts, a box's identity on chain), which nobody without ``key`` can test guesses against."""
    return hmac_sm3(key, label + what.encode("ascii") + b"\0" + value.encode("utf-8")).hex()


class SM3Hasher:
    """Incremental SM3 with the ``hashlib`` shape (``update``/``digest``/``hexdigest``/``copy``)."""

    __slots__ = ("_h",)
    digest_size = DIGEST_SIZE
    name = "sm3"

    def __init__(self, data: bytes = b"") -> None:
        self._h = _EMPTY.copy()
        if data:
            self._h.update(data)

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def copy(self) -> SM3Hasher:
        c = SM3Hasher.__new__(SM3Hasher)
        c._h = self._h.copy()
        return c

    def digest(self) -> bytes:
        return self._h.digest()

    def hexdigest(self) -> str:
        return self.digest().hex()
