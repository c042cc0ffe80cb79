"""Witness cosignatures of checkpoints (C2SP tlog-cosignature's shape, signed with SM2) and quorum policies.

A cosignature is one more signature line on a checkpoint note, by a witness that checked the checkpoint
extends the last one it cosigned for that log::

    — <witness name> base64(key ID ‖ timestamp ‖ DER SM2 signature)

``timestamp`` is 8 bytes, big-endian POSIX seconds; the signature covers the *cosigned message*
``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint's note text. The key ID is
``SHA-256(name ‖ 0x0A ‖ COSIGNATURE_TYPE ‖ SPKI DER)[:4]``. The choices and their reasons are in
``docs/design/witness.md``; the format in ``docs/formats.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Protocol

from provenance.abc import Signer
from provenance.crypto import SM2PublicKey
from provenance.errors import (
    CheckpointInvalid,
    FormatError,
    ProvenanceError,
    SignatureInvalid,
    WitnessQuorumMissing,
)
from provenance.log.checkpoint import (
    NoteSignature,
    key_id,
    open_note,
    parse_vkey,
    signature_line,
    vkey_string,
)

# signed-note's 0xff (unassigned types) and our own identifier: a cosignature key ID never equals the
# checkpoint key ID of the same key, so a checkpoint signature can never pass for a cosignature or back.
# Neither identifier is a prefix of the other, so a verifier key string of one type never parses as the other.
COSIGNATURE_TYPE = b"\xff" + b"shancheng-provenance/cosignature-sm2-sm3/v1"
HEADER = "cosignature/v1"
TIMESTAMP_SIZE = 8
MAX_TIMESTAMP = (1 << 63) - 1
MAX_WITNESSES = 64

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def cosigned_message(body: bytes, timestamp: int) -> bytes:
    """The bytes a cosignature signs: header line, time line, then the checkpoint's note text."""
    _check_timestamp(timestamp)
    return f"{HEADER}\ntime {timestamp}\n".encode("ascii") + body


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CheckpointInvalid(f"cosignature timestamp {timestamp!r} is not an integer in [0, 2**63)")


def cosign(body: bytes, key_name: str, signer: Signer, *, timestamp: int) -> str:
    """The cosignature line (newline-terminated) of ``signer`` over the checkpoint note text ``body``."""
    kid = _key_id_of(key_name, signer)
    signature = signer.sign(cosigned_message(body, timestamp))
    return signature_line(key_name, kid + timestamp.to_bytes(TIMESTAMP_SIZE, "big") + signature)


def _key_id_of(key_name: str, signer: Signer) -> bytes:
    return _cached_key_id(key_name, signer.public_key_pem())


