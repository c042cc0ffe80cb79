"""A fleet of monitoring stations for the throughput benchmarks (``bench/gateway.py``, ``bench/scale.py``).

Why readings of many stations: ``env.reading`` is what a deployment submits in volume, but a single reading
is held to the batch guarantees (docs/design/sensor-batches.md, "Single readings"): (MN, CN, DataTime) once
per station, no reading older than 72 h, and one station's readings serialised through its state. A
million readings of one station within 72 h do not exist, and a bulk of one station's readings is written
one transaction per item (what it measures is the station's lock). A real network has hundreds to
thousands of stations, each reporting every half minute or so, their packets forwarded in bulk by a data
platform. So station-1 operates ``STATIONS`` registered stations (an operations company running a
district's stations: one SM2 key, as before), and the records are laid out so that no bulk request names a
station twice and the client's connections name disjoint stations: each bulk is one write transaction, as
a bulk of readings was before, and the figures are the gateway's record path plus the reading's own rule
(two state rows per record). The other record kinds are no fit: every one but ``env.reading`` makes a
contract call per record (a ``party.record`` meeting takes no state but is a ``PartyRecords.addRecord``
transaction each), which would measure the chain, and the others hold per-subject workflow states too.

The traced subject is the first station, ``station:<STATION_1_MN>``: 1/``STATIONS`` of the records, spread
evenly over the log (10,000 at 10 M).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from devnet.deploy import demo_orgs
from devnet.governance import OrgSpec
from tests.kit.gateway import STATION_1_MN, hj212_series

STATIONS = 1000  # >= lanes x bulk size: no bulk request names a station twice
WINDOW = timedelta(hours=70)  # the readings' dates, inside the 72 h a single reading may be backdated
MAX_SPACING = 60  # seconds between a station's readings at most (HJ 212 real-time data: 30 s to a minute)


def mns(n: int = STATIONS) -> list[str]:
    """The fleet's MNs: station-1's own first (the traced subject), then ``n - 1`` more."""
    return [STATION_1_MN, *(f"44030020261125FL{i:04d}" for i in range(1, n))]


def fleet_orgs(n: int = STATIONS) -> list[OrgSpec]:
    """The demo organisations, station-1 operating the ``n`` stations of :func:`mns`."""
    return [dataclasses.replace(o, stations=tuple(mns(n))) if o.id == "station-1" else o for o in demo_orgs()]


class Layout:
    """Where record ``r`` of a phase goes: its station and DataTime. A phase's records are sent in requests
    of ``bulk`` (1: single submissions) over ``lanes`` connections, request ``j`` on connection ``j % lanes``
    (as ``bench/load.py`` deals them); each connection has its own ``stations // lanes`` stations and fills
    them round-robin, one tick (a reading of each) after another, from the phase's ``tick0`` (past the
    earlier phases' ticks). ``ticks`` (the most a run needs) sets the spacing: the run's readings fit in
    :data:`WINDOW`, which starts 71 h before ``now``, so a run may take hours and its last readings are
    still within 72 h when sent."""

    def __init__(self, ticks: int, *, stations: int = STATIONS, now: datetime | None = None) -> None:
        self.stations, self.mns = stations, mns(stations)
        self.spacing = max(1, min(MAX_SPACING, int(WINDOW.total_seconds()) // max(1, ticks)))
        if ticks * self.spacing > WINDOW.total_seconds():
            raise ValueError(f"{ticks:,} readings per station do not fit in {WINDOW}: more stations")
        self.start = (now or datetime.now(UTC)).replace(microsecond=0) - WINDOW - timedelta(hours=1)

    @staticmethod
    def ticks_for(records: int, *, bulk: int, lanes: int, stations: int = STATIONS) -> int:
        """The ticks a phase of ``records`` needs: each connection's share, one tick per round of stations."""
        return (records // lanes + bulk) // (stations // lanes) + 1

    def slot(self, r: int, *, bulk: int, lanes: int, tick0: int = 0) -> tuple[str, datetime]:
        """Record ``r``'s station (MN) and DataTime."""
        per_lane = self.stations // lanes
        j, k = divmod(r, bulk)
        n = j // lanes * bulk + k  # the connection's own record number
        at = self.start + (tick0 + n // per_lane) * timedelta(seconds=self.spacing)
        return self.mns[j % lanes * per_lane + n % per_lane], at

    def packets(self, start: int, end: int, *, bulk: int, lanes: int, tick0: int = 0) -> list[str]:
        """HJ 212 packets of a phase's records [start, end)."""
        slots = (self.slot(r, bulk=bulk, lanes=lanes, tick0=tick0) for r in range(start, end))
        return [hj212_series(mn, at, 1)[0] for mn, at in slots]
