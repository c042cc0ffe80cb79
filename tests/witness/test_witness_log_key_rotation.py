"""A witness across a log key rotation: during the overlap a checkpoint carries both keys' lines and a
witness pinning either cosigns it; one whose trust file ends the old key (re-exported after the switch)
refuses a checkpoint signed by the retired key alone, and cosigns the new key's."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provenance.crypto import SM2PrivateKey
from provenance.log.checkpoint import Checkpoint, sign_checkpoint
from provenance.log.merkle import MerkleLog
from provenance.log.tlog_witness import encode_add_checkpoint
from provenance.verification.trust import LogKey, TrustStore
from tests.kit.tiles import LOG_KEY, LOG_NAME, ORIGIN, WITNESS_KEYS, WITNESSES
from witness.errors import LogSignatureInvalid
from witness.service import Witness, pinned_logs
from witness.state import WitnessState

NEW_KEY = SM2PrivateKey.generate()


def _log_key(key: SM2PrivateKey, **window: datetime) -> LogKey:
    pem = key.public_key_pem().decode("ascii")
    return LogKey(name=LOG_NAME, public_key=key.public_key(), pem=pem, origin=ORIGIN, **window)


def _witness(folder: Path, trust: TrustStore) -> Witness:
    w, k = WITNESSES[0], WITNESS_KEYS[0]
    return Witness(name=w.name, key=k, logs=pinned_logs(trust), state=WitnessState(folder / "w.db"))


def _request(old: int, size: int, *signers: SM2PrivateKey) -> bytes:
    """``add-checkpoint`` from ``old`` to ``size`` (one log, fixed entries), signed by ``signers``."""
    log = MerkleLog.in_memory()
    for i in range(size):
        log.append(f"entry {i}".encode())
    cp = Checkpoint(origin=ORIGIN, size=size, root=log.root(size))
    note = sign_checkpoint(cp, LOG_NAME, signers[0], *signers[1:])
    return encode_add_checkpoint(old, log.consistency_proof(old, size) if old else [], note)


def test_witness_cosigns_across_a_log_key_rotation(tmp_path: Path) -> None:
    # Overlap: a witness still pinning only the old key cosigns the checkpoint both keys signed.
    old_only = _witness(tmp_path / "a", TrustStore(logs=[_log_key(LOG_KEY)]))
    assert old_only.add_checkpoint(_request(0, 3, LOG_KEY, NEW_KEY)).line
    # After the switch, the trust file re-exported from the chain: the old key retired a minute ago.
    retired = datetime.now(UTC) - timedelta(minutes=1)
    rotated = TrustStore(logs=[_log_key(LOG_KEY, revoked_at=retired), _log_key(NEW_KEY)])
    assert len(pinned_logs(rotated)[ORIGIN]) == 1
    w = _witness(tmp_path / "b", rotated)
    assert w.add_checkpoint(
        _request(0, 3, LOG_KEY, NEW_KEY)
    ).line  # an overlap checkpoint: the new line holds
    assert w.add_checkpoint(_request(3, 4, NEW_KEY)).line
    with pytest.raises(LogSignatureInvalid) as refused:
        w.add_checkpoint(_request(4, 5, LOG_KEY))  # the retired key alone: no longer the log's
    assert refused.value.code == "LOG_SIGNATURE_INVALID"
    # The same request is cosigned while the old key has no end: the window is what refused it.
    open_ended = dataclasses.replace(rotated, logs=[_log_key(LOG_KEY), _log_key(NEW_KEY)])
    assert _witness(tmp_path / "c", open_ended).add_checkpoint(_request(0, 5, LOG_KEY)).line
