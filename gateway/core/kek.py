"""The key-encryption key (KEK): one 128-bit SM4 key, in a file of its own, that wraps every data key.

Each record's payload is SM4-GCM encrypted under a fresh data key (``services/intake.py``); the database
holds that data key only wrapped with the KEK, so a dump of the database alone reveals no payload. The
KEK file is the operator's secret, like a TLS key: 0600, never in the database, never logged.

File: the key as 32 hex digits on one line (``openssl rand -hex 16``), generated on first start if missing.
A KEK made by ``python -m gateway rotate-kek`` has a second line, ``pseudonym-key <64 hex digits>``: the
pseudonym key of the KEK it replaced, carried over so that pseudonyms never change with a rotation.

Rotation (``gateway/ops/kek_rotation.py``): the next KEK is written to ``<KEK file>.next``; a running gateway
(``KekRing``) notices within ``RELOAD_S``, wraps new data keys with it and unwraps with either; the tool
re-wraps every data key, then replaces the KEK file with the next one and overwrites the old key.

A wrapped data key (``data_key.key``, 44 bytes) is the project's SM4-GCM blob of the 16-byte data key:
``nonce (12, random) ‖ ciphertext (16) ‖ tag (16)``, under the KEK, with associated data
``WRAP_LABEL ‖ key id (8 bytes) ‖ record id (ASCII)``: a wrapped key moved to another record fails to
unwrap, and each wrap is bound to its format version and its KEK. ``data_key.kek_id`` holds the key id
(the first 8 bytes of SM3 of the KEK, 16 hex digits): it names the KEK a key needs, so a gateway started
with another KEK says so instead of failing authentication. ``kek_id`` NULL marks a row written before
the KEK existed: its ``key`` is the data key itself until ``python -m gateway wrap-data-keys`` wraps it.
"""

from __future__ import annotations

import logging
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from gateway.core.db import Database
from gateway.errors import DataKeyUnavailable, PayloadCorrupt
from gateway.models import DataKey
from provenance.crypto import DecryptionFailed, generate_sm4_key, sm3, sm4_gcm_decrypt, sm4_gcm_encrypt
from provenance.crypto.sm3 import hmac_sm3
from provenance.crypto.sm4 import KEY_SIZE
from provenance.files import FileUnreadable, write_private

log = logging.getLogger("gateway.kek")

WRAP_LABEL = b"shancheng-provenance/data-key/v1\0"  # the wrapping format's version, in every wrap's AAD
KEY_ID_SIZE = 8
# The HMAC-SM3 key of the pseudonyms in facts (a patient reference): derived from the KEK, so it is kept
# where the KEK is (never in the database) and a KEK the gateway refuses to replace keeps it too.
PSEUDONYM_KEY_LABEL = b"shancheng-provenance/pseudonym-key@v1"
PSEUDONYM_LINE = "pseudonym-key"
NEXT_SUFFIX = ".next"
RELOAD_S = 1.0  # how often a running gateway looks for a rotation's files


