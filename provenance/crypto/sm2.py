"""SM2 keys and signatures (GB/T 32918.2 / GM/T 0003, SM3, Z over the default ID ``1234567812345678``).

Keys are PKCS#8 / SubjectPublicKeyInfo with id-ecPublicKey and curve OID 1.2.156.10197.1.301, readable by
``openssl pkey``; signatures are DER ``SEQUENCE{r, s}``. The backend (OpenSSL or gmssl) is chosen once per
key object, which also caches its parsed form, so signing and verifying never re-parse a key.
"""

from __future__ import annotations

import functools
import hmac
from typing import Final

from provenance.crypto import _curve, _der
from provenance.crypto._backend import SM2Backend, get_backend
from provenance.crypto.sm3 import sm3_hex
from provenance.errors import CryptoError, KeyInvalid, SignatureInvalid

DEFAULT_ID: Final = _curve.DEFAULT_ID

BackendArg = SM2Backend | str | None
# Anything bytes-like is accepted where bytes are read; results are always bytes.
BytesLike = bytes | bytearray | memoryview


def _backend(b: BackendArg) -> SM2Backend:
    return b if b is not None and not isinstance(b, str) else get_backend(b)


def _as_bytes(data: BytesLike, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"{what} must be bytes, not {type(data).__name__}")


class SM2PublicKey:
    """An SM2 public key; ``verify`` returns ``None`` or raises :class:`SignatureInvalid`."""

    __slots__ = ("__weakref__", "_backend", "_handle", "_pem", "_x", "_y")

    def __init__(self, *, x: int, y: int, backend: BackendArg = None) -> None:
        _curve.check_point(x, y)
        self._x = x
        self._y = y
        self._pem: bytes | None = None
        self._backend = _backend(backend)
        self._handle = self._backend.load_public(x, y)

    @classmethod
    def _from_parts(cls, x: int, y: int, backend: SM2Backend) -> SM2PublicKey:
        # For points a backend derived itself: no curve check needed. Its own handle (never the private
        # key's) so a public key kept around holds no private material.
        k = cls.__new__(cls)
        k._x, k._y, k._backend, k._pem = x, y, backend, None
        k._handle = backend.load_public(x, y)
        return k

    # --- constructors ---------------------------------------------------------------------------------

    @classmethod
    def from_raw(cls, raw: BytesLike, *, backend: BackendArg = None) -> SM2PublicKey:
        """From 64 bytes x||y (or 65 bytes 04||x||y)."""
        octets = _as_bytes(raw, "raw public key")
        if len(octets) == 64:
            octets = b"\x04" + octets
        if len(octets) != 65 or octets[0] != 0x04:
            raise KeyInvalid("raw SM2 public key must be 64 bytes x||y or 65 bytes 04||x||y")
        x, y = _curve.decode_point(octets)
        if backend is None:
            return _shared_public(x, y, get_backend().name)
        return cls(x=x, y=y, backend=backend)

    @classmethod
    def from_der(cls, der: BytesLike, *, backend: BackendArg = None) -> SM2PublicKey:
        """From SubjectPublicKeyInfo DER."""
        x, y = _der.decode_spki(_as_bytes(der, "DER"))
        if backend is None:
            return _shared_public(x, y, get_backend().name)
        return cls(x=x, y=y, backend=backend)

    @classmethod
    def from_pem(cls, pem: bytes | str, *, backend: BackendArg = None) -> SM2PublicKey:
        """From a ``PUBLIC KEY`` PEM block."""
        for label, der in _der.pem_blocks(pem):
            if label == "PUBLIC KEY":
                return cls.from_der(der, backend=backend)
        raise KeyInvalid("PEM has no PUBLIC KEY block")

    # --- encodings ------------------------------------------------------------------------------------

    def raw(self) -> bytes:
        """64 bytes x||y."""
        return _curve.int_to_bytes(self._x) + _curve.int_to_bytes(self._y)

    def to_der(self) -> bytes:
        return _der.encode_spki(self._x, self._y)

    def to_pem(self) -> bytes:
        # Kept: the gateway stores the verifying key's PEM with every record it accepts.
        pem = self._pem
        if pem is None:
            pem = self._pem = _der.pem_armor("PUBLIC KEY", self.to_der())
        return pem

    def fingerprint(self) -> str:
        """SM3 hex of the SubjectPublicKeyInfo DER: a stable name for this key."""
        return sm3_hex(self.to_der())

    @property
    def point(self) -> tuple[int, int]:
        return self._x, self._y

    @property
    def backend(self) -> str:
        return self._backend.name

    def z(self, id: bytes = DEFAULT_ID) -> bytes:
        """Z_A for this key and ``id`` (GB/T 32918.2 §5.5)."""
        return _curve.z_value(self._x, self._y, id)

    # --- verification ---------------------------------------------------------------------------------

    def verify(self, message: BytesLike, signature: BytesLike, *, id: BytesLike = DEFAULT_ID) -> None:
        """Return ``None`` when ``signature`` (DER) is valid for ``message``, else raise SignatureInvalid."""
        msg = _as_bytes(message, "message")
        sig = _as_bytes(signature, "signature")
        ident = _as_bytes(id, "id")
        _curve.check_id(ident)
        r, s = _der.decode_signature(sig)
        if not self._backend.verify(self._handle, msg, r, s, sig, ident):
            raise SignatureInvalid("SM2 signature does not match the message, key and ID")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SM2PublicKey) and self.point == other.point

    def __hash__(self) -> int:
        return hash(self.point)

    def __repr__(self) -> str:
        return f"SM2PublicKey(fingerprint={self.fingerprint()[:16]}…, backend={self.backend})"


