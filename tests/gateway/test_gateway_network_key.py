"""A gateway starts only with its network's key file: missing, malformed, readable by others or another
network's, it exits 2 with one line naming the file, before serving anything, and never prints the key."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

from provenance.files import write_private
from provenance.network_key import key_id, read_network_key
from tests.gateway.test_kek import _gateway_cli
from tests.kit.gateway import Harness


def test_serve_refuses_a_missing_malformed_open_or_foreign_network_key(
    harness: Harness, tmp_path: Path
) -> None:
    ours = read_network_key(harness.settings.network_key_path)
    other = secrets.token_bytes(32)
    files = {"garbage": b"not-a-key\n", "open": ours.hex().encode(), "foreign": other.hex().encode()}
    for name, data in files.items():
        write_private(tmp_path / name, data)
    (tmp_path / "open").chmod(0o644)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cases = {
        "missing": "FILE_UNREADABLE: network key file not found",
        "garbage": "NETWORK_KEY_INVALID: ",
        "open": "may be read by others",
        "foreign": f"holds the key {key_id(other)}, the network's is {key_id(ours)}",
    }
    for name, why in cases.items():
        path = tmp_path / name
        # A database of its own: the harness's gateway holds its SQLite file's instance lock.
        db = f"sqlite:///{tmp_path / 'gateway.db'}"
        done = _gateway_cli(harness, "serve", network_key_file=str(path), port=str(port), database_url=db)
        assert done.returncode == 2, (name, done.stdout, done.stderr)
        line = done.stderr.strip()
        assert line.startswith("gateway: ") and str(path) in line and why in line, line
        assert (
            ours.hex() not in done.stderr
            and other.hex() not in done.stderr
            and "Traceback" not in done.stderr
        )
