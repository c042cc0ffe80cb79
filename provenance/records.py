"""Record envelopes: canonical bytes (RFC 8785), SM3 digests and SM2 signatures.

A record is the envelope below plus an SM2 signature over its canonical bytes. The payload (a FHIR
resource, an HJ 212 packet, ...) travels beside it; the envelope carries only the payload's digest, so
purging a payload leaves the record, its digest and its proofs valid.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import rfc8785

from provenance.abc import Signer
from provenance.crypto.sm3 import sm3_hex
from provenance.errors import DuplicateKey, FormatError, RecordInvalid
from provenance.limits import json_depth_exceeds
from provenance.timestamps import parse_timestamp, utc_now
from provenance.types import Digest, OrgId, RecordKind, Subject

ENVELOPE_VERSION = 1

# Closed set of envelope fields: an extra field would be signed but ignored by readers, a gap for abuse.
ENVELOPE_FIELDS = ("version", "kind", "subject", "org", "timestamp", "nonce", "prev", "payload_digest")
_ENVELOPE_FIELD_SET = frozenset(ENVELOPE_FIELDS)

# Matched with fullmatch: ``$`` in a Python pattern also matches before a final "\n", so N and N + "\n" would
# both pass (a replayed nonce, a subject the bundle schema and the page refuse). The bundle schema's patterns
# are the same (JSON Schema regexes are ECMA 262, where ``$`` is the end).
_KIND_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
# Whitespace by an explicit list, the schema's (Python's \s and a browser's differ at U+0085 and U+FEFF).
_SUBJECT_RE = re.compile(
    r"[a-z][a-z0-9_]*:"
    r"[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff\ud800-\udfff]{1,200}"
)
_ORG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
_NONCE_RE = re.compile(r"[0-9a-f]{32,64}")

_SAFE_INT = 2**53
_MAX_DEPTH = 200


def _check_value(obj: Any, depth: int = 0, floats: list[float] | None = None) -> bool:
    """Refuse floats whose canonical form cannot be read back; True when ``json.dumps`` writes the JCS bytes.
    ``floats``: each float of the value is appended to it (an export's fast path checks them, in this walk).

    That holds for a value of exact JSON types without integers beyond ±(2^53 − 1) (refused by JCS), whose
    floats are not integral and lie in [1e-4, 1e16) in magnitude (there both write the same shortest
    round-trip digits in fixed notation; elsewhere JCS drops ".0" or writes exponents its own way) and whose
    object keys lie in the Basic Multilingual Plane (JCS sorts keys by UTF-16 code units, Python by code
    points: they differ only beyond U+FFFF). Strings are escaped identically by both (RFC 8785 §3.2.2.2 and
    ``json``'s ``ensure_ascii=False``).
    """
    if depth > _MAX_DEPTH:
        raise FormatError("value is nested too deeply to canonicalise")
    t = type(obj)
    if t is str or t is bool or obj is None:
        return True
    if t is int:
        return bool(-_SAFE_INT < obj < _SAFE_INT)
    plain = True
    if (t is dict or t is list) and obj and depth == _MAX_DEPTH:  # its string items are not visited below
        raise FormatError("value is nested too deeply to canonicalise")
    if t is dict:
        for k, v in obj.items():
            if type(k) is not str or not (k.isascii() or max(k) <= "\uffff"):
                plain = False
            # Strings are most leaves: checked here rather than by a call.
            if type(v) is not str and not _check_value(v, depth + 1, floats):
                plain = False
        return plain
    if t is list:
        for v in obj:
            if type(v) is not str and not _check_value(v, depth + 1, floats):
                plain = False
        return plain
    if isinstance(obj, float):
        if floats is not None:
            floats.append(obj)
        # JCS writes an integral float below 1e21 without exponent (1e16 -> "10000000000000000"); read
        # back, that is an integer beyond 2^53, which JCS refuses: the digest could never be recomputed.
        if _SAFE_INT <= abs(obj) < 1e21:
            raise FormatError(f"number {obj!r} is not exactly representable in JSON: send it as a string")
        return bool(t is float and 1e-4 <= abs(obj) < 1e16 and not obj.is_integer())
    if isinstance(obj, dict):
        for v in obj.values():
            _check_value(v, depth + 1, floats)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _check_value(v, depth + 1, floats)
    return False


def canonical_bytes(obj: Any, *, floats: list[float] | None = None) -> bytes:
    """RFC 8785 (JCS) canonical UTF-8 bytes of a JSON value whose canonical form reads back to itself;
    ``floats`` (a list) receives the value's floats on the way."""
    if _check_value(obj, 0, floats):
        # ~5x faster than the rfc8785 library on a FHIR resource, byte-identical (fuzzed against it).
        try:
            return _flat_canonical(obj)
        except UnicodeEncodeError:
            pass  # a lone surrogate: the library refuses it below
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise FormatError(f"value cannot be canonicalised as JSON: {exc}") from exc


def _flat_canonical(obj: Any) -> bytes:
    """JCS of a value for which ``_check_value`` holds (validated envelopes do), via ``orjson``.

    For such values RFC 8785, ``json.dumps(sort_keys=True)`` and ``orjson``'s sorted output agree byte for
    byte (tested against the ``rfc8785`` library, and orjson against json.dumps for every code point); this
    path is ~10x faster (orjson ~3x json.dumps on a FHIR payload), and envelopes and payloads are
    canonicalised on every verification. A string orjson refuses (a lone surrogate) goes through
    ``json.dumps``, whose UnicodeEncodeError sends it on to the library.
    """
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest_of(obj: Any) -> Digest:
    """SM3 hex of a JSON value's canonical bytes."""
    return Digest(sm3_hex(canonical_bytes(obj)))


@dataclass(frozen=True, slots=True)
class Envelope:
    """The signed part of a record."""

    kind: RecordKind
    subject: Subject
    org: OrgId
    timestamp: str
    nonce: str
    prev: Digest | None
    payload_digest: Digest
    version: int = ENVELOPE_VERSION
    # Filled by the first canonical(): a verification needs the bytes for the digest, the signature and the
    # leaf entry, and the envelope is immutable.
    _canonical: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def create(
        cls,
        *,
        kind: str,
        subject: str,
        org: str,
        payload: Any,
        prev: str | None = None,
        timestamp: str | None = None,
    ) -> Envelope:
        """A new envelope for ``payload`` (a JSON value), with a fresh CSPRNG nonce."""
        env = cls(
            kind=RecordKind(kind),
            subject=Subject(subject),
            org=OrgId(org),
            timestamp=timestamp or utc_now(),
            nonce=secrets.token_hex(16),
            prev=Digest(prev) if prev is not None else None,
            payload_digest=digest_of(payload),
        )
        env.validate()
        return env

    @classmethod
    def from_dict(cls, data: Any) -> Envelope:
        """Parse and validate an envelope from its JSON object form."""
        if not isinstance(data, Mapping):
            raise RecordInvalid("record envelope must be a JSON object")
        if data.keys() != _ENVELOPE_FIELD_SET:
            missing = [f for f in ENVELOPE_FIELDS if f not in data]
            extra = sorted(set(data) - _ENVELOPE_FIELD_SET)
            raise RecordInvalid(
                "record envelope fields are wrong",
                details={"missing": missing, "unexpected": extra},
            )
        env = cls(
            version=data["version"],
            kind=data["kind"],
            subject=data["subject"],
            org=data["org"],
            timestamp=data["timestamp"],
            nonce=data["nonce"],
            prev=data["prev"],
            payload_digest=data["payload_digest"],
        )
        env.validate()
        return env

    def validate(self) -> None:
        """Raise :class:`RecordInvalid` naming the first bad field."""

        def bad(field: str, why: str) -> RecordInvalid:
            return RecordInvalid(f"envelope field '{field}' {why}", details={"field": field})

        if type(self.version) is not int or self.version != ENVELOPE_VERSION:
            raise bad("version", f"must be {ENVELOPE_VERSION}")
        if not isinstance(self.kind, str) or not _KIND_RE.fullmatch(self.kind):
            raise bad("kind", "must look like 'rx.issue'")
        if not isinstance(self.subject, str) or not _SUBJECT_RE.fullmatch(self.subject):
            raise bad("subject", "must look like 'rx:<id>' (prefix, colon, no spaces, ≤ 200 chars)")
        if not isinstance(self.org, str) or not _ORG_RE.fullmatch(self.org):
            raise bad("org", "must be 1-32 characters of letters, digits, '.', '_' or '-'")
        parse_timestamp(self.timestamp)
        if not isinstance(self.nonce, str) or not _NONCE_RE.fullmatch(self.nonce):
            raise bad("nonce", "must be 32-64 lowercase hex characters")
        if self.prev is not None and (not isinstance(self.prev, str) or not _DIGEST_RE.fullmatch(self.prev)):
            raise bad("prev", "must be null or a lowercase SM3 hex digest")
        if not isinstance(self.payload_digest, str) or not _DIGEST_RE.fullmatch(self.payload_digest):
            raise bad("payload_digest", "must be a lowercase SM3 hex digest")

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in ENVELOPE_FIELDS}

    def canonical(self) -> bytes:
        """The bytes that are signed and digested (RFC 8785 of the validated envelope)."""
        c = self._canonical
        if c is None:
            c = _flat_canonical(self.to_dict())
            object.__setattr__(self, "_canonical", c)
        return c

    @property
    def digest(self) -> Digest:
        """SM3 hex of the canonical bytes; also the record id."""
        return Digest(sm3_hex(self.canonical()))


@dataclass(frozen=True, slots=True)
class SignedRecord:
    """An envelope with its SM2 signature (DER) by the organisation's key."""

    envelope: Envelope
    signature: bytes

    @property
    def record_id(self) -> Digest:
        return self.envelope.digest

    def signature_b64(self) -> str:
        return base64.b64encode(self.signature).decode("ascii")

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.envelope.to_dict(), "signature": self.signature_b64()}

    def leaf_entry(self) -> bytes:
        """The bytes appended to the Merkle log for this record: envelope and signature, canonical."""
        # RFC 8785 of {"record": envelope, "signature": base64}: keys in that order, the envelope's own
        # canonical bytes, and base64 has nothing to escape (tested equal to the rfc8785 library).
        return b"".join(
            (
                b'{"record":',
                self.envelope.canonical(),
                b',"signature":"',
                self.signature_b64().encode(),
                b'"}',
            )
        )

    @classmethod
    def from_dict(cls, data: Any) -> SignedRecord:
        if not isinstance(data, Mapping) or "record" not in data or "signature" not in data:
            raise RecordInvalid("signed record must be an object with 'record' and 'signature'")
        return cls(envelope=Envelope.from_dict(data["record"]), signature=b64decode(data["signature"]))


