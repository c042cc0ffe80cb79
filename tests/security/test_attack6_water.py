"""The sixth outside attack's finding 6 (F6-6): water stations raised no exceedance, and pollutant codes were
not checked against the station's class. The attacker's inputs (kit6 env1.py … env4.py: ST 32, COD 99999,
pH 14, NH3-N 9999, TP 9999, DO 0, SO2 and PM2.5 9999 from a water station, ``W01018``, HJ 212-2005's
``011``) replayed through the real HTTP API, signed with real SM2 keys, on the gateway suite's network; the
alerts read back from the station's alerts API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from adapters import adapt, hj212
from gateway.models import Record, WorkflowState
from provenance.errors import ProvenanceError
from tests.kit.batches import count
from tests.kit.gateway import Harness, OrgClient, env_batch, error_code, register_station

# env4.py's reading, all of it: water pollutants and two air ones
WATER = {"w01001": "14", "w21003": "9999", "w21011": "9999", "w01018": "9999", "w01009": "0"}
AIR = {"a21026": "9999", "a34004": "9999"}


def _local(at: datetime) -> str:
    return (at + timedelta(hours=8)).strftime("%Y%m%d%H%M%S")  # stations send UTC+8


def _reading(mn: str, st: str, at: datetime, values: dict[str, str], cn: str = "2011") -> dict[str, Any]:
    field = "Rtd" if cn == "2011" else "Avg"
    pollutants = {code: {field: v} for code, v in values.items()}
    return {"mn": mn, "st": st, "cn": cn, "data_time": _local(at), "pollutants": pollutants}


def _packet(mn: str, st: str, at: datetime, values: dict[str, str]) -> str:
    pollutants = {code: {"Rtd": v, "Flag": "N"} for code, v in values.items()}
    return hj212.encode_packet(
        st=st, cn="2011", pw="123456", mn=mn, data_time=_local(at), pollutants=pollutants
    )


class _Station:
    """A monitoring point of its own, operated by station-1, through the real gateway."""

    def __init__(self, harness: Harness, client: OrgClient) -> None:
        self.h, self.client = harness, client
        self.mn = register_station(harness.network)
        self.ids: list[str] = []

    def accepted(self, kind: str, payload: dict[str, Any]) -> str:
        body = self.client.body(kind, payload)
        # STATION_UNKNOWN (404) until the gateway has seen the registration
        r = self.h.wait(
            lambda: None if (r := self.client.post(body)).status_code == 404 else r, what="station"
        )
        assert r.status_code == 202, r.text
        self.ids.append(r.json()["id"])
        return self.ids[-1]

    def refused(self, kind: str, payload: dict[str, Any], code: str, status: int = 400) -> dict[str, Any]:
        before = (count(self.h, Record), count(self.h, WorkflowState))
        digest: str
        try:  # the digest the station signs (none when the payload does not adapt: the gateway says why)
            digest = adapt(kind, payload).digest
        except ProvenanceError:
            digest = "0" * 64
        body = self.client.body(kind, payload, subject=f"station:{self.mn}", payload_digest=digest)
        r = self.h.wait(
            lambda: None if (r := self.client.post(body)).status_code == 404 else r, what="station"
        )
        assert (r.status_code, error_code(r)) == (status, code), r.text
        assert (count(self.h, Record), count(self.h, WorkflowState)) == before  # nothing of it kept
        return dict(r.json()["error"]["details"])

    def exceedances(self) -> list[tuple[str, int, str, float, float, str | None]]:
        """The station's exceedances from its alerts API: (record, index, code, value, limit, bound)."""
        self.h.wait_status(self.ids[-1], "anchored", timeout=60)  # a page holds logged records
        r = self.client.get(f"/api/v1/env/stations/{self.mn}/alerts")
        assert r.status_code == 200, r.text
        return [
            (a["batch"], a["index"], a["code"], a["value"], a["limit"], a["bound"])
            for a in r.json()["items"]
            if a["type"] == "exceedance"
        ]


