"""Auditors' export: GET /api/v1/bundles (filters, cursor, payload rule), `provenance export`, `verify`."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from provenance.log.bundle import BundleReader
from provenance.log.merkle import MemoTreeHasher
from provenance.verification.batch import fast_verdict
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier
from tests.kit.gateway import Harness, error_code, hj212_packets, trust_path

INT64_MAX = 2**63 - 1


def _window(harness: Harness) -> tuple[datetime, list[str]]:
    """Four readings dated base, +0.5 s, +1 s, +1.25 s (a past second no other test uses), anchored."""
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2, seconds=random.randrange(3600))
    offsets = (0, 500_000, 1_000_000, 1_250_000)
    stamps = [
        (base + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".") + "Z"
        for us in offsets
    ]
    station = harness.client("station-1")
    ids = []
    for packet, ts in zip(hj212_packets(4), stamps, strict=True):
        r = station.submit("env.reading", packet, timestamp=ts)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    harness.wait_status(ids[-1], "anchored")
    return base, ids


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _export(harness: Harness, reader: str, **params: Any) -> list[dict[str, Any]]:
    client = harness.client(reader)
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        r = client.get("/api/v1/bundles", params={**params, "after": after})
        assert r.status_code == 200, r.text
        page = r.json()
        assert (page["total"] is not None) == (after == 0)
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        assert len(page["items"]) == params.get("limit", 100)
        after = page["next_cursor"]


def _verify(harness: Harness, path: Path) -> subprocess.CompletedProcess[str]:
    assert harness.network.path is not None
    trust = trust_path(harness.network)
    cmd = [sys.executable, "-m", "provenance", "verify", str(path), "--trust", str(trust)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_export_filters_pages_and_verifies(harness: Harness, tmp_path: Path) -> None:
    base, ids = _window(harness)
    window = {"org": "station-1", "since": _iso(base), "until": _iso(base + timedelta(seconds=1.25))}
    first = harness.client("auditor").get("/api/v1/bundles", params={**window, "limit": 2}).json()
    assert first["total"] == 3 and len(first["items"]) == 2 and first["next_cursor"] is not None
    items = _export(harness, "auditor", **window, limit=2)
    assert [b["digest"] for b in items] == ids[:3]  # acceptance order; until is exclusive
    assert all("payload" in b for b in items)  # auditors read payloads
    # Fractions and offsets compare as instants: [base + 0.5 s, base + 1 s) holds exactly the second.
    half = {"since": _iso(base + timedelta(seconds=0.5)), "until": (base + timedelta(seconds=1)).isoformat()}
    assert [b["digest"] for b in _export(harness, "auditor", org="station-1", **half)] == [ids[1]]
    assert _export(harness, "auditor", **window, kind="rx.issue") == []
    # Another organisation's export lists none of them (and counts none), its own with their payloads.
    assert _export(harness, "hospital-1", **window) == []
    assert harness.client("hospital-1").get("/api/v1/bundles", params=window).json()["total"] == 0
    own = _export(harness, "station-1", **window)
    assert [b["digest"] for b in own] == ids[:3] and all("payload" in b for b in own)
    out = tmp_path / "export.jsonl"
    out.write_text("".join(json.dumps(b, ensure_ascii=False) + "\n" for b in items), "utf-8")
    done = _verify(harness, out)
    assert done.returncode == 0, done.stdout + done.stderr


def test_export_rejections(harness: Harness) -> None:
    base, _ids = _window(harness)
    window = {"org": "station-1", "since": _iso(base), "until": _iso(base + timedelta(seconds=2))}
    hospital = harness.client("hospital-1")
    # Records it may not see are not listed, so payload=true refuses nothing: there is nothing to withhold.
    r = hospital.get("/api/v1/bundles", params={**window, "payload": "true"})
    assert r.status_code == 200 and (r.json()["items"], r.json()["total"]) == ([], 0), r.text
    for bad in ({"since": "yesterday"}, {"until": "2026-11-25T10:00:00"}, {"after": INT64_MAX + 1}):
        r = hospital.get("/api/v1/bundles", params=bad)
        assert r.status_code == 422 and error_code(r) == "REQUEST_INVALID", (bad, r.text)
    # Outside RFC 3339 (an ISO week date, an offset without colon) or not a real day: the message says how.
    for value in ("2026-W48-2", "2026-11-25T10:00:00+0800", "2026-02-30"):
        r = hospital.get("/api/v1/bundles", params={"since": value})
        assert r.status_code == 422 and error_code(r) == "REQUEST_INVALID", r.text
        assert r.json()["error"]["details"] == {"field": "since", "value": value}
        assert "like 2026-11-25T08:00:00Z" in r.json()["error"]["message"], r.text
    r = harness.http.get("/api/v1/bundles")
    assert r.status_code == 401 and error_code(r) == "AUTH_REQUIRED"


def test_provenance_export_cli(harness: Harness, tmp_path: Path) -> None:
    base, ids = _window(harness)
    token = tmp_path / "auditor.token"
    token.write_text(harness.tokens["auditor"], "ascii")
    out = tmp_path / "station.jsonl"
    cmd = [sys.executable, "-m", "provenance", "export", "--gateway", harness.server.url]
    cmd += ["--token-file", str(token), "--org", "station-1", "--kind", "env.reading", "--payload"]
    cmd += ["--since", _iso(base), "--until", _iso(base + timedelta(seconds=2)), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [b["digest"] for b in lines] == ids and all("payload" in b for b in lines)
    checked = _verify(harness, out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Each line as `provenance export` writes it takes the export verifier's fast path, read by its
    # BundleReader (not declined to the schema), as in a worker process.
    verifier = Verifier(trust=TrustStore.load(trust_path(harness.network)), tree_hasher=MemoTreeHasher())
    reader = BundleReader()
    raw = out.read_bytes().splitlines()
    assert all(reader.read(json.loads(line)) is not None for line in raw)
    assert [fast_verdict(verifier, line, reader) for line in raw] == ["verified"] * len(ids)
