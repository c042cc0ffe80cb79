"""Log checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes, signed with SM2.

A note is the body ``<origin>\\n<tree size>\\n<base64 root>\\n[<extension>\\n...]``, a blank line, then one
line per signature: ``— <key name> <base64(key ID ‖ DER SM2 signature of the body)>``. The key ID is
``SHA-256(key name ‖ 0x0A ‖ SIGNATURE_TYPE ‖ SubjectPublicKeyInfo DER)[:4]``. The choices and their reasons
are in ``docs/design/checkpoint-note.md``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from provenance.abc import Signer
from provenance.crypto import SM2PublicKey
from provenance.errors import CheckpointInvalid, FormatError, ProvenanceError, SignatureInvalid
from provenance.records import b64decode

# 0xff is signed-note's byte for signature types it has not assigned, followed by our own identifier.
# It names everything a verifier must agree on: SM2 over SM3 with the default ID, DER signature, SPKI key.
SIGNATURE_TYPE = b"\xff" + b"shancheng-provenance/sm2-sm3"
ROOT_SIZE = 32
KEY_ID_SIZE = 4

# Limits on what a parser accepts (signed-note asks verifiers to bound notes and accept >= 16 signatures).
MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100
MAX_EXTENSIONS = 16
MAX_TREE_SIZE = (1 << 64) - 1

_EM_DASH_PREFIX = "\u2014 "
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def canonical_b64decode(text: str, what: str) -> bytes:
    """Strict standard base64: padded, no stray characters, and canonical (one encoding per value)."""
    try:
        return b64decode(text, what=what)
    except FormatError as e:
        raise CheckpointInvalid(e.message) from e


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _check_text(value: str, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise CheckpointInvalid(f"{what} must be a non-empty string")
    if "\n" in value or _CONTROL.search(value) or not _is_utf8(value):
        raise CheckpointInvalid(f"{what} must be one line of UTF-8 text without control characters")


def _check_key_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise CheckpointInvalid("key name must be a non-empty string")
    if any(c.isspace() or c == "+" for c in name) or _CONTROL.search(name) or not _is_utf8(name):
        raise CheckpointInvalid(f"key name {name!r} must not contain spaces, '+' or control characters")


def key_id(name: str, public_key: SM2PublicKey, signature_type: bytes = SIGNATURE_TYPE) -> bytes:
    """The 4-byte signed-note key ID of an SM2 key under ``name`` (for notes of ``signature_type``)."""
    _check_key_name(name)
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + signature_type + public_key.to_der()).digest()
    return digest[:KEY_ID_SIZE]


def parse_vkey(vkey: str, signature_type: bytes, what: str) -> tuple[str, SM2PublicKey]:
    """The name and SM2 key of a verifier key string ``<name>+<8 hex key ID>+<base64(type ‖ SPKI DER)>``.

    ``what`` names the kind of key in errors; raises FormatError (also when the key ID does not match).
    """
    parts = vkey.strip().split("+", 2)  # the base64 key may itself contain "+"
    if len(parts) != 3:
        raise FormatError(f"{what} is not '<name>+<hash>+<base64 key>'")
    name, hash_hex, key_b64 = parts
    if not re.fullmatch(r"[0-9a-f]{8}", hash_hex):
        raise FormatError(f"{what} hash {hash_hex[:16]!r} is not 8 lowercase hex digits")
    try:
        typed_key = canonical_b64decode(key_b64, what)
        if not typed_key.startswith(signature_type):
            raise FormatError(f"{what} is not an SM2 note key of the expected signature type")
        public_key = SM2PublicKey.from_der(typed_key[len(signature_type) :])
        kid = key_id(name, public_key, signature_type)
    except FormatError:
        raise
    except ProvenanceError as e:  # a bad name (CheckpointInvalid) or a bad key (KeyInvalid)
        raise FormatError(f"{what} is invalid: {e.message}") from e
    if kid.hex() != hash_hex:
        raise FormatError(f"{what} hash does not match its name and public key")
    return name, public_key


def vkey_string(name: str, public_key: SM2PublicKey, signature_type: bytes) -> str:
    """The verifier key string of an SM2 key under ``name`` for notes of ``signature_type``."""
    kid = key_id(name, public_key, signature_type)
    return f"{name}+{kid.hex()}+{_b64encode(signature_type + public_key.to_der())}"


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """A signed statement of the log's tree: origin, size and root (plus opaque extension lines)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_text(self.origin, "checkpoint origin")
        if (
            isinstance(self.size, bool)
            or not isinstance(self.size, int)
            or not 0 <= self.size <= MAX_TREE_SIZE
        ):
            raise CheckpointInvalid(f"checkpoint tree size {self.size!r} is not an integer in [0, 2**64)")
        if not isinstance(self.root, bytes) or len(self.root) != ROOT_SIZE:
            got = len(self.root) if isinstance(self.root, bytes) else type(self.root).__name__
            raise CheckpointInvalid(f"checkpoint root is {got} bytes, expected {ROOT_SIZE}")
        if not isinstance(self.extensions, tuple):
            raise CheckpointInvalid("checkpoint extensions must be a tuple of strings")
        if len(self.extensions) > MAX_EXTENSIONS:
            raise CheckpointInvalid(
                f"checkpoint has {len(self.extensions)} extension lines, at most {MAX_EXTENSIONS}"
            )
        for i, ext in enumerate(self.extensions):
            _check_text(ext, f"checkpoint extension line {i + 1}")

    def body(self) -> bytes:
        """The note text that is signed: origin, size, base64 root and extensions, each ending in newline."""
        lines = [self.origin, str(self.size), _b64encode(self.root), *self.extensions]
        return "".join(f"{line}\n" for line in lines).encode("utf-8")

    @classmethod
    def from_body(cls, body: str) -> Checkpoint:
        """Parse a checkpoint body (the note text, ending in newline); raises CheckpointInvalid."""
        if not body.endswith("\n"):
            raise CheckpointInvalid("checkpoint body does not end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointInvalid(
                f"checkpoint body has {len(lines)} lines, needs origin, tree size and root hash"
            )
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise CheckpointInvalid("checkpoint origin line is empty")
        if not _DECIMAL.fullmatch(size_text):
            raise CheckpointInvalid(
                f"checkpoint tree size {size_text[:40]!r} is not a decimal number without leading zeros"
            )
        # Bound the length before int(): Python refuses (ValueError) to convert very long digit strings.
        if len(size_text) > len(str(MAX_TREE_SIZE)) or int(size_text) > MAX_TREE_SIZE:
            raise CheckpointInvalid(f"checkpoint tree size {size_text} does not fit in 64 bits")
        root = canonical_b64decode(root_text, "checkpoint root hash")
        if len(root) != ROOT_SIZE:
            raise CheckpointInvalid(f"checkpoint root hash is {len(root)} bytes, expected {ROOT_SIZE}")
        for i, ext in enumerate(extensions):
            if not ext:
                raise CheckpointInvalid(f"checkpoint extension line {i + 1} is empty")
        return cls(origin=origin, size=int(size_text), root=root, extensions=tuple(extensions))


