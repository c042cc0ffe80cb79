"""A minimal, strict DER codec for exactly the structures SM2 needs.

Signatures (``SEQUENCE{r, s}``), SubjectPublicKeyInfo (RFC 5480), PKCS#8 PrivateKeyInfo (RFC 5208) and
SEC1 ``ECPrivateKey`` (RFC 5915), all with id-ecPublicKey and the SM2 named curve, plus PEM armour.
``cryptography`` cannot load SM2 keys, so this is written out by hand; it is strict (definite, minimal
lengths, minimal positive INTEGERs, no trailing bytes) because a lenient signature decoder is malleable.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from provenance.crypto import _curve
from provenance.errors import KeyInvalid, SignatureInvalid

INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OID = 0x06
SEQUENCE = 0x30
CTX0 = 0xA0
CTX1 = 0xA1

# Content octets of the two OIDs, pre-encoded: id-ecPublicKey 1.2.840.10045.2.1 and SM2 1.2.156.10197.1.301.
OID_EC_PUBLIC_KEY = bytes.fromhex("2a8648ce3d0201")
OID_SM2 = bytes.fromhex("2a811ccf5501822d")


class DERError(ValueError):
    """Malformed DER; callers turn it into the specific ProvenanceError."""


# --- writer ------------------------------------------------------------------------------------------


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _len(len(value)) + value


def der_uint(v: int) -> bytes:
    if v < 0:
        raise ValueError("negative INTEGER")
    # One extra byte when the top bit is set keeps the INTEGER positive.
    return tlv(INTEGER, v.to_bytes(v.bit_length() // 8 + 1, "big"))


_ALG_ID = tlv(SEQUENCE, tlv(OID, OID_EC_PUBLIC_KEY) + tlv(OID, OID_SM2))


def encode_signature(r: int, s: int) -> bytes:
    return tlv(SEQUENCE, der_uint(r) + der_uint(s))


def encode_spki(x: int, y: int) -> bytes:
    return tlv(SEQUENCE, _ALG_ID + tlv(BIT_STRING, b"\x00" + _curve.encode_point(x, y)))


def encode_pkcs8(d: int, pub: tuple[int, int] | None) -> bytes:
    """PKCS#8 PrivateKeyInfo byte-identical to what OpenSSL 3 writes for SM2 keys."""
    ec = der_uint(1) + tlv(OCTET_STRING, _curve.int_to_bytes(d))
    if pub is not None:
        ec += tlv(CTX1, tlv(BIT_STRING, b"\x00" + _curve.encode_point(*pub)))
    return tlv(SEQUENCE, der_uint(0) + _ALG_ID + tlv(OCTET_STRING, tlv(SEQUENCE, ec)))


