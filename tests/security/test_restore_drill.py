"""The restore drill, with real processes: load → ``python -m gateway backup`` (online) → more load → the
gateway killed and its database lost → ``python -m gateway restore`` → the gateway finds its log behind
ProvenanceLog and says by how much → the organisations re-submit what their receipts show is owed (in any
order) → every record is back at the leaf the chain anchored, every bundle verifies and keeps its receipt,
``provenance audit log`` is clean. Then a log that conflicts with the chain refuses to start, and ``restore``
refuses a non-empty database and an altered snapshot.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gateway.core.db import Database
from provenance.log.bundle import EvidenceBundle
from provenance.log.receipt import check_kept, verify_receipt
from provenance.records import Envelope
from tests.kit.gateway import hj212_packets, rx_issue, sign_submission
from tests.kit.ha import fresh_database
from tests.kit.procnet import FAST_GATEWAY, Auditor, ProcNet

pytestmark = pytest.mark.timeout(600)

PG_URL = os.environ.get("PROV_TEST_PG_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


@pytest.fixture(params=BACKENDS)
def net(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProcNet]:
    db_url = fresh_database(PG_URL, "drill") if request.param == "postgresql" and PG_URL else None
    n = ProcNet(tmp_path, gateway=FAST_GATEWAY, db_url=db_url)
    n.start()
    yield n
    n.stop()


class Org:
    """The organisations' side: what they submitted and the receipts they keep."""

    def __init__(self, net: ProcNet) -> None:
        self.net = net
        self.packets = iter(hj212_packets(100))
        self.sent: dict[str, tuple[str, dict[str, Any], str]] = {}  # id -> (org, body, receipt)
        self.n = 0

    def body(self) -> tuple[str, dict[str, Any]]:
        self.n += 1
        if self.n % 5 == 0:  # a workflow record too: its contract call was made before the loss
            rx = f"RXD{self.n:09d}"
            return "hospital-1", sign_submission(
                "hospital-1", self.net.sm2_key("hospital-1"), "rx.issue", rx_issue(rx)
            )
        packet = next(self.packets)
        return "station-1", sign_submission("station-1", self.net.sm2_key("station-1"), "env.reading", packet)

    def submit(self, n: int) -> list[str]:
        ids = []
        for _ in range(n):
            org, body = self.body()
            r = httpx.post(
                f"{self.net.url}/api/v1/records", json=body, headers=self.net.headers(org), timeout=30
            )
            assert r.status_code == 202, r.text
            self.sent[r.json()["id"]] = (org, body, r.json()["receipt"])
            ids.append(r.json()["id"])
        return ids


def _health(net: ProcNet) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{net.url}/healthz", timeout=10).json()
    return data


def _lose_database(net: ProcNet) -> None:
    if net.db_url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{net.root / 'gateway.db'}{suffix}").unlink(missing_ok=True)
    else:
        assert PG_URL is not None
        assert fresh_database(PG_URL, "drill") == net.db_url