def sign_envelope(envelope: Envelope, signer: Signer) -> SignedRecord:
    """Sign an envelope's canonical bytes with SM2 (default ID)."""
    envelope.validate()
    return SignedRecord(envelope=envelope, signature=signer.sign(envelope.canonical()))


def b64decode(value: Any, *, what: str = "signature") -> bytes:
    """Strict, canonical standard base64 (padding required, zero trailing bits), or a project error.

    Canonical so that one value has one text: the log hashes the signature's base64 inside the leaf, and a
    verifier that re-encoded a lenient decoding would hash other bytes than the text it was given.
    """
    if not isinstance(value, str):
        raise FormatError(f"{what} must be a base64 string")
    try:
        text = value.encode("ascii")
        # What base64.b64decode(..., validate=True) does, without its wrappers (bundles carry dozens).
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise FormatError(f"{what} is not valid base64") from exc
    if binascii.b2a_base64(raw, newline=False) != text:
        raise FormatError(f"{what} is not canonical base64 (non-zero trailing bits)")
    return raw


# Nesting deeper than this is refused when JSON is read (the page refuses the same): no reader's stack
# is at risk, and the verifiers agree on where "too deep" starts.
MAX_JSON_DEPTH = 256


def _no_constants(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259); Python accepts them, browsers do not: refuse them here too.
    raise ValueError(f"{name} is not valid JSON")