@dataclass(frozen=True, kw_only=True)
class NoteSignature:
    """One signature line of a note, decoded but not verified."""

    key_name: str
    key_id: bytes
    signature: bytes

    @property
    def key_hash(self) -> int:
        """The key ID as the big-endian uint32 that Go's note package calls the key hash."""
        return int.from_bytes(self.key_id, "big")


@dataclass(frozen=True, kw_only=True)
class NoteVerifier:
    """A trusted log key: a name and an SM2 public key (its key ID is derived from both)."""

    name: str
    public_key: SM2PublicKey

    def __post_init__(self) -> None:
        _check_key_name(self.name)

    @cached_property
    def key_id(self) -> bytes:
        """The 4-byte key ID that prefixes this key's signatures."""
        return key_id(self.name, self.public_key)

    @property
    def key_hash(self) -> int:
        """The key ID as a big-endian uint32 (printed as 8 hex digits in a verifier key)."""
        return int.from_bytes(self.key_id, "big")

    def vkey(self) -> str:
        """The verifier key string ``<name>+<8 hex key hash>+<base64(SIGNATURE_TYPE ‖ SPKI DER)>``."""
        return vkey_string(self.name, self.public_key, SIGNATURE_TYPE)

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key string (see ``vkey``); raises FormatError."""
        name, public_key = parse_vkey(vkey, SIGNATURE_TYPE, "verifier key")
        return cls(name=name, public_key=public_key)

    def matches(self, sig: NoteSignature) -> bool:
        """Whether a signature line claims this key (same name and key ID)."""
        return sig.key_name == self.name and sig.key_id == self.key_id


def verifier_key_string(name: str, public_key: SM2PublicKey) -> str:
    """The verifier key string for distributing a log key (``NoteVerifier.vkey``)."""
    return NoteVerifier(name=name, public_key=public_key).vkey()


@lru_cache(maxsize=64)
def _signer_key_id(key_name: str, public_key_pem: bytes) -> bytes:
    # The gateway signs a receipt for every accepted record with the same log key: parse it once.
    return key_id(key_name, SM2PublicKey.from_pem(public_key_pem))


def sign_note(body: bytes, key_name: str, signer: Signer, *also: Signer) -> str:
    """The signed note of ``body`` (a note text): body, blank line, one SM2 signature line by ``signer`` and
    one by each of ``also`` under the same name (a log key in rotation: the next key signs beside it)."""
    lines = []
    for s in (signer, *also):
        kid = _signer_key_id(key_name, s.public_key_pem())
        lines.append(signature_line(key_name, kid + s.sign(body)))
    return f"{body.decode('utf-8')}\n{''.join(lines)}"


def sign_checkpoint(checkpoint: Checkpoint, key_name: str, signer: Signer, *also: Signer) -> str:
    """The signed note of ``checkpoint``: its body, a blank line, a signature line by ``signer`` and each of
    ``also``."""
    return sign_note(checkpoint.body(), key_name, signer, *also)


def open_note(note: str | bytes) -> tuple[str, tuple[NoteSignature, ...]]:
    """Split a note into its text and decoded signature lines, enforcing signed-note's syntax (unverified)."""
    if isinstance(note, bytes | bytearray):
        if len(note) > MAX_NOTE_BYTES:
            raise CheckpointInvalid(f"note is {len(note)} bytes, more than {MAX_NOTE_BYTES}")
        try:
            text = bytes(note).decode("utf-8")
        except UnicodeDecodeError as e:
            raise CheckpointInvalid("note is not valid UTF-8") from e
    elif isinstance(note, str):
        text = note
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as e:
            raise CheckpointInvalid("note is not valid UTF-8 (it contains a lone surrogate)") from e
        if size > MAX_NOTE_BYTES:
            raise CheckpointInvalid(f"note is {size} bytes, more than {MAX_NOTE_BYTES}")
    else:
        raise TypeError(f"note must be str or bytes, not {type(note).__name__}")

    control = _CONTROL.search(text)
    if control:
        raise CheckpointInvalid(
            f"note contains control character U+{ord(control.group()):04X} at offset {control.start()}"
        )
    if not text.endswith("\n"):
        raise CheckpointInvalid("note does not end with a newline")
    split = text.rfind("\n\n")
    if split < 0:
        raise CheckpointInvalid("note has no blank line between its text and its signatures")
    body, sig_block = text[: split + 1], text[split + 2 :]
    if not sig_block:
        raise CheckpointInvalid("note has no signature lines after the blank line")
    return body, parse_signature_lines(sig_block)


