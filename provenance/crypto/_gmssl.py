"""SM2 through gmssl (pure Python): the fallback where libcrypto lacks SM2; ~20x slower than OpenSSL.

gmssl is used only for curve arithmetic. Around it: Z and e = SM3(Z || M) are computed here (its ``sign``
skips Z), K always comes from ``secrets`` (its ``sign_with_sm3`` draws K with ``random.choice``), public keys
are set as 64 raw bytes directly (its constructor ``lstrip("04")`` would eat leading hex digits), and
signatures are converted between its raw r||s hex and DER here.
"""

from __future__ import annotations

import importlib.metadata
import secrets

from provenance.crypto import _curve, _der
from provenance.errors import BackendUnavailable, CryptoError

try:
    from gmssl.sm2 import CryptSM2
except ImportError:  # pragma: no cover - gmssl is a declared dependency
    CryptSM2 = None

_G_HEX = f"{_curve.GX:064x}{_curve.GY:064x}"


class _Key:
    __slots__ = ("crypt", "d", "x", "y")

    def __init__(self, d: int | None, x: int, y: int) -> None:
        assert CryptSM2 is not None
        self.d = d
        self.x = x
        self.y = y
        self.crypt = CryptSM2(private_key=f"{d:064x}" if d is not None else "", public_key="")
        self.crypt.public_key = f"{x:064x}{y:064x}"


class GmsslBackend:
    name = "gmssl"

    def __init__(self) -> None:
        if CryptSM2 is None:
            raise BackendUnavailable("gmssl is not installed")
        self.detail = f"gmssl {importlib.metadata.version('gmssl')} (pure Python)"

    def _point(self, d: int) -> tuple[int, int]:
        assert CryptSM2 is not None
        q = CryptSM2(private_key="", public_key="")._kg(d, _G_HEX)
        if q is None:
            raise CryptoError("scalar multiplication gave the point at infinity")
        return int(q[:64], 16), int(q[64:128], 16)

    def generate(self) -> tuple[object, int, tuple[int, int]]:
        d = 1 + secrets.randbelow(_curve.N - 2)  # uniform in [1, n-2]
        handle, pub = self.load_private(d)
        return handle, d, pub

    def load_private(self, d: int) -> tuple[object, tuple[int, int]]:
        x, y = self._point(d)
        return _Key(d, x, y), (x, y)

    def load_public(self, x: int, y: int) -> object:
        return _Key(None, x, y)

    def sign(self, handle: object, message: bytes, id: bytes) -> bytes:
        assert isinstance(handle, _Key) and handle.d is not None
        e = _curve.message_digest(handle.x, handle.y, message, id)
        while True:
            k = 1 + secrets.randbelow(_curve.N - 1)  # K ∈ [1, n-1] (GB/T 32918.2 §6.1 A3)
            out = handle.crypt.sign(e, f"{k:064x}")
            # None means r = 0, r + k = n or s = 0: the standard says draw a new K.
            if out is not None:
                r, s = int(out[:64], 16), int(out[64:], 16)
                return _der.encode_signature(r, s)

    def verify(self, handle: object, message: bytes, r: int, s: int, der: bytes, id: bytes) -> bool:
        assert isinstance(handle, _Key)
        e = _curve.message_digest(handle.x, handle.y, message, id)
        try:
            return bool(handle.crypt.verify(f"{r:064x}{s:064x}", e))
        except (TypeError, ValueError):
            # gmssl cannot represent the point at infinity (s·G + t·P = O): not a valid signature.
            return False
