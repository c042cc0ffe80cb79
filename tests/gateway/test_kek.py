"""Data keys at rest: wrapped with the gateway's key-encryption key (``gateway/core/kek.py``).

Through the real HTTP API: a data_key row holds no plaintext key and the payload still reads back; a
gateway with another KEK answers DATA_KEY_UNAVAILABLE for payloads and still serves bundles without them;
a row from before the KEK reads and ``python -m gateway wrap-data-keys`` wraps it; ``python -m gateway
serve`` refuses to start on an unusable KEK file.
"""

from __future__ import annotations

import os
import random
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devnet.engines import free_port
from gateway.core.db import Database
from gateway.core.kek import WRAP_LABEL, KeyEncryptionKey, read_kek
from gateway.errors import PayloadCorrupt
from gateway.models import DataKey, RecordPayload
from provenance.crypto import generate_sm4_key, sm3, sm4_gcm_decrypt
from provenance.files import write_private
from provenance.records import canonical_bytes
from tests.kit.gateway import Harness, error_code, hj212_packets, verify_bundle, workerless_gateway

REPO_ROOT = Path(__file__).resolve().parents[2]


def _reading(harness: Harness) -> tuple[str, str]:
    """One anchored station reading dated in a past second of its own: (record id, timestamp)."""
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5, seconds=random.randrange(3600))
    ts = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    r = harness.client("station-1").submit("env.reading", hj212_packets(1)[0], timestamp=ts)
    assert r.status_code == 202, r.text
    rid: str = r.json()["id"]
    harness.wait_status(rid, "anchored")
    return rid, ts


def _kek(harness: Harness) -> KeyEncryptionKey:
    kek = read_kek(harness.settings.kek_path)
    assert kek is not None
    return kek


def _rows(harness: Harness, rid: str) -> tuple[DataKey, RecordPayload]:
    db = Database(harness.settings.database_url)
    try:
        with db.session() as s:
            key, payload = s.get(DataKey, rid), s.get(RecordPayload, rid)
    finally:
        db.dispose()
    assert key is not None and payload is not None
    return key, payload