@functools.lru_cache(maxsize=1024)
def _shared_public(x: int, y: int, backend: str) -> SM2PublicKey:
    # Verifiers (the gateway, the chain's SM2 precompile) see the same few registered keys over and over;
    # public keys are immutable, so they share one parsed backend handle per key.
    return SM2PublicKey(x=x, y=y, backend=backend)


class SM2PrivateKey:
    """An SM2 private key; satisfies :class:`provenance.abc.Signer`."""

    __slots__ = ("_backend", "_d", "_handle", "_public")

    def __init__(self, *, d: int, public: tuple[int, int] | None = None, backend: BackendArg = None) -> None:
        if not 1 <= d <= _curve.N - 2:
            raise KeyInvalid("private key scalar out of range [1, n-2]")
        b = _backend(backend)
        handle, derived = b.load_private(d)
        if public is not None and public != derived:
            raise KeyInvalid("stored public key does not match the private key")
        self._d = d
        self._backend = b
        self._handle = handle
        self._public = SM2PublicKey._from_parts(*derived, b)

    @classmethod
    def generate(cls, *, backend: BackendArg = None) -> SM2PrivateKey:
        """A new key from the backend's CSPRNG."""
        b = _backend(backend)
        handle, d, (x, y) = b.generate()
        k = cls.__new__(cls)
        k._d, k._backend, k._handle = d, b, handle
        k._public = SM2PublicKey._from_parts(x, y, b)
        return k

    @classmethod
    def from_der(cls, der: BytesLike, *, backend: BackendArg = None) -> SM2PrivateKey:
        """From PKCS#8 DER (SEC1 ``ECPrivateKey`` DER is accepted too)."""
        parts = _der.decode_private_der(_as_bytes(der, "DER"))
        return cls(d=parts.d, public=parts.public, backend=backend)

    @classmethod
    def from_pem(cls, pem: bytes | str, *, backend: BackendArg = None) -> SM2PrivateKey:
        """From a ``PRIVATE KEY`` (PKCS#8) or ``EC PRIVATE KEY`` (SEC1) PEM block; skips parameter blocks."""
        for label, der in _der.pem_blocks(pem):
            if label == "PRIVATE KEY":
                parts = _der.decode_pkcs8(der)
            elif label in ("EC PRIVATE KEY", "SM2 PRIVATE KEY"):
                parts = _der.decode_sec1(der)
            elif label == "ENCRYPTED PRIVATE KEY":
                raise KeyInvalid("encrypted private keys are not supported")
            else:
                continue
            return cls(d=parts.d, public=parts.public, backend=backend)
        raise KeyInvalid("PEM has no PRIVATE KEY block")

    @classmethod
    def from_int(cls, d: int, *, backend: BackendArg = None) -> SM2PrivateKey:
        """From the private scalar (test vectors)."""
        return cls(d=d, backend=backend)

    # --- encodings ------------------------------------------------------------------------------------

    def to_der(self) -> bytes:
        """PKCS#8 DER, laid out as OpenSSL writes it."""
        return _der.encode_pkcs8(self._d, self._public.point)

    def to_pem(self) -> bytes:
        return _der.pem_armor("PRIVATE KEY", self.to_der())

    def private_bytes(self) -> bytes:
        """The 32-byte private scalar (handle with care)."""
        return _curve.int_to_bytes(self._d)

    def public_key(self) -> SM2PublicKey:
        return self._public

    def public_key_pem(self) -> bytes:
        return self._public.to_pem()

    @property
    def backend(self) -> str:
        return self._backend.name

    # --- signing --------------------------------------------------------------------------------------

    def sign(self, message: BytesLike, *, id: BytesLike = DEFAULT_ID) -> bytes:
        """DER ``SEQUENCE{r, s}`` SM2 signature of ``message`` (SM3, Z over ``id``)."""
        msg = _as_bytes(message, "message")
        ident = _as_bytes(id, "id")
        _curve.check_id(ident)
        sig = self._backend.sign(self._handle, msg, ident)
        if not sig:
            raise CryptoError("SM2 signing produced no signature")
        return sig

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SM2PrivateKey) and hmac.compare_digest(
            self.private_bytes(), other.private_bytes()
        )

    def __hash__(self) -> int:
        return hash(self._public)

    def __repr__(self) -> str:
        # Never the scalar.
        return f"SM2PrivateKey(public={self._public!r})"
