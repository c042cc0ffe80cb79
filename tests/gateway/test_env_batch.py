"""Sensor batches (``env.batch``) end to end through the real gateway: a station signs once for N readings;
each reading's bundle verifies alone, offline (SDK and CLI); the batch root is anchored in EnvMonitoring;
readings are queried per station and time range; every refusal has its code and keeps nothing."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col
from web3 import Web3

from adapters import adapt
from adapters.env.batch import SPEC
from gateway.models import Record
from provenance.chain.contracts import at, chain_key, transact
from provenance.client import Client
from provenance.errors import ProvenanceError, VerificationError
from provenance.log.bundle import EvidenceBundle
from provenance.verification.trust import TrustStore
from provenance.verification.verify import StepResult, Verifier
from tests.kit import batch_flows as flows
from tests.kit.batches import cli_verify, count, submit_when_seen, verify_steps
from tests.kit.gateway import (
    STATION_2_MN,
    Harness,
    check_accepted,
    env_batch,
    hj212_series,
    iso_second,
    register_station,
    trust_path,
)

N = 2000


def test_batch_readings_verify_alone_and_are_anchored(harness: Harness, tmp_path: Path) -> None:
    station = harness.client("station-1")
    mn = register_station(harness.network)
    start = (datetime.now(UTC) - timedelta(seconds=N + 60)).replace(microsecond=0)
    items: list[Any] = hj212_series(mn, start, N)
    # Two readings in their JSON form (the normal form): the same leaves their packets give.
    for i in (5, N - 1):
        items[i] = adapt("env.reading", items[i].encode()).document()
    payload = env_batch(items, mn, start, start + timedelta(seconds=N))
    rid, _ = flows.anchored(station, SPEC, payload)
    # One record and one log leaf for the whole batch.
    assert count(harness, Record, col(Record.kind) == "env.batch", col(Record.id) == rid) == 1

    # The root is anchored in EnvMonitoring for the station's period.
    assert harness.wait_chain(rid, timeout=60)["chain_status"] == "confirmed"
    env = at(
        Web3(Web3.HTTPProvider(harness.network.rpc_url)),
        "EnvMonitoring",
        harness.network.contracts["EnvMonitoring"],
    )
    sid = chain_key("station", mn)
    anchored = env.functions.batchAt(sid, env.functions.batchCount(sid).call() - 1).call()
    assert anchored[0] == int(start.timestamp()) and anchored[1] == int(start.timestamp()) + N
    assert bytes(anchored[2]).hex() == payload["root"] and anchored[3] == N

    # Readings per station and time range, paginated, each with its bundle.
    since, until = iso_second(start + timedelta(seconds=100)), iso_second(start + timedelta(seconds=350))
    path = f"/api/v1/env/stations/{mn}/readings"
    found = flows.readings(station, path, rid, since=since, until=until, limit=100)
    assert [it["index"] for it in found] == list(range(100, 350))
    flows.bad_reads_refused(station, path, f"/api/v1/env/batches/{rid}/readings/{N}/bundle")

    # Any one reading verifies alone, offline, against the pinned keys: SDK and CLI.
    trust = TrustStore.load(trust_path(harness.network))
    url = f"/api/v1/env/batches/{rid}/readings/{N - 1}/bundle"
    bundle, report = flows.item_verifies(harness, station, url, items[N - 1], payload["root"], tmp_path)

    # The bundle carries the batch root's anchor in EnvMonitoring: offline it must name the signed root;
    # with --rpc the CLI finds the anchorBatch event in that transaction (root, station, period, count).
    place = bundle["batch_anchor"]
    assert place["root"] == "0x" + payload["root"] and place["chain_id"] == harness.network.chain_id
    assert place["contract"].lower() == harness.network.contracts["EnvMonitoring"].lower()
    assert (
        report[-1] == StepResult("batch_anchor", "skipped", report[-1].detail)
        and "offline" in report[-1].detail
    )
    # The gateway too: a checkpoint between two anchors is shown on their history by consistency proofs.
    rpc = ("--rpc", harness.network.rpc_url, "--gateway", harness.server.url)
    code, out = cli_verify(bundle, trust_path(harness.network), tmp_path, *rpc)
    assert code == 0 and out["verdict"] == "verified", (out.get("message"), out)
    steps = {s["step"]: s["status"] for s in out["steps"]}
    assert steps["anchor"] in ("passed", "warning") and steps["batch_anchor"] in ("passed", "warning"), out
    # An anchor naming another root fails offline; one naming another transaction (the log's own anchor,
    # a real transaction of the same chain) fails when looked up.
    other_root = {**bundle, "batch_anchor": {**place, "root": "0x" + "11" * 32}}
    with pytest.raises(VerificationError) as caught:
        verify_steps(other_root, trust)
    assert caught.value.step == "batch_anchor" and caught.value.code == "BATCH_ANCHOR_INVALID"
    code, out = cli_verify(other_root, trust_path(harness.network), tmp_path)
    assert code == 1 and out["failed_step"] == "batch_anchor" and out["code"] == "BATCH_ANCHOR_INVALID", out
    log_tx = {k: bundle["anchor"][k] for k in ("tx_hash", "block_number", "block_hash")}
    other_tx = {**bundle, "batch_anchor": {**place, **log_tx}}
    assert verify_steps(other_tx, trust)[-1].status == "skipped"  # offline it names the signed root
    code, out = cli_verify(other_tx, trust_path(harness.network), tmp_path, *rpc)
    assert code == 1 and out["failed_step"] == "batch_anchor" and out["code"] == "BATCH_ANCHOR_INVALID", out

    # A tampered reading, or a proof of another reading, fails at step "item" (SDK and CLI alike).
    tampered = copy.deepcopy(bundle)
    tampered["item"]["document"]["pollutants"]["a21026"]["Rtd"] = "99.9"
    other = station.get(f"/api/v1/env/batches/{rid}/readings/7/bundle").json()
    wrong_proof = {**bundle, "item": {**bundle["item"], "inclusion_proof": other["item"]["inclusion_proof"]}}
    wrong_index = {**bundle, "item": {**bundle["item"], "index": 7}}
    flows.items_fail(harness, (tampered, wrong_proof, wrong_index), tmp_path)
    # Without the signed head the reading proves nothing.
    headless = {k: v for k, v in bundle.items() if k != "payload"}
    with pytest.raises(VerificationError) as caught:
        verify_steps(headless, trust)
    assert caught.value.step == "item"

    # Other readers: not the other station, not another domain's organisation; the bureau reads them.
    for org in ("station-2", "pharmacy-1"):
        first = f"/api/v1/env/batches/{rid}/readings/0/bundle"
        flows.unseen(harness.client(org), f"/api/v1/env/stations/{mn}/readings", first, limit=5)
    bureau = harness.client("env-bureau").get(f"/api/v1/env/batches/{rid}/readings/3/bundle")
    assert bureau.status_code == 200 and bureau.json()["item"]["index"] == 3

    # The audit: every anchored batch root is a logged batch saying the same. An anchor made behind the
    # gateway's back (the station's account, a root no batch signed) is named.
    rogue = register_station(harness.network)
    w3 = Web3(Web3.HTTPProvider(harness.network.rpc_url))
    fn = env.functions.anchorBatch(
        chain_key("station", rogue), int(start.timestamp()), int(start.timestamp()) + 5, b"\x11" * 32, 5
    )
    transact(w3, fn, harness.network.account("station-1"))
    done, audit = flows.audit_batches(harness, tmp_path)
    assert done.returncode == 1, done.stderr  # the rogue anchor
    ours = [r for r in audit["results"] if r["subject_id"] == chain_key("station", mn).hex()]
    assert [(r["ok"], r["record"], r["root"]) for r in ours] == [(True, rid, payload["root"])], ours
    (theirs,) = [r for r in audit["results"] if r["subject_id"] == chain_key("station", rogue).hex()]
    assert not theirs["ok"] and "no logged env.batch" in theirs["reason"] and theirs["root"] == "11" * 32
    assert audit["bad_bundles"] == []
    check_accepted(harness, [rid])  # what a 202 promises: logged, anchored, its bundle verifies on chain


def test_batch_rejections_keep_nothing(harness: Harness) -> None:
    station = harness.client("station-1")
    mn = register_station(harness.network)
    first, start, end = flows.periods()
    r = submit_when_seen(station, "env.batch", env_batch(hj212_series(mn, first, 20), mn, first, start))
    assert r.status_code == 202, r.text
    good = hj212_series(mn, start, 20)

    refused = flows.refusals(harness, station, SPEC)

    refused(env_batch(good, mn, start, end, root="ab" * 32), "BATCH_ROOT_MISMATCH", 400)
    refused(env_batch(good, mn, start, end, count=21), "BATCH_ROOT_MISMATCH", 400)
    foreign = [*good[:3], hj212_series(STATION_2_MN, start + timedelta(seconds=30), 1)[0]]
    refused(env_batch(foreign, mn, start, end), "BATCH_STATION_MISMATCH", 400, index=3)
    refused(env_batch([*good, good[4]], mn, start, end), "READING_DUPLICATE", 400, index=20, first=4)
    late = hj212_series(mn, end, 1)
    refused(env_batch([*good[:2], *late], mn, start, end), "READING_OUT_OF_PERIOD", 400, index=2)
    crc = good[6][:-6] + ("0000" if good[6][-6:-2] != "0000" else "1111") + "\r\n"
    refused(env_batch([*good[:6], crc], mn, start, end), "HJ212_CRC_MISMATCH", 400, index=6)
    length = "##9999" + good[8][6:]
    refused(env_batch([*good[:8], length], mn, start, end), "HJ212_LENGTH_MISMATCH", 400, index=8)
    big = {"mn": mn, "period_start": iso_second(start), "period_end": iso_second(end), "count": 10_001}
    refused({**big, "root": "00" * 32, "readings": ["x"] * 10_001}, "BATCH_TOO_LARGE", 413)
    refused(env_batch(good, mn, start, start + timedelta(hours=3)), "BATCH_PERIOD_IN_FUTURE", 400)
    # A period overlapping the station's last batch (so a reading of it can never come again).
    overlap = first + timedelta(seconds=10)
    refused(env_batch(hj212_series(mn, start, 2), mn, overlap, end), "BATCH_PERIOD_OVERLAP", 409)
    # Another organisation's station: refused by the station rule.
    other = hj212_series(STATION_2_MN, start, 3)
    refused(env_batch(other, STATION_2_MN, start, end), "STATION_NOT_OPERATOR", 403)
    # The same batch, right: accepted.
    r = station.submit("env.batch", env_batch(good, mn, start, end))
    assert r.status_code == 202, r.text
    check_accepted(harness, [r.json()["id"]])


def test_sdk_submits_a_batch_and_a_reading_verifies(harness: Harness) -> None:
    """``Client.submit_batch`` and ``AsyncClient.submit_batch``: readings in their JSON normal form, one
    signature; a reading's bundle from the gateway verifies with the SDK's verifier."""
    mn = register_station(harness.network)
    start = (datetime.now(UTC) - timedelta(seconds=300)).replace(microsecond=0)
    docs = [adapt("env.reading", p.encode()).document() for p in hj212_series(mn, start, 50)]
    station = harness.client("station-1")
    # The registry watcher must have seen the station: until then STATION_UNKNOWN.
    submit_when_seen(station, "env.batch", env_batch(docs[:1], mn, start, start + timedelta(seconds=1)))
    receipt, later = flows.sdk_batches(harness, "station-1", docs, start, 25, mn=mn)
    for rid, index, doc in ((receipt, 3, docs[4]), (later, 24, docs[49])):
        flows.sdk_item_verifies(station, "env.batch", rid, index, doc)
    # A naive instant is no period bound (the SDK refuses before signing).
    with Client(**flows.sdk_settings(harness, "station-1")) as client, pytest.raises(ProvenanceError):
        client.submit_batch(
            docs[:1], mn=mn, period_start=datetime(2026, 1, 1), period_end=datetime(2026, 1, 2)
        )


def test_alerts_name_exceedances_and_flags_with_their_readings(harness: Harness) -> None:
    """Ambient-air minute data (ST 22): readings over the GB 3095-2012 grade II 1-hour limit (O3 1,000 µg/m³
    against 200) and pollutants flagged other than N (C, M, T) are alerts; the rest are not; each alert
    comes with its reading's bundle; regulators read them."""
    mn = register_station(harness.network)
    start = (datetime.now(UTC) - timedelta(seconds=200)).replace(microsecond=0)

    def calm(i: int, pollutants: dict[str, dict[str, str]]) -> None:
        if i % 10:  # nine readings in ten: within limits, every flag N
            for f in pollutants.values():
                f["Flag"] = "N"
            pollutants["a05024"].update(Avg="100", Min="90", Max="110")

    items = hj212_series(mn, start, 30, template="air-quality-minute-2051-flags.txt", vary=calm)
    payload = env_batch(items, mn, start, start + timedelta(seconds=30))
    rid, _ = flows.anchored(harness.client("station-1"), SPEC, payload)
    regulator = harness.client("regulator")
    alerts = flows.pages(regulator, f"/api/v1/env/stations/{mn}/alerts", limit=5)
    for a in alerts:
        assert a["bundle"]["item"]["index"] == a["index"] and a["batch"] == rid
        if a["type"] == "exceedance":
            assert (a["value"], a["limit"], a["averaging"]) == (1000.0, 200.0, "hour")
    seen = [(a["index"], a["type"], a["code"]) for a in alerts]
    expected = [
        (i, t, c)
        for i in (0, 10, 20)
        for t, c in (("exceedance", "a05024"), ("flag", "a05024"), ("flag", "a21004"), ("flag", "a21026"))
    ]
    assert sorted(seen) == sorted(expected) and len(seen) == len(expected)
    trust = TrustStore.load(trust_path(harness.network))
    one = regulator.get(f"/api/v1/env/stations/{mn}/alerts", params={"limit": 1}).json()["items"][0]
    Verifier.offline(trust).verify(EvidenceBundle.from_dict(one["bundle"]))
    # Another station's operator sees none of them.
    other = harness.client("station-2").get(f"/api/v1/env/stations/{mn}/alerts")
    assert other.status_code == 200 and other.json()["items"] == []