def test_f6_6_water_readings_raise_exceedances_and_foreign_codes_are_refused(harness: Harness) -> None:
    client = harness.client("station-1")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)

    # A discharge to surface water (ST 32, the attacker's class): GB 8978-1996 grade 1 holds it.
    source = _Station(harness, client)
    mn = source.mn
    cod = source.accepted("env.reading", _reading(mn, "32", t0, {"w01018": "99999"}))  # env2.py rtd
    avg = source.accepted(
        "env.reading", _reading(mn, "32", t0 + timedelta(seconds=1), {"w01018": "99999"}, "2051")
    )
    ph = source.accepted("env.reading", _reading(mn, "32", t0 + timedelta(seconds=2), {"w01001": "14"}))
    # env3.py so2-in-water, env4.py water-all (with SO2 and PM2.5), env2.py upper and old: refused, naming
    # the code; nothing recorded.
    at = t0 + timedelta(seconds=3)
    for values, code in (
        (AIR, "a21026"),
        ({**WATER, **AIR}, "a21026"),
        ({"W01018": "99999"}, "W01018"),
        ({"011": "99999"}, "011"),
    ):
        details = source.refused(
            "env.reading", _reading(mn, "32", at, values, "2051"), "POLLUTANT_CLASS_MISMATCH"
        )
        assert details == {"field": "pollutants", "code": code, "st": "32", "family": "w"}
    water = source.accepted("env.reading", _reading(mn, "32", at, WATER, "2051"))  # env4.py, water alone
    assert source.exceedances() == [
        (cod, 0, "w01018", 99999.0, 100.0, "max"),
        (avg, 0, "w01018", 99999.0, 100.0, "max"),
        (ph, 0, "w01001", 14.0, 9.0, "max"),
        (water, 0, "w01001", 14.0, 9.0, "max"),
        (water, 0, "w01018", 9999.0, 100.0, "max"),
        (water, 0, "w21003", 9999.0, 15.0, "max"),
        # TP and DO: GB 8978 sets no limit on them for a discharge (docs/design/sensor-batches.md)
    ]

    # A surface-water quality station (ST 21): GB 3838-2002 Class III, both ends of pH, DO's minimum.
    river = _Station(harness, client)
    one = river.accepted("env.reading", _reading(river.mn, "21", t0, WATER, "2051"))
    low = river.accepted("env.reading", _reading(river.mn, "21", t0 + timedelta(seconds=1), {"w01001": "3"}))
    # A batch: packets (the fast path) and a JSON form (the codec), an air code in reading 1 refused by both.
    start = t0 + timedelta(minutes=1)
    for foreign in (
        _packet(river.mn, "21", start + timedelta(seconds=1), {"w01018": "5", **AIR}),
        _reading(river.mn, "21", start + timedelta(seconds=1), {"a34004": "9999"}),
    ):
        readings = [_packet(river.mn, "21", start, {"w01009": "7"}), foreign]
        details = river.refused(
            "env.batch",
            env_batch(readings, river.mn, start, start + timedelta(seconds=2)),
            "POLLUTANT_CLASS_MISMATCH",
        )
        assert details["index"] == 1 and details["st"] == "21", details
    readings = [
        _packet(river.mn, "21", start, {"w01009": "7", "w01001": "7.5"}),  # within every limit
        _packet(river.mn, "21", start + timedelta(seconds=1), {"w01009": "0.5", "w01001": "9.5"}),
        _packet(river.mn, "21", start + timedelta(seconds=2), {"w01009": "2", "w01001": "5.5"}),
    ]
    batch = river.accepted("env.batch", env_batch(readings, river.mn, start, start + timedelta(seconds=3)))
    assert river.exceedances() == [
        (one, 0, "w01001", 14.0, 9.0, "max"),
        (one, 0, "w01009", 0.0, 5.0, "min"),
        (one, 0, "w01018", 9999.0, 20.0, "max"),
        (one, 0, "w21003", 9999.0, 1.0, "max"),
        (one, 0, "w21011", 9999.0, 0.2, "max"),
        (low, 0, "w01001", 3.0, 6.0, "min"),
        (batch, 1, "w01001", 9.5, 9.0, "max"),
        (batch, 1, "w01009", 0.5, 5.0, "min"),
        (batch, 2, "w01001", 5.5, 6.0, "min"),
        (batch, 2, "w01009", 2.0, 5.0, "min"),
    ]
    # The supervision dashboard counts them, each side drawn as it is.
    regulator = harness.client("regulator")
    r = regulator.get("/api/v1/dashboard/panels/env/exceedances", params={"key": river.mn, "limit": 50})
    assert r.status_code == 200, r.text
    drawn = {i["detail"] for i in r.json()["items"]}
    assert {"#1 w01009 0.5 < 5 (hour)", "#1 w01001 9.5 > 9 (hour)", "#0 w01001 3 < 6 (hour)"} <= drawn
    assert len(drawn) == 10, drawn

    # An ambient air station (ST 22) sending a water code: refused alone and in a batch (fast path).
    air = _Station(harness, client)
    air.accepted("env.reading", _reading(air.mn, "22", t0, {"a21026": "8"}))
    details = air.refused(
        "env.reading",
        _reading(air.mn, "22", t0 + timedelta(seconds=1), {"w01018": "99999"}),
        "POLLUTANT_CLASS_MISMATCH",
    )
    assert details == {"field": "pollutants", "code": "w01018", "st": "22", "family": "a"}
    readings = [
        _packet(air.mn, "22", start, {"a21026": "8"}),
        _packet(air.mn, "22", start + timedelta(seconds=1), {"w01018": "99999"}),
    ]
    details = air.refused(
        "env.batch",
        env_batch(readings, air.mn, start, start + timedelta(seconds=2)),
        "POLLUTANT_CLASS_MISMATCH",
    )
    assert (details["index"], details["code"]) == (1, "w01018")
