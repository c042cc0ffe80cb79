"""File helpers with project errors: a missing file is one clear line, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from provenance.errors import FormatError, ProvenanceError


class FileUnreadable(ProvenanceError, code="FILE_UNREADABLE"):
    pass


def read_bytes(path: str | Path, *, what: str = "file") -> bytes:
    """Read a file or raise :class:`FileUnreadable` naming it."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise FileUnreadable(f"{what} not found: {path}") from exc
    except IsADirectoryError as exc:
        raise FileUnreadable(f"{what} is a directory: {path}") from exc
    except OSError as exc:
        raise FileUnreadable(f"cannot read {what} {path}: {exc.strerror}") from exc


def read_text(path: str | Path, *, what: str = "file") -> str:
    """Read a UTF-8 text file or raise a project error."""
    data = read_bytes(path, what=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what} is not UTF-8 text: {path}") from exc


def write_private(path: str | Path, data: bytes) -> None:
    """Write secret material readable by the owner only (0600), refusing to overwrite; on disk on return."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise FileUnreadable(f"refusing to overwrite existing key file: {p}") from exc
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        # Data may be encrypted under the key right after: a crash must not leave an empty key file.
        os.fsync(f.fileno())


def write_public(path: str | Path, data: bytes) -> None:
    """Write a non-secret file (0644), creating parent folders."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