def _gateway_cli(harness: Harness, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PROV_GW_")}
    base |= {
        "PROV_GW_DATABASE_URL": harness.settings.database_url,
        "PROV_GW_MANIFEST_PATH": str(harness.settings.manifest_path),
        "PROV_GW_KEK_FILE": str(harness.settings.kek_path),
        **{f"PROV_GW_{k.upper()}": v for k, v in env.items()},
    }
    cmd = [sys.executable, "-m", "gateway", *args]
    return subprocess.run(cmd, env=base, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_data_key_rows_hold_only_wrapped_keys(harness: Harness) -> None:
    rid, _ = _reading(harness)
    station = harness.client("station-1")
    bundle = station.get(f"/api/v1/records/{rid}/bundle").json()
    assert "payload" in bundle
    verify_bundle(bundle, harness)  # the payload read back hashes to the signed digest

    kek_file = harness.settings.kek_path
    assert stat.S_IMODE(kek_file.stat().st_mode) == 0o600
    kek = _kek(harness)
    key, stored = _rows(harness, rid)
    data_key = kek.data_key(key)  # the key that decrypts the payload...
    assert sm4_gcm_decrypt(data_key, stored.ciphertext, rid.encode()) == canonical_bytes(bundle["payload"])
    assert data_key not in key.key and kek.key not in key.key  # ...is not in its row
    assert key.kek_id == sm3(kek.key)[:8].hex() == kek.key_id
    # The format: nonce (12) ‖ SM4-GCM of the 16-byte key ‖ tag (16), AAD label ‖ key id ‖ record id.
    assert len(key.key) == 44
    aad = WRAP_LABEL + bytes.fromhex(key.kek_id) + rid.encode("ascii")
    assert sm4_gcm_decrypt(kek.key, key.key, aad) == data_key
    # Bound to its record: the same wrapped key stored for another record does not unwrap.
    with pytest.raises(PayloadCorrupt):
        kek.data_key(DataKey(record_id="0" * 64, key=key.key, kek_id=key.kek_id))
    # The KEK is in its file only, and never printed.
    assert kek.key.hex() not in repr(kek)


def test_another_kek_answers_data_key_unavailable(harness: Harness, tmp_path: Path) -> None:
    """A gateway on the same database started with another KEK file: payload reads name both key ids;
    bundles and exports without payloads are still served and verify."""
    rid, ts = _reading(harness)
    other = tmp_path / "gateway.kek"
    write_private(other, generate_sm4_key().hex().encode() + b"\n")
    other_id = _kek_id(other)
    ours = _kek(harness).key_id
    with workerless_gateway(
        harness, tmp_path, "station-1", database_url=harness.settings.database_url, kek_file=other
    ) as (_, http):
        r = http.get(f"/api/v1/records/{rid}/bundle")
        assert r.status_code == 500 and error_code(r) == "DATA_KEY_UNAVAILABLE", r.text
        err = r.json()["error"]
        assert err["details"] == {"id": rid, "kek_id": ours, "gateway_kek_id": other_id}
        assert ours in err["message"] and other_id in err["message"] and "payload=false" in err["message"]
        assert str(other) not in err["message"]  # the file's path is the operator's business, not clients'

        r = http.get(f"/api/v1/records/{rid}/bundle", params={"payload": "false"})
        assert r.status_code == 200 and "payload" not in r.json(), r.text
        verify_bundle(r.json(), harness)

        window: dict[str, Any] = {"org": "station-1", "since": ts, "until": _next_second(ts)}
        r = http.get("/api/v1/bundles", params=window)
        assert r.status_code == 500 and error_code(r) == "DATA_KEY_UNAVAILABLE", r.text
        r = http.get("/api/v1/bundles", params={**window, "payload": "false"})
        assert r.status_code == 200, r.text
        assert [b["digest"] for b in r.json()["items"]] == [rid]
    # The gateway with the right KEK still reads it.
    r = harness.client("station-1").get(f"/api/v1/records/{rid}/bundle")
    assert r.status_code == 200 and "payload" in r.json(), r.text


def test_row_from_before_the_kek_reads_and_is_wrapped_in_place(harness: Harness) -> None:
    rid, _ = _reading(harness)
    station = harness.client("station-1")
    payload = station.get(f"/api/v1/records/{rid}/bundle").json()["payload"]
    kek = _kek(harness)
    db = Database(harness.settings.database_url)
    try:
        with db.write() as s:  # as the gateway stored it before the KEK: the key itself, no key id
            key = s.get(DataKey, rid)
            assert key is not None
            plain = kek.data_key(key)
            key.key, key.kek_id = plain, None
            s.add(key)
    finally:
        db.dispose()
    bundle = station.get(f"/api/v1/records/{rid}/bundle").json()
    assert bundle["payload"] == payload
    verify_bundle(bundle, harness)

    done = _gateway_cli(harness, "wrap-data-keys", "--batch", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"with the key-encryption key {kek.key_id}" in done.stdout
    assert int(done.stdout.split()[1]) >= 1  # "wrapped N data key(s)": ours, and any other test left
    key, _ = _rows(harness, rid)
    assert key.kek_id == kek.key_id and plain not in key.key and kek.data_key(key) == plain
    assert station.get(f"/api/v1/records/{rid}/bundle").json()["payload"] == payload
    again = _gateway_cli(harness, "wrap-data-keys")
    assert again.returncode == 0 and again.stdout.startswith("wrapped 0 "), again.stdout + again.stderr


def test_serve_refuses_an_unusable_kek_file(harness: Harness, tmp_path: Path) -> None:
    """Unparsable, unreadable, or missing while the database holds keys wrapped with another: exit 2 with
    one line naming the file and what is wrong, before serving anything; the key itself is never printed."""
    _reading(harness)  # the database holds wrapped keys
    garbage = tmp_path / "garbage.kek"
    write_private(garbage, b"0123456789abcdef-not-a-key-at-all\n")
    folder = tmp_path / "a-folder.kek"
    folder.mkdir()
    missing = tmp_path / "missing.kek"
    port, ours = free_port(), _kek(harness).key_id
    cases = [
        (garbage, "does not hold a 128-bit key as 32 hex digits"),
        (folder, "cannot be read"),
        (missing, f"is missing, but the database holds data keys wrapped with the key-encryption key {ours}"),
    ]
    for path, why in cases:
        done = _gateway_cli(harness, "serve", kek_file=str(path), port=str(port))
        assert done.returncode == 2, (path, done.stdout, done.stderr)
        line = done.stderr.strip()
        assert line.startswith("gateway: DATA_KEY_UNAVAILABLE: ") and str(path) in line and why in line, line
        assert "not-a-key" not in line and "Traceback" not in done.stderr
    assert not missing.exists()  # no new KEK over keys wrapped with another


def _kek_id(path: Path) -> str:
    kek = read_kek(path)
    assert kek is not None
    return kek.key_id


def _next_second(ts: str) -> str:
    at = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) + timedelta(seconds=1)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