# --- reader ------------------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def done(self) -> bool:
        return self.pos == len(self.data)

    def peek_tag(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def read(self, tag: int) -> bytes:
        d, p = self.data, self.pos
        if p + 2 > len(d):
            raise DERError("truncated")
        if d[p] != tag:
            raise DERError(f"expected tag 0x{tag:02x}, got 0x{d[p]:02x}")
        first = d[p + 1]
        p += 2
        if first < 0x80:
            n = first
        elif first == 0x80:
            raise DERError("indefinite length")
        else:
            k = first & 0x7F
            if k > 4 or p + k > len(d):
                raise DERError("bad length")
            n = int.from_bytes(d[p : p + k], "big")
            p += k
            if n < 0x80 or d[p - k] == 0:
                raise DERError("non-minimal length")
        if p + n > len(d):
            raise DERError("truncated")
        self.pos = p + n
        return d[p : p + n]

    def uint(self) -> int:
        v = self.read(INTEGER)
        if not v:
            raise DERError("empty INTEGER")
        if v[0] & 0x80:
            raise DERError("negative INTEGER")
        if len(v) > 1 and v[0] == 0 and not v[1] & 0x80:
            raise DERError("non-minimal INTEGER")
        return int.from_bytes(v, "big")

    def end(self) -> None:
        if not self.done():
            raise DERError("trailing data")


def decode_signature(sig: bytes) -> tuple[int, int]:
    """Strict DER ``SEQUENCE{r, s}`` with 1 <= r, s < n, or SignatureInvalid."""
    try:
        outer = _Reader(sig)
        inner = _Reader(outer.read(SEQUENCE))
        outer.end()
        r = inner.uint()
        s = inner.uint()
        inner.end()
    except DERError as e:
        raise SignatureInvalid(f"malformed DER signature: {e}") from None
    if not 1 <= r < _curve.N:
        raise SignatureInvalid("signature r out of range [1, n-1]")
    if not 1 <= s < _curve.N:
        raise SignatureInvalid("signature s out of range [1, n-1]")
    return r, s


def _read_alg(r: _Reader) -> bytes | None:
    """Check an AlgorithmIdentifier is id-ecPublicKey; return the named-curve OID or None if absent."""
    alg = _Reader(r.read(SEQUENCE))
    if alg.read(OID) != OID_EC_PUBLIC_KEY:
        raise KeyInvalid("key algorithm is not id-ecPublicKey")
    if alg.done():
        return None
    if alg.peek_tag() != OID:
        raise KeyInvalid("explicit EC curve parameters are not supported; use the SM2 named curve")
    curve = alg.read(OID)
    alg.end()
    return curve


def _check_curve(curve: bytes | None) -> None:
    if curve is None:
        raise KeyInvalid("key names no curve")
    if curve != OID_SM2:
        raise KeyInvalid("key curve is not SM2 (OID 1.2.156.10197.1.301)")


def _bit_string_point(v: bytes) -> tuple[int, int]:
    if not v or v[0] != 0:
        raise KeyInvalid("public key BIT STRING has unused bits")
    return _curve.decode_point(v[1:])


def decode_spki(der: bytes) -> tuple[int, int]:
    try:
        outer = _Reader(der)
        r = _Reader(outer.read(SEQUENCE))
        outer.end()
        _check_curve(_read_alg(r))
        point = r.read(BIT_STRING)
        r.end()
    except DERError as e:
        raise KeyInvalid(f"malformed SubjectPublicKeyInfo: {e}") from None
    return _bit_string_point(point)


@dataclass(frozen=True, slots=True)
class PrivateKeyParts:
    d: int
    public: tuple[int, int] | None


def _decode_ec_private_key(der: bytes, outer_curve: bytes | None) -> PrivateKeyParts:
    outer = _Reader(der)
    r = _Reader(outer.read(SEQUENCE))
    outer.end()
    if r.uint() != 1:
        raise KeyInvalid("unsupported ECPrivateKey version")
    raw = r.read(OCTET_STRING)
    if not 1 <= len(raw) <= _curve.FIELD_SIZE:
        raise KeyInvalid("private key has the wrong length for SM2")
    d = int.from_bytes(raw, "big")
    curve = outer_curve
    pub = None
    if r.peek_tag() == CTX0:
        params = _Reader(r.read(CTX0))
        inner_curve = params.read(OID)
        params.end()
        if outer_curve is not None and inner_curve != outer_curve:
            raise KeyInvalid("ECPrivateKey curve differs from the AlgorithmIdentifier")
        curve = inner_curve
    if r.peek_tag() == CTX1:
        pub_r = _Reader(r.read(CTX1))
        pub = _bit_string_point(pub_r.read(BIT_STRING))
        pub_r.end()
    r.end()
    _check_curve(curve)
    # GB/T 32918.1 §6.1: d ∈ [1, n-2] (d = n-1 would make (1+d) non-invertible when signing).
    if not 1 <= d <= _curve.N - 2:
        raise KeyInvalid("private key scalar out of range [1, n-2]")
    return PrivateKeyParts(d, pub)


def decode_pkcs8(der: bytes) -> PrivateKeyParts:
    try:
        outer = _Reader(der)
        r = _Reader(outer.read(SEQUENCE))
        outer.end()
        if r.uint() not in (0, 1):  # v1 PrivateKeyInfo or v2 OneAsymmetricKey (RFC 5958)
            raise KeyInvalid("unsupported PKCS#8 version")
        curve = _read_alg(r)
        _check_curve(curve)
        inner = r.read(OCTET_STRING)
        # Attributes [0] and a v2 public key [1] carry nothing we need.
        return _decode_ec_private_key(inner, curve)
    except DERError as e:
        raise KeyInvalid(f"malformed PKCS#8 private key: {e}") from None


def decode_sec1(der: bytes) -> PrivateKeyParts:
    try:
        return _decode_ec_private_key(der, None)
    except DERError as e:
        raise KeyInvalid(f"malformed SEC1 EC private key: {e}") from None


def decode_private_der(der: bytes) -> PrivateKeyParts:
    """PKCS#8 first (our format), then SEC1 ``ECPrivateKey`` (``openssl ec`` output)."""
    try:
        return decode_pkcs8(der)
    except KeyInvalid as first:
        try:
            return decode_sec1(der)
        except KeyInvalid:
            raise first from None


# --- PEM ---------------------------------------------------------------------------------------------

_PEM_RE = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----",
    re.DOTALL,
)


def pem_blocks(pem: bytes | str) -> list[tuple[str, bytes]]:
    """All (label, DER) blocks in a PEM text, in order."""
    if not isinstance(pem, str | bytes | bytearray | memoryview):
        raise KeyInvalid(f"PEM must be text or bytes, not {type(pem).__name__}")
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else bytes(pem)
    out: list[tuple[str, bytes]] = []
    for m in _PEM_RE.finditer(data):
        label = m.group(1).decode("ascii")
        body = m.group(2)
        if b":" in body:
            raise KeyInvalid(f"encrypted or header-carrying PEM ({label}) is not supported")
        try:
            out.append((label, base64.b64decode(b"".join(body.split()), validate=True)))
        except (binascii.Error, ValueError):
            raise KeyInvalid(f"PEM block {label} is not valid base64") from None
    if not out:
        raise KeyInvalid("not PEM: no -----BEGIN ...----- block found")
    return out


def pem_armor(label: str, der: bytes) -> bytes:
    b64 = base64.b64encode(der)
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    head = f"-----BEGIN {label}-----\n".encode()
    tail = f"-----END {label}-----\n".encode()
    return head + b"\n".join(lines) + b"\n" + tail
