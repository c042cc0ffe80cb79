"""The sixth outside attack's finding 5 (F6-5): a gas asset's class chosen per reading, and a flow no meter
can read. The attacker's inputs (kit6 gas1.py: ``probe``, ``classhop``, ``units``) replayed through the real
HTTP API, signed with real SM2 keys, by a data logger of gas-utility-2 on the gateway suite's network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.gas.batch import SPEC
from provenance.client import Client
from tests.kit import batch_flows as flows
from tests.kit.batches import submit_when_seen
from tests.kit.gas import gas_batch, register_logger
from tests.kit.gateway import Harness, check_accepted, iso_second

UTILITY = "gas-utility-2"


def _r(asset: str, cls: str, at: datetime, **values: tuple[float, str]) -> dict[str, Any]:
    """gas1.py's ``R``: one reading of ``asset`` as ``cls`` at ``at``, ``values`` as (value, unit)."""
    return {
        "asset": asset,
        "class": cls,
        "time": iso_second(at),
        "values": {q: {"value": v, "unit": u} for q, (v, u) in values.items()},
    }


def test_f6_5_an_assets_class_is_its_first_records_and_a_flow_no_meter_reads_is_refused(
    harness: Harness,
) -> None:
    utility = harness.client(UTILITY)
    logger = register_logger(harness.network, UTILITY)  # periods only move forward: a logger of its own
    refused = flows.refusals(harness, utility, SPEC)
    t0 = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)

    def minute(n: int) -> datetime:
        return t0 + timedelta(minutes=n)

    # The logger's first batch records YB-PIPE-9 as a pipeline sensor (0.3 MPa: within its band).
    pipe = "YB-PIPE-9"
    first = [_r(pipe, "pipeline", minute(1), pressure=(0.3, "MPa"))]
    r = submit_when_seen(utility, "gas.batch", gas_batch(first, logger, minute(0), minute(2)))
    assert r.status_code == 202, r.text
    ids = [r.json()["id"]]

    # classhop: the pipeline read as a gas source at 1.5 MPa between two pipeline readings, where the
    # source band (0.4 to 1.6 MPa) raised no alarm: refused, naming the reading and the asset's class.
    hop = [
        _r(pipe, "pipeline", minute(3), pressure=(0.3, "MPa")),
        _r(pipe, "source", minute(4), pressure=(1.5, "MPa")),
        _r(pipe, "pipeline", minute(5), pressure=(0.3, "MPa")),
    ]
    mismatch = {"field": "class", "asset": pipe, "value": "source", "asset_class": "pipeline"}
    refused(gas_batch(hop, logger, minute(2), minute(6)), "ASSET_CLASS_MISMATCH", 409, index=1, **mismatch)
    # ... and alone, in a batch of its own: the class the logger recorded the asset with holds it.
    alone = gas_batch(hop[1:2], logger, minute(2), minute(6))
    refused(alone, "ASSET_CLASS_MISMATCH", 409, index=0, **mismatch)

    # probe: one new asset as pipeline, meter and source in one batch (5 MPa each).
    probe = [
        _r("P1", "pipeline", minute(3), pressure=(5, "MPa")),
        _r("P1", "meter", minute(4), pressure=(5, "MPa")),
        _r("P1", "source", minute(5), pressure=(5, "MPa")),
        _r("P1", "meter", minute(6), methane=(90, "%LEL")),
    ]
    three = {"field": "class", "asset": "P1", "value": "meter", "asset_class": "pipeline", "first": 0}
    refused(gas_batch(probe, logger, minute(2), minute(7)), "ASSET_CLASS_MISMATCH", 409, index=1, **three)

    # units: a meter's flow of 1e9 m³/h, which no gas meter reads (the largest size, G 16000, 25,000 m³/h).
    units = [
        _r("YB-U1", "pipeline", minute(3), pressure=(1000, "kPa")),
        _r("YB-U2", "pipeline", minute(4), pressure=(1e-300, "MPa")),
        _r("YB-U3", "meter", minute(5), flow=(1e9, "m³/h")),
        _r("YB-U4", "source", minute(6), temperature=(20, "°C")),
        _r("YB-U5", "meter", minute(7), methane=(24.999999, "%LEL")),
    ]
    implausible = {"field": "values.flow.value", "class": "meter", "quantity": "flow", "ceiling": 25_000}
    refused(
        gas_batch(units, logger, minute(2), minute(8)), "GAS_VALUE_IMPLAUSIBLE", 400, index=2, **implausible
    )
    # A pipeline's flow of 1e9 m³/h would be methane faster than sound through the widest line pipe laid.
    units[2] = _r("YB-U3", "pipeline", minute(5), flow=(1e9, "m³/h"))
    refused(gas_batch(units, logger, minute(2), minute(8)), "GAS_VALUE_IMPLAUSIBLE", 400, index=2)

    # Each asset under its own class and within what it can read: accepted through the SDK, as the attacker
    # sent it; the pipeline's 1.5 MPa now raises its class's alarm (over 0.4 MPa), as does YB-U1's 1 MPa, and
    # a meter's flow that is possible but not for a meter on the low-pressure service alarms too.
    units[2] = _r("YB-U3", "meter", minute(5), flow=(20_000, "m³/h"))
    sent = [_r(pipe, "pipeline", minute(2) + timedelta(seconds=30), pressure=(1.5, "MPa")), *units]
    with Client(**flows.sdk_settings(harness, UTILITY)) as client:
        ids.append(client.submit_batch(sent, logger=logger, period_start=minute(2), period_end=minute(8)).id)
    harness.wait_status(ids[-1], "anchored", timeout=60)  # a page holds logged records (their bundles)
    alarms = flows.pages(utility, f"/api/v1/gas/loggers/{logger}/alarms")
    assert sorted((a["index"], a["asset"], a["type"], a["value"], a["unit"], a["limit"]) for a in alarms) == [
        (0, pipe, "pressure_high", 1.5, "MPa", 0.4),
        (1, "YB-U1", "pressure_high", 1000, "kPa", 400),
        (2, "YB-U2", "pressure_low", 1e-300, "MPa", 0.01),
        (3, "YB-U3", "flow_high", 20_000, "m³/h", 160),  # over the largest diaphragm meter's
    ]
    # The meter read once stays a meter in the logger's next batch: read as a pipeline, refused.
    later = gas_batch([_r("YB-U3", "pipeline", minute(9), flow=(800, "m³/h"))], logger, minute(8), minute(10))
    refused(later, "ASSET_CLASS_MISMATCH", 409, index=0, asset="YB-U3", value="pipeline", asset_class="meter")
    # Two batches in one bulk request: the second is decided on the first's recorded classes.
    bulk = [
        gas_batch(
            [_r("YB-B1", "pipeline", minute(11), pressure=(0.3, "MPa"))], logger, minute(10), minute(12)
        ),
        gas_batch([_r("YB-B1", "meter", minute(13), pressure=(2, "kPa"))], logger, minute(12), minute(14)),
    ]
    items = [utility.body("gas.batch", b) for b in bulk]
    r = harness.http.post("/api/v1/records:bulk", json={"records": items}, headers=utility.headers)
    assert r.status_code == 200, r.text
    got = [(it["status"], (it["error"] or {}).get("code")) for it in r.json()["items"]]
    assert got == [("accepted", None), ("rejected", "ASSET_CLASS_MISMATCH")], got
    assert r.json()["items"][1]["error"]["details"]["asset_class"] == "pipeline"
    ids.append(r.json()["items"][0]["id"])
    check_accepted(harness, ids)
