"""``python -m gateway backup`` / ``restore``: a consistent snapshot of the gateway's database, and back.

A backup folder holds the database snapshot and ``backup.json`` (what it holds, its SM3 digest):

- SQLite: ``gateway.db`` through SQLite's online backup API (a consistent copy while the gateway writes);
- PostgreSQL: ``gateway.pgdump``, ``pg_dump --format=custom`` (one repeatable-read snapshot).

The data keys are in it wrapped with the KEK, never the KEK itself: the KEK file is backed up apart (its own
escrow), so a stolen backup alone reveals no payload. ``restore`` refuses a folder whose snapshot does not
match its digest and a target database that already holds records; the gateway then checks the restored
log against ProvenanceLog when it starts (``gateway/ops/recovery.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, inspect
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel, col, select

from gateway.core.db import Database
from gateway.errors import BackupInvalid
from gateway.models import CheckpointRow, DataKey, LogLeaf, Record
from gateway.services.leadership import InstanceLock
from provenance.crypto import sm3
from provenance.timestamps import format_timestamp, from_unix

FORMAT = "shancheng-provenance/gateway-backup@v1"
MANIFEST = "backup.json"
SQLITE_FILE = "gateway.db"
PG_FILE = "gateway.pgdump"


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """What a backup holds (``backup.json``)."""

    database: str  # sqlite | postgresql
    file: str
    sm3: str
    created_at: str
    records: int
    log_size: int
    anchored_size: int
    kek_ids: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **{k: getattr(self, k) for k in self.__slots__}}

    @classmethod
    def load(cls, folder: Path) -> BackupInfo:
        try:
            data = json.loads((folder / MANIFEST).read_text("utf-8"))
            if data.pop("format") != FORMAT:
                raise ValueError("format")
            return cls(**data)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise BackupInvalid(
                f"{folder} is not a gateway backup: its {MANIFEST} is missing or unreadable ({exc})",
                details={"folder": str(folder)},
            ) from None


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI for pg_dump / pg_restore, and the environment with the password (never on the command
    line, where every local user can read it)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    uri = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _pg_tool(name: str) -> str:
    """``pg_dump`` / ``pg_restore``: on PATH, else the newest of Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise BackupInvalid(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return str(versions[-1])


def _run(cmd: list[str], env: dict[str, str]) -> None:
    # The PostgreSQL client tools with the operator's own settings: no shell, arguments as a list.
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupInvalid(f"{Path(cmd[0]).name} failed: {last}", details={"exit": done.returncode})


def _summary(db: Database) -> tuple[int, int, int, list[str]]:
    with db.session() as s:
        records = s.exec(select(func.count()).select_from(Record)).one()
        top = s.exec(select(func.max(LogLeaf.index))).one()
        anchored = s.exec(
            select(func.max(CheckpointRow.size)).where(col(CheckpointRow.anchor_tx).is_not(None))
        ).one()
        keks = s.exec(select(DataKey.kek_id).where(col(DataKey.kek_id).is_not(None)).distinct()).all()
    return int(records), 0 if top is None else int(top) + 1, int(anchored or 0), sorted(str(k) for k in keks)


def backup(db: Database, out: Path) -> BackupInfo:
    """Write a backup of ``db`` into the new (or empty) folder ``out``."""
    if out.exists() and any(out.iterdir()):
        raise BackupInvalid(f"{out} is not empty: a backup goes into a new folder", details={"out": str(out)})
    out.mkdir(parents=True, exist_ok=True)
    if db.is_sqlite:
        if db.sqlite_file is None:
            raise BackupInvalid("an in-memory SQLite database has nothing to back up")
        target = out / SQLITE_FILE
        src = sqlite3.connect(db.sqlite_file)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # the online backup API: a consistent copy while the gateway writes
        finally:
            dst.close()
            src.close()
        # The snapshot's summary, not the live database's (which moved on since).
        snap = Database(f"sqlite:///{target}")
        try:
            summary = _summary(snap)
        finally:
            snap.dispose()
    else:
        target = out / PG_FILE
        # The summary first: the dump's snapshot is later, so it holds at least this much.
        summary = _summary(db)
        uri, env = _libpq(db.url)
        _run(
            [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "-f", str(target), uri],
            env,
        )
    records, log_size, anchored, keks = summary
    info = BackupInfo(
        database="sqlite" if db.is_sqlite else "postgresql",
        file=target.name,
        sm3=sm3(target.read_bytes()).hex(),
        created_at=format_timestamp(from_unix(time.time())),
        records=records,
        log_size=log_size,
        anchored_size=anchored,
        kek_ids=keks,
    )
    (out / MANIFEST).write_text(json.dumps(info.to_dict(), indent=2) + "\n", "utf-8")
    return info


def restore(db: Database, folder: Path) -> BackupInfo:
    """Restore the backup in ``folder`` into ``db``, which must hold no records (a new, empty database)."""
    info = BackupInfo.load(folder)
    snapshot = folder / info.file
    kind = "sqlite" if db.is_sqlite else "postgresql"
    if info.database != kind:
        raise BackupInvalid(
            f"the backup is of a {info.database} database and the gateway's is {kind}",
            details={"backup": info.database, "database": kind},
        )
    try:
        digest = sm3(snapshot.read_bytes()).hex()
    except OSError as exc:
        raise BackupInvalid(f"the backup's snapshot {snapshot} cannot be read ({exc.strerror})") from None
    if digest != info.sm3:
        raise BackupInvalid(
            f"the backup's snapshot {snapshot} does not match its digest in {MANIFEST} (altered, truncated)",
            details={"sm3": digest, "expected": info.sm3},
        )
    if "record" in inspect(db.engine).get_table_names():
        held = _summary(db)[0]
        if held:
            raise BackupInvalid(
                f"the gateway's database already holds {held} records: a backup is restored into a new, "
                "empty database only",
                details={"records": held},
            )
    if db.is_sqlite:
        assert db.sqlite_file is not None
        lock = InstanceLock(db.sqlite_file)
        lock.acquire()  # GATEWAY_ALREADY_RUNNING while a gateway serves this file
        try:
            db.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db.sqlite_file}{suffix}").unlink(missing_ok=True)
            src = sqlite3.connect(snapshot)
            dst = sqlite3.connect(db.sqlite_file)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
        finally:
            lock.release()
    else:
        SQLModel.metadata.drop_all(db.engine)  # empty tables a start may have created
        uri, env = _libpq(db.url)
        tool = _pg_tool("pg_restore")
        _run([tool, "--no-owner", "--no-privileges", "--exit-on-error", "-d", uri, str(snapshot)], env)
    return info
