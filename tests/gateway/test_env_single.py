"""Single readings (``env.reading``) held to the batches' guarantees, end to end through the real gateway
(fifth attack, 6: t22_env_dupe.py, t48_single_alert.py, t44_st_alerts.py): (MN, CN, DataTime) once across
single readings and batches, never inside or before a recorded batch period, within the backdating window,
of the station's class; a single reading's exceedance is an alert, and the reading is in the station's
readings, with its own evidence bundle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from adapters import adapt
from gateway.models import Record, WorkflowState
from provenance.errors import ProvenanceError
from tests.kit.batches import count
from tests.kit.gateway import (
    Harness,
    check_accepted,
    env_batch,
    error_code,
    iso_second,
    register_station,
    verify_bundle,
)


def _reading(
    mn: str, at: datetime, value: str, *, cn: str = "2011", code: str = "a21026", st: str = "22"
) -> dict[str, Any]:
    """A reading's JSON form: by default ambient air (ST 22), one pollutant; DataTime in station local time
    (UTC+8)."""
    field = "Rtd" if cn == "2011" else "Avg"
    stamp = (at + timedelta(hours=8)).strftime("%Y%m%d%H%M%S")
    return {"mn": mn, "st": st, "cn": cn, "data_time": stamp, "pollutants": {code: {field: value}}}


def test_single_readings_are_held_to_the_batch_guarantees(harness: Harness) -> None:
    station = harness.client("station-1")
    mn = register_station(harness.network)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    body = station.body("env.reading", _reading(mn, t0, "12.5"))
    first = harness.wait(
        lambda: None if (r := station.post(body)).status_code == 404 else r,  # STATION_UNKNOWN till seen
        timeout=20,
        what="station registered",
    )
    assert first.status_code == 202, first.text
    ids = [first.json()["id"]]

    def refused(kind: str, payload: dict[str, Any], code: str, status: int) -> dict[str, Any]:
        before = (count(harness, Record), count(harness, WorkflowState))
        try:  # the digest the station signs (none when the payload does not adapt: the gateway says why)
            digest = adapt(kind, payload).digest
        except ProvenanceError:
            digest = "0" * 64
        r = station.post(station.body(kind, payload, subject=f"station:{mn}", payload_digest=digest))
        assert (r.status_code, error_code(r)) == (status, code), r.text
        # Nothing of a refused reading or batch is kept: no record, no state.
        assert (count(harness, Record), count(harness, WorkflowState)) == before
        return dict(r.json()["error"]["details"])

    def accepted(kind: str, payload: dict[str, Any]) -> str:
        r = station.submit(kind, payload)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
        return ids[-1]

    # The same (MN, CN, DataTime) again with another value: refused, naming the recorded reading.
    details = refused("env.reading", _reading(mn, t0, "0.1"), "READING_DUPLICATE", 400)
    assert details["record"] == ids[0]
    # Another CN of the same second (the minute's average) is another reading.
    minute = accepted("env.reading", _reading(mn, t0, "11", cn="2051"))
    # A batch over that time: refused (its period would cover recorded readings).
    over = [_reading(mn, t0, "999"), _reading(mn, t0 + timedelta(seconds=30), "999", code="a21004")]
    refused("env.batch", env_batch(over, mn, t0, t0 + timedelta(minutes=1)), "BATCH_PERIOD_OVERLAP", 409)
    # A batch after it; then a single reading inside its period, and before it: refused.
    start, end = t0 + timedelta(minutes=1), t0 + timedelta(minutes=2)
    batch = [_reading(mn, start, "20"), _reading(mn, start + timedelta(seconds=30), "21")]
    batch_id = accepted("env.batch", env_batch(batch, mn, start, end))
    for at in (start + timedelta(seconds=10), t0 + timedelta(seconds=5)):
        details = refused("env.reading", _reading(mn, at, "0.2"), "READING_OUT_OF_ORDER", 409)
        assert details["last_period_end"] == iso_second(end)
    # The station's class is its first reading's ST (22, ambient air, held to GB 3095): a reading or a batch
    # of another ST, whose limits would not hold it (t44_st_alerts.py: SO2 9999 alerted under ST 22 only).
    # (A water class's readings carry a water code: an air code there is refused before, F6-6.)
    later = end + timedelta(seconds=5)
    for st, code in (("21", "w01018"), ("31", "a21026"), ("32", "w01018"), ("91", "a21026")):
        details = refused(
            "env.reading", _reading(mn, later, "9999", st=st, code=code), "STATION_CLASS_MISMATCH", 409
        )
        assert details == {"field": "ST", "value": st, "station_st": "22"}
    water = _reading(mn, later + timedelta(seconds=1), "9999", st="32", code="w01018")
    mixed = [_reading(mn, later, "9999"), water]
    period = (later, later + timedelta(seconds=2))
    assert refused("env.batch", env_batch(mixed, mn, *period), "STATION_CLASS_MISMATCH", 409)["index"] == 1
    other = [_reading(mn, later, "9999", st="32", code="w01018"), water]
    refused("env.batch", env_batch(other, mn, *period), "STATION_CLASS_MISMATCH", 409)
    # Backdated beyond the window (72 hours): 30 days old, and from 2001.
    for at in (t0 - timedelta(days=30), datetime(2001, 1, 1, tzinfo=UTC)):
        assert refused("env.reading", _reading(mn, at, "0.2"), "READING_TOO_OLD", 400)["field"] == "DataTime"

    # A single reading over its limit (SO2 8888 µg/m³, GB 3095 grade II 1-hour: 500) is an alert, and the
    # reading is in the station's readings with its own bundle, in time order with the batch's.
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=3)
    high = _reading(mn, now, "8888")
    over_limit = accepted("env.reading", high)
    harness.wait_status(over_limit, "anchored", timeout=60)  # a page holds logged records (their bundles)
    r = station.get(f"/api/v1/env/stations/{mn}/alerts")
    assert r.status_code == 200, r.text
    alerts = r.json()["items"]
    assert [(a["batch"], a["index"], a["type"], a["code"], a["value"], a["limit"]) for a in alerts] == [
        (over_limit, 0, "exceedance", "a21026", 8888.0, 500.0)
    ]
    assert alerts[0]["data_time"] == iso_second(now)
    readings = station.get(f"/api/v1/env/stations/{mn}/readings").json()["items"]
    got = [(i["batch"], i["data_time"]) for i in readings]
    assert got == [
        (ids[0], iso_second(t0)),
        (minute, iso_second(t0)),
        (batch_id, iso_second(start)),
        (batch_id, iso_second(start + timedelta(seconds=30))),
        (over_limit, iso_second(now)),
    ], got
    assert readings[-1]["reading"] == adapt("env.reading", high).document()
    assert readings[-1]["bundle"]["record"]["kind"] == "env.reading"
    verify_bundle(readings[-1]["bundle"], harness)
    check_accepted(harness, ids)
