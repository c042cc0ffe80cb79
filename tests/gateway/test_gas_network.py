"""The gas network (``gas.batch``) end to end through the real gateway, the domain added as one package
(``adapters/gas``) with no file of ``gateway/`` changed: a utility's data logger signs once for N readings
with units; each reading's bundle verifies alone, offline (SDK and CLI), and a tampered one fails naming
the step; the root is anchored in GasNetwork; leak and pressure alarms are read from the API; every refusal
has its code and keeps nothing."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from adapters.gas.batch import SPEC
from provenance.chain.contracts import at, chain_key, transact
from provenance.client import Client
from provenance.errors import ProvenanceError
from provenance.log.bundle import EvidenceBundle
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier
from tests.kit import batch_flows as flows
from tests.kit.batches import submit_when_seen
from tests.kit.gas import gas_batch, gas_series, register_logger
from tests.kit.gateway import Harness, check_accepted, error_code, iso_second, trust_path

N = 600


def test_gas_batch_readings_verify_alone_are_anchored_and_alarm(harness: Harness, tmp_path: Path) -> None:
    utility = harness.client("gas-utility")
    logger = register_logger(harness.network)
    start = (datetime.now(UTC) - timedelta(seconds=N + 60)).replace(microsecond=0)
    items = gas_series(start, N, vary=_vary)
    payload = gas_batch(items, logger, start, start + timedelta(seconds=N))
    rid, _ = flows.anchored(utility, SPEC, payload)

    # The root is anchored in GasNetwork for the logger's period.
    assert harness.wait_chain(rid, timeout=60)["chain_status"] == "confirmed"
    w3 = Web3(Web3.HTTPProvider(harness.network.rpc_url))
    gas = at(w3, "GasNetwork", harness.network.contracts["GasNetwork"])
    lid = chain_key("logger", logger)
    # The devnet's demo utilities come with a logger each, registered by themselves.
    for org, demo in (("gas-utility", "SCGAS-DL-0001"), ("gas-utility-2", "YBGAS-DL-0001")):
        st = gas.functions.stationOf(chain_key("logger", demo)).call()
        assert (bytes(st[0]).rstrip(b"\0").decode(), st[2]) == (org, True)
    anchored = gas.functions.batchAt(lid, gas.functions.batchCount(lid).call() - 1).call()
    assert anchored[:4] == (
        int(start.timestamp()),
        int(start.timestamp()) + N,
        bytes.fromhex(payload["root"]),
        N,
    )

    # Readings per logger and time range, paginated, each with its bundle.
    since, until = iso_second(start + timedelta(seconds=100)), iso_second(start + timedelta(seconds=230))
    path = f"/api/v1/gas/loggers/{logger}/readings"
    seen = flows.readings(utility, path, rid, since=since, until=until, limit=40)
    assert [it["index"] for it in seen] == list(range(100, 230))
    assert all(it["reading"] == items[it["index"]] for it in seen)
    flows.bad_reads_refused(utility, path, f"/api/v1/gas/batches/{rid}/readings/{N}/bundle")

    # Any one reading verifies alone, offline, against the pinned keys: SDK and CLI.
    trust = TrustStore.load(trust_path(harness.network))
    url = f"/api/v1/gas/batches/{rid}/readings/{N - 2}/bundle"
    bundle, _ = flows.item_verifies(harness, utility, url, items[N - 2], payload["root"], tmp_path)

    # A tampered reading (its pressure, its unit), or another reading's proof, fails at step "item".
    tampered = copy.deepcopy(bundle)
    tampered["item"]["document"]["values"]["pressure"]["value"] = 0.01
    unit = copy.deepcopy(bundle)
    unit["item"]["document"]["values"]["pressure"]["unit"] = "MPa"  # it reported kPa
    other = utility.get(f"/api/v1/gas/batches/{rid}/readings/7/bundle").json()
    wrong_proof = {**bundle, "item": {**bundle["item"], "inclusion_proof": other["item"]["inclusion_proof"]}}
    flows.items_fail(harness, (tampered, unit, wrong_proof), tmp_path)

    # Alarms: exactly the readings over their class's thresholds, each with its reading's bundle; the
    # regulator reads them, another utility and the environment's station see none.
    regulator = harness.client("regulator")
    alarms = flows.pages(regulator, f"/api/v1/gas/loggers/{logger}/alarms", limit=7)
    expected = sorted(_expected_alarms(items))
    assert sorted((a["index"], a["type"], a["value"], a["unit"], a["limit"]) for a in alarms) == expected
    assert len(expected) >= 3 * (N // 50)
    assert {a["type"] for a in alarms} == {"leak", "pressure_high", "pressure_low"}
    for a in alarms[:3]:
        assert a["bundle"]["item"]["index"] == a["index"] and a["batch"] == rid
        assert a["bundle"]["item"]["document"] == items[a["index"]]
    Verifier.offline(trust).verify(EvidenceBundle.from_dict(alarms[0]["bundle"]))
    for org in ("gas-utility-2", "station-1", "env-bureau"):
        first = f"/api/v1/gas/batches/{rid}/readings/0/bundle"
        flows.unseen(harness.client(org), f"/api/v1/gas/loggers/{logger}/alarms", first)

    # The audit finds the anchored root to be the logged batch's.
    _, audit = flows.audit_batches(harness, tmp_path)
    ours = [x for x in audit["results"] if x["subject_id"] == lid.hex()]
    assert [(x["event"], x["ok"], x["record"]) for x in ours] == [("GasNetwork.BatchAnchored", True, rid)], (
        ours
    )
    check_accepted(harness, [rid])


def _vary(i: int, reading: dict[str, Any]) -> None:
    """Three readings in 50 alarm (one of each class: classes go in turn): a pipeline leak (40 %LEL), a
    source over its pressure band (2 MPa), a meter under its band (0.4 kPa); a pipeline sensor reporting
    in MPa within its band does not."""
    v, cls = reading["values"], reading["class"]
    if i % 50 < 3 and cls == "pipeline":
        v["methane"]["value"] = 40
    if i % 50 < 3 and cls == "source":
        v["pressure"] = {"value": 2, "unit": "MPa"}
    if i % 50 < 3 and cls == "meter":
        v["pressure"] = {"value": 0.4, "unit": "kPa"}
    if i % 50 == 10 and cls == "pipeline":
        v["pressure"] = {"value": 0.3, "unit": "MPa"}  # 300 kPa: within 10 to 400 kPa


def _expected_alarms(items: list[dict[str, Any]]) -> list[tuple[int, str, float, str, float]]:
    out = []
    for i, r in enumerate(items):
        v = r["values"]
        if r["class"] != "source" and v["methane"]["value"] >= 25:
            out.append((i, "leak", v["methane"]["value"], "%LEL", 25.0))
        if r["class"] == "source" and v["pressure"] == {"value": 2, "unit": "MPa"}:
            out.append((i, "pressure_high", 2, "MPa", 1.6))
        if r["class"] == "meter" and v["pressure"] == {"value": 0.4, "unit": "kPa"}:
            out.append((i, "pressure_low", 0.4, "kPa", 1.0))
    return out


def test_gas_batch_rejections_keep_nothing(harness: Harness) -> None:
    utility = harness.client("gas-utility")
    logger = register_logger(harness.network)
    first, start, end = flows.periods()
    r = submit_when_seen(utility, "gas.batch", gas_batch(gas_series(first, 20), logger, first, start))
    assert r.status_code == 202, r.text
    good = gas_series(start, 20)

    refused = flows.refusals(harness, utility, SPEC)

    def changed(i: int, change: Any) -> list[dict[str, Any]]:
        items = copy.deepcopy(good)
        change(items[i])
        return items

    def values(**v: Any) -> Any:
        return lambda r: r["values"].update(v)

    refused(gas_batch(good, logger, start, end, root="ab" * 32), "BATCH_ROOT_MISMATCH", 400)
    refused(gas_batch(good, logger, start, end, count=21), "BATCH_ROOT_MISMATCH", 400)
    # Units per quantity; quantities per asset class; the reading's own shape: each reading refused alone,
    # by its index (and the field at fault).
    for i, change, code, field in (
        (4, values(pressure={"value": 1, "unit": "bar"}), "GAS_UNIT_INVALID", None),
        (5, values(flow={"value": 3, "unit": "m3/h"}), "GAS_UNIT_INVALID", None),  # m³/h: its one spelling
        (3, values(methane={"value": 3, "unit": "%LEL"}), "GAS_QUANTITY_INVALID", None),  # a source: no CH4
        (7, values(humidity={"value": 3, "unit": "%"}), "GAS_QUANTITY_INVALID", None),
        # A value is a number, not text; a class one of three; a time RFC 3339 UTC.
        (6, values(pressure={"value": "0.3", "unit": "MPa"}), "GAS_READING_INVALID", "values.pressure.value"),
        (8, lambda r: r.update({"class": "valve"}), "GAS_READING_INVALID", "class"),
        (9, lambda r: r.update({"time": "2026-12-06 08:00:00"}), "GAS_READING_INVALID", "time"),
    ):
        details = {"index": i} | ({"field": field} if field else {})
        refused(gas_batch(changed(i, change), logger, start, end), code, 400, **details)
    # A flow no meter reads (sixth attack, finding 5: 1e9 m³/h); an asset of another class than in the
    # batch before (a pipeline reading of the source, reading 0), or than its logger recorded it with in the
    # first batch (the meter read as a source, alone in its batch).
    meter_flow = changed(2, values(flow={"value": 1e9, "unit": "m³/h"}))
    refused(gas_batch(meter_flow, logger, start, end), "GAS_VALUE_IMPLAUSIBLE", 400, index=2, ceiling=25_000)
    hop = changed(4, lambda r: r.update({"asset": "SOU-0000"}))
    refused(gas_batch(hop, logger, start, end), "ASSET_CLASS_MISMATCH", 409, index=4, first=0)
    recorded = [{**good[0], "asset": "MET-0002"}]
    refused(
        gas_batch(recorded, logger, start, end), "ASSET_CLASS_MISMATCH", 409, index=0, asset_class="meter"
    )
    # Duplicates (asset and time), a reading outside the period, an over-size batch, bad periods.
    refused(gas_batch([*good, good[4]], logger, start, end), "READING_DUPLICATE", 400, index=20, first=4)
    late = gas_series(end, 1)
    refused(gas_batch([*good[:2], *late], logger, start, end), "READING_OUT_OF_PERIOD", 400, index=2)
    big = {"logger": logger, "period_start": iso_second(start), "period_end": iso_second(end)}
    refused({**big, "count": 10_001, "root": "00" * 32, "readings": [{}] * 10_001}, "BATCH_TOO_LARGE", 413)
    # A period ending in the future (fifth attack, 13: 59 minutes ahead, within the contract's hour of
    # clock lead, froze the logger for that hour): refused beyond the gateway's clock skew.
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=59)
    refused(
        gas_batch(good, logger, start, ahead), "BATCH_PERIOD_IN_FUTURE", 400, period_end=iso_second(ahead)
    )
    refused(gas_batch(good, logger, start, start + timedelta(hours=3)), "BATCH_PERIOD_IN_FUTURE", 400)
    overlap = first + timedelta(seconds=10)
    refused(gas_batch(gas_series(start, 2), logger, overlap, end), "BATCH_PERIOD_OVERLAP", 409)
    # Loggers: unknown, another utility's, suspended; and a role that records no gas readings.
    refused(gas_batch(good, "DL-NOWHERE", start, end), "LOGGER_UNKNOWN", 404)
    theirs = register_logger(harness.network, "gas-utility-2")
    harness.wait(
        lambda: (
            error_code(utility.post(utility.body("gas.batch", gas_batch(good, theirs, start, end))))
            != "LOGGER_UNKNOWN"
        ),
        timeout=20,
        what="logger registered",
    )
    refused(gas_batch(good, theirs, start, end), "LOGGER_NOT_OPERATOR", 403)
    refused(gas_batch(good, logger, start, end), "ROLE_FORBIDDEN", 403, who=harness.client("station-1"))
    # Suspended by its utility: refused once the gateway has seen it (a probe the period rule refuses
    # anyway, so nothing is accepted while the gateway still holds the logger active), then resumed.
    w3 = Web3(Web3.HTTPProvider(harness.network.rpc_url))
    gas = at(w3, "GasNetwork", harness.network.contracts["GasNetwork"])
    probe = gas_batch(gas_series(start, 2), logger, overlap, end)

    def probed(code: str) -> bool:
        return error_code(utility.post(utility.body("gas.batch", probe))) == code

    for active, code in ((False, "LOGGER_INACTIVE"), (True, "BATCH_PERIOD_OVERLAP")):
        fn = gas.functions.setLoggerActive(chain_key("logger", logger), active)
        transact(w3, fn, harness.network.account("gas-utility"))
        harness.wait(lambda code=code: probed(code), timeout=20, what=code)
        if not active:
            refused(gas_batch(good, logger, start, end), "LOGGER_INACTIVE", 403)
    # The same batch, right: accepted.
    r = utility.submit("gas.batch", gas_batch(good, logger, start, end))
    assert r.status_code == 202, r.text
    check_accepted(harness, [r.json()["id"]])


def test_sdk_submits_a_gas_batch_and_a_reading_verifies(harness: Harness) -> None:
    """``Client.submit_batch(logger=...)`` and ``AsyncClient.submit_batch``: one signature over the readings
    as sent; a reading's bundle from the gateway verifies with the SDK's verifier."""
    logger = register_logger(harness.network)
    start = (datetime.now(UTC) - timedelta(seconds=300)).replace(microsecond=0)
    items = gas_series(start, 40)
    utility = harness.client("gas-utility")
    submit_when_seen(utility, "gas.batch", gas_batch(items[:1], logger, start, start + timedelta(seconds=1)))
    receipt, later = flows.sdk_batches(harness, "gas-utility", items, start, 20, logger=logger)
    # A batch names one source: a station or a logger.
    with Client(**flows.sdk_settings(harness, "gas-utility")) as client, pytest.raises(ProvenanceError):
        client.submit_batch(items[:1], mn="X1", logger=logger, period_start=start, period_end=start)
    for rid, index, doc in ((receipt, 3, items[4]), (later, 19, items[39])):
        flows.sdk_item_verifies(utility, "gas.batch", rid, index, doc)
