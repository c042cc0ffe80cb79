"""``python -m gateway rotate-kek`` while the gateway serves: stopped half-way (``--limit``) the gateway reads
every payload and wraps new data keys with the next KEK; the next run finishes, the KEK file holds the new
key only and the old one is gone; pseudonyms are unchanged."""

from __future__ import annotations

import time

from sqlmodel import col, func, select

from gateway.core.db import Database
from gateway.core.kek import PSEUDONYM_KEY_LABEL, next_kek_path, read_kek
from gateway.models import DataKey
from tests.gateway.test_kek import _gateway_cli, _kek, _reading, _rows
from tests.kit.gateway import Harness, verify_bundle


def _wrapped_with(harness: Harness, kek_id: str) -> int:
    db = Database(harness.settings.database_url)
    try:
        with db.session() as s:
            return int(
                s.exec(select(func.count()).select_from(DataKey).where(col(DataKey.kek_id) == kek_id)).one()
            )
    finally:
        db.dispose()


def test_rotate_kek_online_resumable_and_the_old_key_destroyed(harness: Harness) -> None:
    station = harness.client("station-1")
    ids = [_reading(harness)[0] for _ in range(3)]
    payloads = {rid: station.get(f"/api/v1/records/{rid}/bundle").json()["payload"] for rid in ids}
    path = harness.settings.kek_path
    old = _kek(harness)
    before = _wrapped_with(harness, old.key_id)
    assert before >= 3

    first = _gateway_cli(harness, "rotate-kek", "--batch", "1", "--limit", "2")
    assert first.returncode == 0, first.stderr
    assert "re-wrapped 2 data key(s)" in first.stdout and "run rotate-kek again" in first.stdout
    nxt = read_kek(next_kek_path(path))
    assert nxt is not None and nxt.key_id != old.key_id
    assert nxt.derive(PSEUDONYM_KEY_LABEL) == old.derive(PSEUDONYM_KEY_LABEL)
    assert _kek(harness).key_id == old.key_id  # not replaced yet: the rotation stopped half-way
    assert _wrapped_with(harness, nxt.key_id) >= 2

    # Half-way: the running gateway wraps new data keys with the next KEK and reads both kinds.
    deadline = time.monotonic() + 20
    while True:
        rid, _ = _reading(harness)
        if _rows(harness, rid)[0].kek_id == nxt.key_id:
            break
        assert time.monotonic() < deadline, "the running gateway never took up the next KEK"
    ids.append(rid)
    payloads[rid] = station.get(f"/api/v1/records/{rid}/bundle").json()["payload"]
    for rid in ids:
        bundle = station.get(f"/api/v1/records/{rid}/bundle").json()
        assert bundle["payload"] == payloads[rid]

    done = _gateway_cli(harness, "rotate-kek")
    assert done.returncode == 0, done.stderr
    assert f"the key-encryption key {old.key_id} is replaced by {nxt.key_id}" in done.stdout
    assert not next_kek_path(path).exists()
    now = _kek(harness)
    assert now.key_id == nxt.key_id and old.key.hex() not in path.read_text()
    assert now.derive(PSEUDONYM_KEY_LABEL) == old.derive(PSEUDONYM_KEY_LABEL)  # pseudonyms do not change
    assert _wrapped_with(harness, old.key_id) == 0
    for rid in ids:
        bundle = station.get(f"/api/v1/records/{rid}/bundle").json()
        assert bundle["payload"] == payloads[rid]
        verify_bundle(bundle, harness)
        key, _ = _rows(harness, rid)
        assert key.kek_id == nxt.key_id and now.data_key(key)
    # The running gateway dropped the old key: a new record is wrapped with the new one.
    rid, _ = _reading(harness)
    assert _rows(harness, rid)[0].kek_id == nxt.key_id
