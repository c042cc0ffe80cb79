"""``python -m gateway rotate-kek``: every data key re-wrapped under a new KEK while the gateway serves.

1. The next KEK is generated into ``<KEK file>.next`` (0600), carrying the pseudonym key over, or the one a
   run that stopped left there is taken up again (resumable: nothing else holds the rotation's state).
2. Running gateways see it within ``RELOAD_S`` (``KekRing``): they wrap new data keys with it and unwrap
   with either KEK, so no read fails during the rotation.
3. Every data key wrapped with the old KEK is re-wrapped with the next one, ``batch`` rows per transaction
   (each row reads the same before and after); passes repeat until one finds none left after the gateways
   had time to switch.
4. The next KEK replaces the KEK file (an atomic rename) and the old key's bytes are overwritten: the old
   KEK is destroyed, so a database dump or a backup from before the rotation no longer opens with anything
   the gateway holds.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import col, select

from gateway.core.db import Database
from gateway.core.kek import (
    PSEUDONYM_KEY_LABEL,
    RELOAD_S,
    KeyEncryptionKey,
    next_kek_path,
    read_kek,
)
from gateway.errors import DataKeyUnavailable
from gateway.models import DataKey
from provenance.crypto import generate_sm4_key
from provenance.files import write_private

log = logging.getLogger("gateway.kek")


@dataclass(frozen=True, slots=True)
class Rotation:
    """What a run did: the KEK ids, data keys re-wrapped, and whether the old KEK is destroyed yet."""

    old: str
    new: str
    rewrapped: int
    remaining: int
    finished: bool


def _rewrap(
    db: Database, old: KeyEncryptionKey, new: KeyEncryptionKey, *, batch: int, limit: int | None
) -> int:
    done = 0
    while limit is None or done < limit:
        n = batch if limit is None else min(batch, limit - done)
        with db.write() as s:
            rows = s.exec(
                select(DataKey).where(DataKey.kek_id == old.key_id).order_by(col(DataKey.record_id)).limit(n)
            ).all()
            for row in rows:
                row.key, row.kek_id = new.wrap(row.record_id, old.data_key(row)), new.key_id
                s.add(row)
        done += len(rows)
        if len(rows) < n:
            break
    return done


def _remaining(db: Database, kek_id: str) -> int:
    with db.session() as s:
        return len(s.exec(select(DataKey.record_id).where(DataKey.kek_id == kek_id)).all())


def rotate_kek(
    db: Database, path: Path, *, batch: int = 500, limit: int | None = None, settle: float = 2 * RELOAD_S
) -> Rotation:
    """Rotate the KEK in ``path`` (see the module); ``limit``: re-wrap at most that many keys this run."""
    old = read_kek(path)
    if old is None:
        raise DataKeyUnavailable(
            f"there is no key-encryption key file {path} to rotate", details={"file": str(path)}
        )
    nxt_path = next_kek_path(path)
    new = read_kek(nxt_path)
    if new is None:
        new = KeyEncryptionKey(key=generate_sm4_key(), pseudonym=old.derive(PSEUDONYM_KEY_LABEL))
        write_private(nxt_path, new.file_bytes())
        log.warning("next key-encryption key %s written to %s", new.key_id, nxt_path)
        time.sleep(settle)  # the running gateways switch to it before the first pass
    elif new.derive(PSEUDONYM_KEY_LABEL) != old.derive(PSEUDONYM_KEY_LABEL):
        raise DataKeyUnavailable(
            f"{nxt_path} is not the next key of {path} (its pseudonym key differs): remove it to start over",
            details={"file": str(nxt_path)},
        )
    rewrapped = _rewrap(db, old, new, batch=batch, limit=limit)
    if limit is not None and rewrapped >= limit:
        remaining = _remaining(db, old.key_id)
        if remaining:
            return Rotation(old.key_id, new.key_id, rewrapped, remaining, finished=False)
    # A gateway that had not switched yet may have wrapped a few more with the old KEK: a last pass after
    # they all had the time to.
    time.sleep(settle)
    rewrapped += _rewrap(db, old, new, batch=batch, limit=None)
    with path.open("r+b") as f:
        size = f.seek(0, os.SEEK_END)
        os.replace(nxt_path, path)  # the KEK file is the next key now; the old one's inode is held by ``f``
        f.seek(0)
        f.write(b"\0" * size)
        f.flush()
        os.fsync(f.fileno())
    log.warning("key-encryption key %s replaced by %s; the old key is destroyed", old.key_id, new.key_id)
    return Rotation(old.key_id, new.key_id, rewrapped, 0, finished=True)
