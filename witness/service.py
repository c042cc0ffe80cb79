"""The witness itself: check a submitted checkpoint, remember it, cosign it (C2SP tlog-witness)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from provenance.abc import Signer
from provenance.crypto import SM2PrivateKey, SM2PublicKey
from provenance.errors import CheckpointInvalid, FormatError
from provenance.log.checkpoint import Checkpoint, NoteSignature, NoteVerifier, open_note, verify_note_text
from provenance.log.cosignature import WitnessKey, cosign
from provenance.log.tlog_witness import parse_add_checkpoint
from provenance.verification.trust import TrustStore
from witness.config import WitnessSettings
from witness.errors import LogSignatureInvalid, LogUnknown
from witness.state import WitnessState


@dataclass(frozen=True, slots=True)
class Cosignature:
    """What one ``add-checkpoint`` produced: the checkpoint and the cosignature line."""

    checkpoint: Checkpoint
    line: str


def pinned_logs(trust: TrustStore, now: datetime | None = None) -> dict[str, list[NoteVerifier]]:
    """The log keys of a trust file by origin (a log without an origin cannot be witnessed: skipped). A key
    whose window ended by ``now`` (a log key retired at a rotation's switch, or revoked) is left out: the
    witness cosigns today's checkpoints, which only a current key signs. During a rotation's overlap the
    checkpoints carry both keys' lines, so a witness pinning either keeps cosigning; after the switch it
    needs the trust file re-exported with the new key (docs/design/gateway.md, "Log key rotation")."""
    at = now or datetime.now(UTC)
    logs: dict[str, list[NoteVerifier]] = {}
    for lk in trust.logs:
        if lk.origin and lk.signs_after(at):
            logs.setdefault(lk.origin, []).append(NoteVerifier(name=lk.name, public_key=lk.public_key))
    return logs


class Witness:
    """Cosigns checkpoints of the pinned logs that extend the last one it cosigned for each."""

    def __init__(
        self,
        *,
        name: str,
        key: Signer,
        logs: Mapping[str, Sequence[NoteVerifier]],
        state: WitnessState,
        org: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        # The public side (checks the name), for /healthz and trust files.
        self.key = WitnessKey(name=name, public_key=SM2PublicKey.from_pem(key.public_key_pem()), org=org)
        self._signer = key
        self._logs = {origin: tuple(v) for origin, v in logs.items()}
        self.state = state
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: WitnessSettings) -> Witness:
        """The witness the settings describe (key, pinned logs, state file); raises ProvenanceError."""
        if not settings.name:
            raise FormatError("the witness needs a name (PROV_WITNESS_NAME)")
        try:
            key = SM2PrivateKey.from_pem(settings.key_file.read_bytes())
        except OSError as exc:
            raise FormatError(f"cannot read the witness key {settings.key_file}: {exc.strerror}") from exc
        logs = pinned_logs(TrustStore.load(settings.trust_file))
        if not logs:
            raise FormatError(f"the trust file {settings.trust_file} pins no log with an origin")
        return cls(
            name=settings.name, key=key, logs=logs, state=WitnessState(settings.state_file), org=settings.org
        )

    @property
    def origins(self) -> list[str]:
        """The origins of the logs this witness cosigns."""
        return sorted(self._logs)

    def add_checkpoint(self, body: bytes) -> Cosignature:
        """Handle one ``add-checkpoint`` request body; raises the error its HTTP answer names."""
        request = parse_add_checkpoint(body)
        text, signatures = open_note(request.note)  # CheckpointInvalid: 400
        checkpoint = Checkpoint.from_body(text)
        verifiers = self._logs.get(checkpoint.origin)
        if verifiers is None:
            raise LogUnknown(
                f"this witness does not witness the log {checkpoint.origin!r}",
                details={"origin": checkpoint.origin},
            )
        self._check_log_signature(text, signatures, verifiers, checkpoint.origin)
        if request.old_size > checkpoint.size:
            raise FormatError(
                f"old size {request.old_size} is above the checkpoint's size {checkpoint.size}",
                details={"old_size": request.old_size, "size": checkpoint.size},
            )
        self.state.advance(request.old_size, checkpoint, request.proof, request.note)
        line = cosign(text.encode("utf-8"), self.key.name, self._signer, timestamp=int(self._clock()))
        return Cosignature(checkpoint=checkpoint, line=line)

    @staticmethod
    def _check_log_signature(
        text: str, signatures: tuple[NoteSignature, ...], verifiers: Sequence[NoteVerifier], origin: str
    ) -> None:
        reasons = []
        for v in verifiers:
            try:
                verify_note_text(text, signatures, v)
                return
            except CheckpointInvalid as exc:
                reasons.append(exc.message)
        raise LogSignatureInvalid(
            f"no signature on the checkpoint verifies with the key pinned for {origin!r}: "
            + "; ".join(reasons),
            details={"origin": origin},
        )