def test_backup_restore_drill(net: ProcNet, tmp_path: Path) -> None:
    org = Org(net)
    auditor = Auditor(net)
    before = org.submit(15)
    auditor.wait_anchored(before)

    # The backup, online, while the gateway serves; never the KEK.
    folder = tmp_path / "backup"
    done = net.gateway_cli("backup", "--out", str(folder))
    assert done.returncode == 0, done.stderr
    info = json.loads((folder / "backup.json").read_text())
    assert info["records"] == 15 and info["log_size"] == 15, info
    kek = (net.root / "gateway.kek").read_text().strip()
    for f in folder.iterdir():
        data = f.read_bytes()
        assert kek.encode() not in data and bytes.fromhex(kek) not in data, f"the KEK is in {f.name}"
    assert info["kek_ids"] and len(info["kek_ids"][0]) == 16

    after = org.submit(15)
    state = auditor.wait_anchored(after)
    anchored = state.anchored_size
    assert anchored == 30

    # The host is lost: the gateway dies and its database with it.
    net.kill_gateway()
    _lose_database(net)
    done = net.gateway_cli("restore", "--from", str(folder))
    assert done.returncode == 0, done.stderr
    assert "restored 15 records, log size 15" in done.stdout
    net.start_gateway()
    health = _health(net)
    assert health["behind_chain"] == {
        "anchored_size": anchored,
        "log_size": 15,
        "missing": anchored - 15,
        "restored_size": 15,
    }, health

    # Each organisation goes through its receipts: the records the gateway no longer has are re-submitted,
    # as signed then, in whatever order the organisations get to them.
    owed = []
    for rid, (_o, _body, receipt) in org.sent.items():
        verify_receipt(receipt, auditor.trust, record_id=rid)
        r = httpx.get(f"{net.url}/api/v1/records/{rid}", headers=net.headers("auditor"), timeout=30)
        assert r.status_code in (200, 404), r.text
        if r.status_code == 404:
            owed.append(rid)
    assert sorted(owed) == sorted(after)
    random.Random(7).shuffle(owed)
    for rid in owed:
        o, body, _ = org.sent[rid]
        r = httpx.post(f"{net.url}/api/v1/records", json=body, headers=net.headers(o), timeout=30)
        assert r.status_code == 202 and r.json()["id"] == rid, r.text
    fresh = org.submit(5)  # new records meanwhile: they go after the owed ones

    everything = [*before, *after, *fresh]
    state = auditor.wait_anchored(everything, timeout=90)
    auditor.check_log(state, everything)
    assert _health(net)["behind_chain"] is None
    # Every re-submitted record is at the leaf it had when the chain anchored it: the log is the same log.
    assert all(state.leaves[rid] is not None and state.leaves[rid] < 30 for rid in after)  # type: ignore[operator]
    auditor.verify_bundles(everything)
    # The re-submitted prescriptions' contract calls were made before the loss: found applied, not refused.
    auditor.wait_workflow_confirmed(everything)
    for rid, (_o, _body, receipt) in org.sent.items():
        r = httpx.get(f"{net.url}/api/v1/records/{rid}/bundle", headers=net.headers("auditor"), timeout=30)
        check_kept(verify_receipt(receipt, auditor.trust), EvidenceBundle.from_dict(r.json()))
    auditor.check_consistency()
    assert net.manifest is not None
    audit = subprocess.run(
        [
            *(sys.executable, "-m", "provenance", "audit", "log", "--rpc", net.rpc_url),
            *("--log-contract", net.manifest.contracts["ProvenanceLog"], "--gateway", net.url),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "links consistent" in audit.stdout

    # restore refuses a database that holds records, and a snapshot that does not match its digest.
    refused = net.gateway_cli("restore", "--from", str(folder))
    assert refused.returncode == 2
    assert refused.stderr.startswith("gateway: BACKUP_INVALID: the gateway's database already holds"), (
        refused.stderr
    )
    altered = tmp_path / "altered"
    altered.mkdir()
    for f in folder.iterdir():
        data = f.read_bytes()
        if f.name != "backup.json":
            data = data[:-1] + bytes([data[-1] ^ 1])
        (altered / f.name).write_bytes(data)
    refused = net.gateway_cli("restore", "--from", str(altered))
    assert refused.returncode == 2 and "does not match its digest" in refused.stderr, refused.stderr

    # A log altered in storage conflicts with the chain's anchors: the gateway does not start on it.
    net.kill_gateway()
    db = Database(net.db_url)
    try:
        with db.write() as s:
            s.connection().execute(text('UPDATE log_leaf SET hash = :h WHERE "index" = 3'), {"h": bytes(32)})
            s.connection().execute(text("DELETE FROM log_node"))
    finally:
        db.dispose()
    port = str(net.gateway_port)
    start = net.gateway_cli("serve", "--host", "127.0.0.1", "--port", port, timeout=120)
    assert start.returncode == 2, start.stderr[-2000:]
    assert (
        "gateway: LOG_CONFLICTS_WITH_ANCHOR: the gateway's log conflicts with ProvenanceLog" in start.stderr
    )
    # Envelope digests are the ids: nothing here was accepted twice.
    assert len({Envelope.from_dict(b["record"]).digest for _o, b, _r in org.sent.values()}) == len(org.sent)
