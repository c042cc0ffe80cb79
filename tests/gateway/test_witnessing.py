"""Witnessed checkpoints and tiles through a real gateway: three witnesses (each its own server, key and
state), the gateway's submissions and retries, a witness outage, the tiles and `provenance monitor`."""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devnet.engines import EngineHandle
from gateway.core.db import Database
from gateway.core.security import mint_token
from provenance.errors import WitnessQuorumMissing
from provenance.log.checkpoint import NoteVerifier, verify_checkpoint
from provenance.log.cosignature import WitnessPolicy
from provenance.log.tiles import Tile, tree_hash
from provenance.manifest import Manifest
from provenance.verification.trust import TrustStore
from tests.kit.gateway import Server, gateway_settings, hj212_packets, sign_submission, trust_path, wait_until
from tests.kit.network import variant_network
from tests.kit.witness import WitnessServer

ORGS = ("regulator", "auditor", "env-bureau")


@dataclass
class Witnessed:
    """A gateway whose checkpoints go to three witnesses (quorum 2), and what a verifier pins for it."""

    network: Manifest
    server: Server
    witnesses: list[WitnessServer]
    policy: WitnessPolicy
    trust: TrustStore
    token: str
    http: httpx.Client
    auditor_token: str = ""  # /metrics and the entry bundles are for oversight
    monitor_token: str = ""  # the gateway's PROV_GW_MONITOR_TOKEN: entry bundles for monitors

    def submit(self, n: int) -> list[str]:
        ids = []
        for p in hj212_packets(n):
            body = _station_body(self.network, p)
            r = self.http.post(
                "/api/v1/records", json=body, headers={"Authorization": f"Bearer {self.token}"}
            )
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        return ids

    def latest(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.http.get("/api/v1/checkpoints/latest").json()
        return doc

    def wait(self, predicate: Any, *, timeout: float = 30.0, what: str) -> Any:
        return wait_until(predicate, timeout=timeout, what=what)

    def cosigned_checkpoint(self, at_least: int, *, by: int = 2) -> dict[str, Any]:
        """Wait for the newest checkpoint to reach ``at_least`` leaves with ``by`` cosignatures."""

        def ready() -> dict[str, Any] | None:
            cp = self.latest()
            return cp if cp.get("size", 0) >= at_least and len(cp["cosignatures"]) >= by else None

        result: dict[str, Any] = self.wait(ready, what=f"a checkpoint of {at_least}+ cosigned by {by}")
        return result


def _station_body(network: Manifest, packet: str) -> dict[str, Any]:
    return sign_submission("station-1", network.sm2_key("station-1"), "env.reading", packet)


@pytest.fixture(scope="module")
def witnessed(
    deployed: Manifest, engine: EngineHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Witnessed]:
    # On SQLite only (the monitor test alters its file); witnessing has no database-specific code.
    network = deployed
    tmp = tmp_path_factory.mktemp("witnessed")
    # Its own ProvenanceLog, so that its anchors never race the session gateway's.
    manifest = variant_network(network, engine, "witnessed")
    origin, key_name = network.log["origin"], network.log["key_name"]
    pinned = {origin: [NoteVerifier(name=key_name, public_key=network.log_key().public_key())]}
    witnesses = [
        WitnessServer(folder=tmp / org, name=f"shancheng.test/witness/{org}", logs=pinned, org=org)
        for org in ORGS
    ]
    settings = gateway_settings(
        tmp,
        manifest,
        network.rpc_url,
        witnesses=[{"url": w.url, "vkey": w.public.vkey(), "org": w.org} for w in witnesses],
        witness_quorum=2,
        witness_retry=0.2,
        witness_timeout=2.0,
        monitor_token=(monitor_token := secrets.token_urlsafe(32)),
    )
    db = Database(settings.database_url)
    db.create_all()
    token = mint_token(db, "station-1", label="test")
    auditor_token = mint_token(db, "auditor", label="test")
    db.dispose()
    server = Server(settings)
    policy = WitnessPolicy(witnesses=tuple(w.public for w in witnesses), quorum=2)
    assert network.path is not None
    trust = TrustStore.load(trust_path(network))
    trust.witnesses = policy
    http = httpx.Client(base_url=server.url, timeout=30)
    yield Witnessed(
        network=manifest,
        server=server,
        witnesses=witnesses,
        policy=policy,
        trust=trust,
        token=token,
        http=http,
        auditor_token=auditor_token,
        monitor_token=monitor_token,
    )
    http.close()
    server.stop()
    for w in witnesses:
        w.stop()


def test_checkpoints_reach_quorum_and_the_api_publishes_the_cosignatures(witnessed: Witnessed) -> None:
    witnessed.submit(3)
    cp = witnessed.cosigned_checkpoint(3, by=3)
    found = witnessed.policy.check(cp["note"])
    assert sorted(c.witness for c in found) == sorted(w.name for w in witnessed.witnesses)
    assert {c["witness"] for c in cp["cosignatures"]} == {w.name for w in witnessed.witnesses}
    assert all(c["received_at"] >= cp["created_at"] for c in cp["cosignatures"])
    # The published checkpoint is a note whose log signature still verifies, and the tiles serve it.
    log = NoteVerifier(
        name=witnessed.network.log["key_name"], public_key=witnessed.network.log_key().public_key()
    )
    verify_checkpoint(cp["note"], log, origin=witnessed.network.log["origin"])
    published = witnessed.http.get("/tiles/checkpoint")
    assert published.status_code == 200 and published.headers["cache-control"] == "no-cache"
    witnessed.policy.check(published.text)
    # Each witness holds the size it cosigned last.
    for w in witnessed.witnesses:
        held = httpx.get(f"{w.url}/healthz").json()["logs"][0]["size"]
        assert held >= cp["size"]


def test_the_gateway_retries_with_the_proof_a_409_asks_for(
    witnessed: Witnessed, caplog: pytest.LogCaptureFixture
) -> None:
    witnessed.submit(2)
    witnessed.cosigned_checkpoint(1, by=3)
    # A restarted gateway has forgotten the sizes the witnesses hold: it sends old 0, each witness answers
    # 409 with its size, and the gateway sends the consistency proof from there.
    caplog.set_level(logging.INFO, logger="witness")
    witnessed.http.close()
    witnessed.server.stop()
    witnessed.server = Server(witnessed.server.settings)
    witnessed.http = httpx.Client(base_url=witnessed.server.url, timeout=30)
    last = witnessed.latest()["size"]  # the old gateway may have signed more after `before`
    witnessed.submit(2)
    after = witnessed.cosigned_checkpoint(last + 2, by=3)
    conflicts = [
        r.getMessage() for r in caplog.records if r.name == "witness" and r.getMessage().startswith("409")
    ]
    # One per witness: "the witness last cosigned size N of <origin>, not 0".
    assert len([m for m in conflicts if m.endswith(", not 0")]) == 3, conflicts
    witnessed.policy.check(after["note"])


def test_a_witness_down_delays_quorum_never_records(witnessed: Witnessed) -> None:
    witnessed.submit(1)
    witnessed.cosigned_checkpoint(1, by=3)
    down = witnessed.witnesses[:2]
    for w in down:
        w.stop()
    try:
        ids = witnessed.submit(4)  # accepted while two of three witnesses are down
        stalled = witnessed.wait(
            lambda: _covering(witnessed, ids[-1], witnessed.latest()),
            what="a checkpoint covering the records",
        )
        assert len(stalled["cosignatures"]) <= 1  # only the witness still up
        with pytest.raises(
            WitnessQuorumMissing, match=r"cosigned by: (none|shancheng.test/witness/env-bureau)"
        ):
            witnessed.policy.check(stalled["note"])
        # What the gateway publishes stays the newest checkpoint with a quorum: older than the records.
        published = witnessed.http.get("/tiles/checkpoint").text
        assert int(published.split("\n")[1]) < stalled["size"]
    finally:
        for w in down:
            w.start()
    auth = {"Authorization": f"Bearer {witnessed.auditor_token}"}
    metrics = witnessed.http.get("/metrics", headers=auth).text
    assert metrics.count("prov_gw_witness_up{") == 3 and metrics.count("prov_gw_witness_lag{") == 3
    resumed = witnessed.cosigned_checkpoint(stalled["size"], by=2)
    witnessed.policy.check(resumed["note"])
    assert int(witnessed.http.get("/tiles/checkpoint").text.split("\n")[1]) >= stalled["size"]


def _covering(witnessed: Witnessed, record_id: str, cp: dict[str, Any]) -> dict[str, Any] | None:
    r = witnessed.http.get(
        f"/api/v1/records/{record_id}", headers={"Authorization": f"Bearer {witnessed.token}"}
    ).json()
    return cp if r.get("leaf_index") is not None and r["leaf_index"] < cp["size"] else None


def test_bundles_carry_the_cosignatures(witnessed: Witnessed) -> None:
    [rid] = witnessed.submit(1)
    witnessed.cosigned_checkpoint(1, by=2)

    def bundle() -> dict[str, Any] | None:
        r = witnessed.http.get(
            f"/api/v1/records/{rid}/bundle", headers={"Authorization": f"Bearer {witnessed.token}"}
        )
        if r.status_code != 200:
            return None
        doc: dict[str, Any] = r.json()
        try:
            witnessed.policy.check(doc["log"]["checkpoint"])
        except Exception:
            return None
        return doc

    doc = witnessed.wait(bundle, what="a bundle under a witnessed checkpoint")
    assert len(witnessed.policy.check(doc["log"]["checkpoint"])) >= 2


def test_tiles_serve_the_tree_immutably(witnessed: Witnessed) -> None:
    before = witnessed.latest().get("size", 0)
    witnessed.submit(3)
    cp = witnessed.cosigned_checkpoint(before + 3, by=2)  # all three in it: no newer checkpoint follows
    size = cp["size"]
    got: dict[str, int] = {}

    def read(tile: Tile) -> list[bytes]:
        r = witnessed.http.get(f"/tiles/{tile.path()}")  # hash tiles: public
        assert r.status_code == 200, (tile.path(), r.text)
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        got[tile.path()] = len(r.content)
        return [r.content[i : i + 32] for i in range(0, len(r.content), 32)]

    assert tree_hash(size, read, tree_size=size) == bytes.fromhex(cp["root"][2:])
    # Entry bundles are the signed envelopes: oversight's tokens and the monitor token only, never cached
    # for another client (docs/security.md, T1).
    entries = f"/tiles/{Tile(level=-1, n=0, w=min(size, 256)).path()}"
    assert witnessed.http.get(entries).status_code == 401
    station = {"Authorization": f"Bearer {witnessed.token}"}
    assert witnessed.http.get(entries, headers=station).status_code == 403
    for token in (witnessed.auditor_token, witnessed.monitor_token):
        r = witnessed.http.get(entries, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.headers["cache-control"] == "private, max-age=31536000, immutable"
    # the log may grow past the cosigned checkpoint meanwhile: ask for a tile far beyond any size it reaches
    beyond = Tile(level=0, n=size // 256 + 10_000)
    r = witnessed.http.get(f"/tiles/{beyond.path()}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    for bad in ("tile/0/1", "tile/0/x000/001", "tile/entries/000.p/0"):
        assert witnessed.http.get(f"/tiles/{bad}").status_code == 404


def test_monitor_follows_the_gateway_and_names_a_tampered_tile(
    witnessed: Witnessed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from provenance.cli import main

    witnessed.submit(5)
    witnessed.cosigned_checkpoint(5, by=2)
    trust_file = tmp_path / "trust.json"
    trust_file.write_text(json.dumps(witnessed.trust.to_dict()))
    state = tmp_path / "monitor.json"
    token_file = tmp_path / "monitor.token"
    token_file.write_text(witnessed.monitor_token + "\n")
    base = ["monitor", "--tiles", f"{witnessed.server.url}/tiles", "--trust", str(trust_file)]
    # Without a token the entry bundles answer 401: one line naming the option, and no state written.
    assert main([*base, "--state", str(state)]) == 1
    assert "--token-file" in capsys.readouterr().err and not state.exists()
    args = [*base, "--token-file", str(token_file), "--state", str(state)]
    assert main([*args, "--json"]) == 0, capsys.readouterr()
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["ok"] and first["entries_checked"] == first["size"] > 0
    witnessed.submit(3)
    witnessed.wait(
        lambda: int(witnessed.http.get("/tiles/checkpoint").text.split("\n")[1]) >= first["size"] + 3,
        what="a newer published checkpoint",
    )
    assert main([*args, "--json"]) == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert second["old_size"] == first["size"] and second["entries_checked"] == second["size"] - first["size"]
    # The operator's database is altered under the tiles (leaf 1's stored hash): a fresh monitor names it.
    db_file = Path(witnessed.server.settings.database_url.removeprefix("sqlite:///"))
    with sqlite3.connect(db_file) as db:
        (old,) = db.execute('SELECT hash FROM log_leaf WHERE "index" = 1').fetchone()
        db.execute('UPDATE log_leaf SET hash = ? WHERE "index" = 1', (bytes(32),))
    try:
        auditor = tmp_path / "auditor.token"  # an auditor's API token does as well
        auditor.write_text(witnessed.auditor_token)
        fresh = [*base, "--token-file", str(auditor), "--state", str(tmp_path / "fresh.json")]
        assert main(fresh) == 1
        err = capsys.readouterr().err
        assert "TILE_INVALID" in err and "tile/0/000" in err and "the tile is wrong" in err
    finally:
        with sqlite3.connect(db_file) as db:
            db.execute('UPDATE log_leaf SET hash = ? WHERE "index" = 1', (old,))
    assert not (tmp_path / "fresh.json").exists()  # the state never moves past a bad step