def exact_float(text: str) -> float:
    """``parse_float`` for ``json.loads``: the number, if its text denotes the value every reader holds.

    A reader holds the nearest double, and a canonical form (RFC 8785) writes that double's shortest
    digits. ``1e-400`` (read as 0) or ``0.10000000000000000555`` (read as 0.1) show one number and sign
    another: refused, so that what a verifier shows is what was signed (the page applies the same rule).
    """
    value = float(text)
    shortest = repr(value)
    if shortest != text and _decimal(shortest) != _decimal(text):
        raise ValueError(
            f"number {text[:40]} is not exactly the value a reader holds ({shortest}): write it as that"
        )
    return value


_NUMBER = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?")


def _decimal(text: str) -> tuple[str, str, int] | None:
    """The exact decimal value of a number text as (sign, digits, exponent) without spare zeros (zero is
    ("", "0", 0)); None for "inf" or "nan". The page's ``decimalKey`` (webui/src/jcs.js) is its twin."""
    m = _NUMBER.fullmatch(text)
    if m is None:
        return None
    sign, whole, frac, exp = m.group(1), m.group(2), m.group(3) or "", m.group(4) or "0"
    digits = (whole + frac).lstrip("0")
    if not digits:
        return ("", "0", 0)
    stripped = digits.rstrip("0")
    return (sign, stripped, int(exp) - len(frac) + len(digits) - len(stripped))


def unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json.loads``: an object, or :class:`DuplicateKey` if it names a key twice.

    Parsers keep different copies of a duplicated key (Python and browsers the last, others the first), so
    a signer and a verifier could read different documents from the same bytes: every JSON this project
    parses from outside (request bodies, payloads, bundles, trust files) goes through this hook.
    """
    obj = dict(pairs)
    if len(obj) != len(pairs):  # the rare case: find the key to name it
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(
                    f"duplicate key {key[:80]!r}: a JSON object names it twice", details={"key": key[:80]}
                )
            seen.add(key)
    return obj


def load_json(text: str | bytes, *, what: str = "input") -> Any:
    """Parse strict JSON (RFC 8259 in UTF-8) with a project error, never a raw ValueError, on bad input.

    Stricter than ``json.loads``, the same as the /verify page: UTF-8 only, no byte order mark, no key twice
    in an object (:class:`DuplicateKey`), no NaN/Infinity, no number whose text is not exactly the value
    read (:func:`exact_float`), at most ``MAX_JSON_DEPTH`` levels of nesting.
    """
    try:
        if isinstance(text, bytes | bytearray):
            raw = bytes(text)
            text = raw.decode("utf-8")  # json.loads would also guess UTF-16 and UTF-32
        else:
            raw = text.encode("utf-8", "surrogatepass")
        if text.startswith("\ufeff"):
            raise ValueError("it starts with a byte order mark (U+FEFF)")
        if json_depth_exceeds(raw, MAX_JSON_DEPTH):
            raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep")
        return json.loads(
            text, parse_constant=_no_constants, parse_float=exact_float, object_pairs_hook=unique_object
        )
    except DuplicateKey as exc:
        raise DuplicateKey(f"{what} is not valid JSON: {exc.message}", details=exc.details) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise FormatError(f"{what} is not valid JSON: {exc}") from exc