@dataclass(frozen=True, slots=True)
class KeyEncryptionKey:
    """The gateway's KEK: wraps data keys for ``data_key`` rows and unwraps them for payload reads."""

    key: bytes = field(repr=False)
    # Carried over from the KEK this one replaced (rotate-kek); None: derived from this KEK.
    pseudonym: bytes | None = field(default=None, repr=False)
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        if len(self.key) != KEY_SIZE:
            raise ValueError("a key-encryption key is a 16-byte SM4 key")
        object.__setattr__(self, "key_id", sm3(self.key)[:KEY_ID_SIZE].hex())

    def derive(self, label: bytes) -> bytes:
        """A 256-bit key for another purpose, ``HMAC-SM3(KEK, label)`` (one label per purpose); the pseudonym
        key carried over by a rotation, if any."""
        if label == PSEUDONYM_KEY_LABEL and self.pseudonym is not None:
            return self.pseudonym
        return hmac_sm3(self.key, label)

    def file_bytes(self) -> bytes:
        """The KEK file's content."""
        text = self.key.hex() + "\n"
        if self.pseudonym is not None:
            text += f"{PSEUDONYM_LINE} {self.pseudonym.hex()}\n"
        return text.encode("ascii")

    def _aad(self, record_id: str) -> bytes:
        return WRAP_LABEL + bytes.fromhex(self.key_id) + record_id.encode("ascii")

    def wrap(self, record_id: str, data_key: bytes) -> bytes:
        """``data_key`` wrapped for ``record_id``'s row (a fresh random nonce each time)."""
        return sm4_gcm_encrypt(self.key, data_key, self._aad(record_id))

    def key_row(self, record_id: str, data_key: bytes) -> dict[str, Any]:
        """The ``data_key`` row of a record: its data key wrapped, and this KEK's id."""
        return {"record_id": record_id, "key": self.wrap(record_id, data_key), "kek_id": self.key_id}

    def data_key(self, row: DataKey) -> bytes:
        """The data key of a ``data_key`` row, unwrapped (a row from before the KEK holds it as it is).

        DATA_KEY_UNAVAILABLE when another KEK wrapped it; PAYLOAD_CORRUPT when the stored key was altered
        or moved from another record.
        """
        if row.kek_id is None:
            if len(row.key) != KEY_SIZE:
                raise PayloadCorrupt(
                    "the stored data key is not a 16-byte SM4 key (altered in storage)",
                    details={"id": row.record_id},
                )
            return row.key
        if row.kek_id != self.key_id:
            raise DataKeyUnavailable(
                f"the gateway cannot unwrap the data key of this record's payload: it is wrapped with the "
                f"key-encryption key {row.kek_id} and the gateway holds {self.key_id} (it was started with "
                "another KEK file; its operator has to restore the one that wrapped the key). The bundle "
                "without the payload is available with payload=false",
                details={"id": row.record_id, "kek_id": row.kek_id, "gateway_kek_id": self.key_id},
            )
        try:
            return sm4_gcm_decrypt(self.key, row.key, self._aad(row.record_id))
        except DecryptionFailed as exc:
            raise PayloadCorrupt(
                "the stored data key fails authentication (altered in storage or moved from another record)",
                details={"id": row.record_id},
            ) from exc


def read_kek(path: Path) -> KeyEncryptionKey | None:
    """The KEK in ``path``, None if there is no such file; DATA_KEY_UNAVAILABLE if it cannot be used."""
    try:
        data = path.read_bytes()
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DataKeyUnavailable(
            f"the key-encryption key file {path} cannot be read ({exc.strerror}); the gateway does not "
            "start without it",
            details={"file": str(path)},
        ) from None
    lines = data.strip().split(b"\n")
    key = pseudonym = None
    if len(lines[0].strip()) == 2 * KEY_SIZE and len(lines) <= 2:
        try:
            key = bytes.fromhex(lines[0].strip().decode("ascii"))
            if len(lines) == 2:
                label, value = lines[1].decode("ascii").split()
                pseudonym = bytes.fromhex(value)
                if label != PSEUDONYM_LINE or len(pseudonym) != 32:
                    key = None
        except (UnicodeDecodeError, ValueError):
            key = None
    if key is None:  # the file's content stays out of the message: it may be a key after all
        raise DataKeyUnavailable(
            f"the key-encryption key file {path} does not hold a 128-bit key as 32 hex digits "
            f"({len(data)} bytes read); the gateway does not start without it",
            details={"file": str(path)},
        )
    if mode & 0o077:
        log.warning("the key-encryption key file %s may be read by others (mode %o): chmod 600", path, mode)
    return KeyEncryptionKey(key=key, pseudonym=pseudonym)


def create_kek(path: Path) -> KeyEncryptionKey:
    """A new KEK written to ``path`` (0600, refusing to overwrite); the one there if another process won."""
    kek = KeyEncryptionKey(key=generate_sm4_key())
    try:
        write_private(path, kek.key.hex().encode("ascii") + b"\n")
    except FileUnreadable:
        found = read_kek(path)  # created meanwhile by another process starting on the same folder
        if found is None:
            raise
        return found
    log.info("generated the key-encryption key %s (id %s)", path, kek.key_id)
    return kek