def parse_signature_lines(block: str) -> tuple[NoteSignature, ...]:
    """Decode a block of note signature lines (each ``— <name> <base64>`` ending in newline), unverified.

    The signature part of a note, and the body of a witness's answer (C2SP tlog-witness); raises
    CheckpointInvalid.
    """
    if not block.endswith("\n"):
        raise CheckpointInvalid("signature lines do not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointInvalid(f"note has {len(lines)} signature lines, at most {MAX_SIGNATURES}")

    signatures = []
    for n, line in enumerate(lines, start=1):
        parts = line[len(_EM_DASH_PREFIX) :].split(" ") if line.startswith(_EM_DASH_PREFIX) else []
        if len(parts) != 2:
            raise CheckpointInvalid(f"signature line {n} is not '— <key name> <base64 signature>'")
        name, sig_b64 = parts
        try:
            _check_key_name(name)
        except CheckpointInvalid as e:
            raise CheckpointInvalid(f"signature line {n}: {e.message}") from e
        raw = canonical_b64decode(sig_b64, f"signature line {n}")
        if len(raw) <= KEY_ID_SIZE:
            raise CheckpointInvalid(
                f"signature line {n} is {len(raw)} bytes, too short for key ID and signature"
            )
        signatures.append(NoteSignature(key_name=name, key_id=raw[:KEY_ID_SIZE], signature=raw[KEY_ID_SIZE:]))
    return tuple(signatures)


def signature_line(key_name: str, payload: bytes) -> str:
    """One note signature line: ``— <key name> <base64(payload)>`` and a newline."""
    return f"{_EM_DASH_PREFIX}{key_name} {_b64encode(payload)}\n"


def parse_note(note: str | bytes) -> tuple[Checkpoint, tuple[NoteSignature, ...]]:
    """Parse a checkpoint note strictly, without verifying signatures; raises CheckpointInvalid."""
    body, signatures = open_note(note)
    return Checkpoint.from_body(body), signatures


def verify_checkpoint(note: str | bytes, verifier: NoteVerifier, *, origin: str | None = None) -> Checkpoint:
    """The checkpoint of ``note`` once ``verifier``'s signature on it verifies; raises CheckpointInvalid.

    Signatures by other keys are ignored (signed-note); every signature claiming ``verifier``'s key must
    verify. With ``origin``, the checkpoint must also name that log.
    """
    body, signatures = open_note(note)
    checkpoint = Checkpoint.from_body(body)
    verify_note_text(body, signatures, verifier)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointInvalid(f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}")
    return checkpoint


def verify_note_text(body: str, signatures: tuple[NoteSignature, ...], verifier: NoteVerifier) -> None:
    """Check ``verifier``'s signatures on a note text (signed-note rules); raises CheckpointInvalid.

    Signatures by other keys are ignored; every one claiming ``verifier``'s key must verify, and there
    must be at least one.
    """
    mine = [s for s in signatures if verifier.matches(s)]
    if not mine:
        raise CheckpointInvalid(
            f"note has no signature from key {verifier.name} ({verifier.key_hash:08x})",
            details={"signers": [f"{s.key_name} ({s.key_hash:08x})" for s in signatures]},
        )
    body_bytes = body.encode("utf-8")
    for sig in mine:
        try:
            verifier.public_key.verify(body_bytes, sig.signature)
        except SignatureInvalid as e:
            raise CheckpointInvalid(
                f"signature by key {verifier.name} ({verifier.key_hash:08x}) does not verify: {e.message}"
            ) from e