@lru_cache(maxsize=64)
def _cached_key_id(key_name: str, public_key_pem: bytes) -> bytes:
    # A witness cosigns every checkpoint with the same key: parse it once.
    return key_id(key_name, SM2PublicKey.from_pem(public_key_pem), COSIGNATURE_TYPE)


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A cosignature that verified: who made it and when (POSIX seconds, the witness's clock)."""

    witness: str
    timestamp: int


@dataclass(frozen=True, kw_only=True)
class WitnessKey:
    """A trusted witness: its key name and SM2 public key, and the organisation that runs it."""

    name: str
    public_key: SM2PublicKey
    org: str = ""

    def __post_init__(self) -> None:
        key_id(self.name, self.public_key, COSIGNATURE_TYPE)  # checks the name

    @cached_property
    def key_id(self) -> bytes:
        """The 4-byte key ID that prefixes this witness's cosignatures."""
        return key_id(self.name, self.public_key, COSIGNATURE_TYPE)

    @property
    def label(self) -> str:
        """How errors and reports name the witness: its key name and, if known, its organisation."""
        return f"{self.name} ({self.org})" if self.org else self.name

    def vkey(self) -> str:
        """The verifier key string ``<name>+<8 hex key ID>+<base64(COSIGNATURE_TYPE ‖ SPKI DER)>``."""
        return vkey_string(self.name, self.public_key, COSIGNATURE_TYPE)

    @classmethod
    def from_vkey(cls, vkey: str, *, org: str = "") -> WitnessKey:
        """Parse a witness verifier key string (see ``vkey``); raises FormatError."""
        name, public_key = parse_vkey(vkey, COSIGNATURE_TYPE, "witness key")
        return cls(name=name, public_key=public_key, org=org)

    def matches(self, sig: NoteSignature) -> bool:
        """Whether a signature line claims this witness's key (same name and key ID)."""
        return sig.key_name == self.name and sig.key_id == self.key_id

    def verify(self, body: bytes, sig: NoteSignature) -> Cosignature:
        """Check one cosignature line claiming this key over note text ``body``; raises CheckpointInvalid."""
        payload = sig.signature  # after the key ID: timestamp, then the DER signature
        if len(payload) <= TIMESTAMP_SIZE:
            raise CheckpointInvalid(f"cosignature by witness {self.label} is too short for a timestamp")
        timestamp = int.from_bytes(payload[:TIMESTAMP_SIZE], "big")
        try:
            _check_timestamp(timestamp)
            self.public_key.verify(cosigned_message(body, timestamp), payload[TIMESTAMP_SIZE:])
        except (SignatureInvalid, CheckpointInvalid) as e:
            raise CheckpointInvalid(
                f"cosignature by witness {self.label} does not verify: {e.message}",
                details={"witness": self.name},
            ) from e
        return Cosignature(witness=self.name, timestamp=timestamp)


def verify_cosignatures(
    body: str | bytes, signatures: Iterable[NoteSignature], witnesses: Iterable[WitnessKey]
) -> list[Cosignature]:
    """The cosignatures of ``witnesses`` among ``signatures``, each verified over ``body``; one per witness.

    Lines by other keys are ignored (signed-note); a line claiming a trusted witness's key that does
    not verify rejects the note (CheckpointInvalid), as a bad log signature does.
    """
    text = body.encode("utf-8") if isinstance(body, str) else body
    sigs = list(signatures)
    found: list[Cosignature] = []
    for w in witnesses:
        mine = [s for s in sigs if w.matches(s)]
        checked = [w.verify(text, s) for s in mine]
        if checked:
            found.append(max(checked, key=lambda c: c.timestamp))
    return found


@dataclass(frozen=True, kw_only=True)
class WitnessPolicy:
    """Trusted witnesses and how many of them must cosign a checkpoint (k of n)."""

    witnesses: tuple[WitnessKey, ...]
    quorum: int

    def __post_init__(self) -> None:
        n = len(self.witnesses)
        if not 1 <= n <= MAX_WITNESSES:
            raise FormatError(f"a witness policy names 1 to {MAX_WITNESSES} witnesses, not {n}")
        q = self.quorum
        if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q <= n:
            raise FormatError(f"witness quorum {q!r} is not a number from 1 to {n} (the witnesses named)")
        # One witness listed twice (by name or by key) must not count twice towards the quorum.
        if len({w.name for w in self.witnesses}) != n or len({w.public_key for w in self.witnesses}) != n:
            raise FormatError("a witness policy names the same witness (name or key) more than once")

    def check(self, note: str | bytes) -> list[Cosignature]:
        """The verified cosignatures of a checkpoint note when they reach the quorum; else raises
        WitnessQuorumMissing (or CheckpointInvalid for a malformed note or a bad trusted cosignature)."""
        body, signatures = open_note(note)
        return self.check_signatures(body, signatures)

    def check_signatures(self, body: str, signatures: Sequence[NoteSignature]) -> list[Cosignature]:
        """:meth:`check` for a note already split into its text and signature lines."""
        found = verify_cosignatures(body, signatures, self.witnesses)
        if len(found) < self.quorum:
            by = [c.witness for c in found]
            labels = {w.name: w.label for w in self.witnesses}
            who = ", ".join(labels[n] for n in by) if by else "none"
            raise WitnessQuorumMissing(
                f"checkpoint has {len(found)} of the {self.quorum} witness cosignatures the trust policy "
                f"requires (cosigned by: {who})",
                details={
                    "cosigned_by": by,
                    "quorum": self.quorum,
                    "witnesses": [w.name for w in self.witnesses],
                },
            )
        return found

    # --- the trust file's "witnesses" object ------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any) -> WitnessPolicy:
        """``{"quorum": k, "keys": [{"name", "org", "public_key" (PEM)}, ...]}``; raises FormatError."""
        if not isinstance(data, Mapping):
            raise FormatError("'witnesses' must be an object with 'quorum' and 'keys'")
        keys = data.get("keys")
        if not isinstance(keys, list):
            raise FormatError("'witnesses.keys' must be a list")
        witnesses = []
        for i, k in enumerate(keys):
            if not isinstance(k, Mapping) or not isinstance(k.get("name"), str):
                raise FormatError(f"witness {i + 1} has no 'name'")
            pem, org = k.get("public_key"), k.get("org", "")
            if not isinstance(pem, str) or not isinstance(org, str):
                raise FormatError(f"witness {k['name']!r} needs a 'public_key' PEM (and 'org' as text)")
            try:
                witnesses.append(WitnessKey(name=k["name"], public_key=SM2PublicKey.from_pem(pem), org=org))
            except ProvenanceError as e:
                raise FormatError(f"witness {k['name']!r}: {e.message}") from e
        return cls(witnesses=tuple(witnesses), quorum=data.get("quorum"))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The trust file's form (see :meth:`from_dict`)."""
        return {
            "quorum": self.quorum,
            "keys": [
                {"name": w.name, "org": w.org, "public_key": w.public_key.to_pem().decode("ascii")}
                for w in self.witnesses
            ],
        }


class _HasWitnesses(Protocol):
    witnesses: WitnessPolicy | None


def require_quorum(trust: _HasWitnesses | None, note: str | bytes) -> None:
    """Apply a trust file's witness policy to a checkpoint note: None when it has none or the note meets it;
    else WITNESS_QUORUM_MISSING (naming who cosigned) or CHECKPOINT_INVALID (a bad trusted cosignature)."""
    if trust is not None and trust.witnesses is not None:
        trust.witnesses.check(note)