def open_kek(path: Path, db: Database) -> KekRing:
    """The gateway's KEK: read from ``path``, or generated there when missing on a first start.

    A missing file over a database that already holds wrapped data keys is not a first start (the file
    was lost, or ``kek_file`` names the wrong one): a new KEK would wrap new records under another key
    than the old ones, so the gateway refuses with DATA_KEY_UNAVAILABLE instead.
    """
    kek = read_kek(path)
    if kek is not None:
        return KekRing(path, kek)
    with db.session() as s:
        held = s.exec(select(DataKey.kek_id).where(col(DataKey.kek_id).is_not(None)).limit(1)).first()
    if held is not None:
        raise DataKeyUnavailable(
            f"the key-encryption key file {path} is missing, but the database holds data keys wrapped "
            f"with the key-encryption key {held}: restore that file (or set PROV_GW_KEK_FILE to it); the "
            "gateway does not generate a new one over them",
            details={"file": str(path), "kek_id": held},
        )
    return KekRing(path, create_kek(path))


def next_kek_path(path: Path) -> Path:
    """Where ``rotate-kek`` puts the next KEK while it re-wraps."""
    return path.with_name(path.name + NEXT_SUFFIX)


class KekRing:
    """The gateway's KEK as a running gateway holds it: normally one key; during a rotation also the next
    (``<file>.next``), which then wraps every new data key while both unwrap. It looks at the files at most
    every ``RELOAD_S`` s, so a rotation run by the operator's tool goes through without a restart."""

    def __init__(self, path: Path, kek: KeyEncryptionKey) -> None:
        self._path = path
        self._next_path = next_kek_path(path)
        self._current = kek
        self._keys = {kek.key_id: kek}
        self._seen = self._stamp()
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self._load()

    def _stamp(self) -> tuple[tuple[int, int] | None, ...]:
        def one(p: Path) -> tuple[int, int] | None:
            try:
                st = p.stat()
            except OSError:
                return None
            return (st.st_ino, st.st_mtime_ns)

        return (one(self._path), one(self._next_path))

    def _load(self) -> None:
        base = read_kek(self._path) or self._current
        nxt = read_kek(self._next_path)
        keys = {base.key_id: base}
        if nxt is not None:
            keys[nxt.key_id] = nxt
        if nxt is not None or base.key_id != self._current.key_id:
            log.warning(
                "key-encryption keys now %s; new data keys wrapped with %s", list(keys), (nxt or base).key_id
            )
        self._current, self._keys = nxt or base, keys

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < RELOAD_S:
            return
        with self._lock:
            self._checked = now
            stamp = self._stamp()
            if stamp != self._seen:
                self._seen = stamp
                try:
                    self._load()
                except DataKeyUnavailable as exc:  # a half-written file: keep the keys held, try again
                    log.warning("key-encryption key files not reloaded: %s", exc.message)

    @property
    def key_id(self) -> str:
        """The id of the KEK new data keys are wrapped with."""
        self._refresh()
        return self._current.key_id

    @property
    def key_ids(self) -> list[str]:
        self._refresh()
        return list(self._keys)

    def derive(self, label: bytes) -> bytes:
        return self._current.derive(label)

    def wrap(self, record_id: str, data_key: bytes) -> bytes:
        self._refresh()
        return self._current.wrap(record_id, data_key)

    def key_row(self, record_id: str, data_key: bytes) -> dict[str, Any]:
        self._refresh()
        return self._current.key_row(record_id, data_key)

    def data_key(self, row: DataKey) -> bytes:
        self._refresh()
        return self._keys.get(row.kek_id or "", self._current).data_key(row)


def wrap_legacy_keys(db: Database, kek: KekRing, *, batch: int = 500) -> tuple[int, list[str]]:
    """Wrap in place every data key stored unwrapped (rows from before the KEK), ``batch`` rows per
    transaction: (how many were wrapped, the record ids of rows left alone because their key is not a
    16-byte key). Safe while the gateway serves: a row reads the same before and after."""
    wrapped, skipped, after = 0, [], ""
    while True:
        with db.write() as s:
            rows = s.exec(
                select(DataKey)
                .where(col(DataKey.kek_id).is_(None), col(DataKey.record_id) > after)
                .order_by(col(DataKey.record_id))
                .limit(batch)
            ).all()
            for row in rows:
                if len(row.key) != KEY_SIZE:
                    skipped.append(row.record_id)
                    continue
                row.key, row.kek_id = kek.wrap(row.record_id, row.key), kek.key_id
                s.add(row)
                wrapped += 1
        if len(rows) < batch:
            return wrapped, skipped
        after = rows[-1].record_id
