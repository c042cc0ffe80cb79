"""Single readings (``env.reading``) held to the guarantees of batched ones (docs/design/sensor-batches.md:
Single readings): a reading's (MN, CN, DataTime) is recorded once, whether alone or in a batch; it is not
dated inside or before the station's last batch period (periods only move forward), nor earlier than the
backdating window; its alerts and itself are served by the station's readings and alerts reads.

The readings of one second of a station are one state, ``batch:<MN>:<DataTime + 1 s>`` (the key a batch of
that second would have), each with its own record: the reads list them like a batch's. The station's state
keeps ``singles_until``, the second after its latest single reading, where its next batch may start.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from adapters._common import rfc3339_utc
from adapters.abc import RecordFacts, State, Step
from adapters.batch.errors import ReadingDuplicate
from adapters.batch.intake import recorded_end
from adapters.env.alerts import alerts_of
from adapters.env.batch import SPEC
from adapters.env.errors import ReadingOutOfOrder, ReadingTooOld, StationClassMismatch
from adapters.env.limits import Limits
from provenance.timestamps import parse_rfc3339


@functools.lru_cache(maxsize=4096)
def _second_after(at: str) -> str:
    # Kept: a reading's key is asked for by each step of the write path, and a fleet's readings share
    # their seconds (a bulk request of a thousand stations' readings: a few distinct ones).
    return rfc3339_utc(parse_rfc3339(at) + timedelta(seconds=1))


def single_keys(facts: Mapping[str, Any]) -> tuple[str, str]:
    """The states a single reading reads and writes: its station's and its second's."""
    return SPEC.source_key(facts["mn"]), SPEC.batch_key(facts["mn"], _second_after(facts["data_time"]))


def single_step(
    record: RecordFacts,
    states: Mapping[str, State | None],
    anchored_end: int,
    now: datetime,
    max_backdate: timedelta,
    limits: Limits,
) -> Step:
    """A single reading's rule (its station's registration is checked before): within the backdating
    window, not inside or before the station's last batch period, its (MN, CN, DataTime) new."""
    f = record.facts
    mn, cn, at = f["mn"], f["cn"], f["data_time"]
    station_key, key = single_keys(f)
    if parse_rfc3339(at) < now - max_backdate:
        raise ReadingTooOld(
            f"the reading is dated {at}, more than {int(max_backdate.total_seconds()) // 3600} h ago",
            details={
                "field": "DataTime",
                "data_time": at,
                "max_backdate_s": int(max_backdate.total_seconds()),
            },
        )
    station = states.get(station_key)
    last_end = recorded_end(station, anchored_end)
    if last_end is not None and at < last_end:
        raise ReadingOutOfOrder(
            f"the reading is dated {at}, inside or before the station's last batch period (to {last_end})",
            details={"field": "DataTime", "data_time": at, "last_period_end": last_end},
        )
    second = states.get(key)
    held: dict[str, Any] = (
        dict(second.data)
        if second is not None
        else {"single": True, "record": record.record_id, "period_start": at, "period_end": _second_after(at)}
    )
    cns: list[str] = list(held.get("cns", ()))
    records: list[str] = list(held.get("records", ()))
    if cn in cns:
        raise ReadingDuplicate(
            f"a reading of {mn} with CN {cn} dated {at} is recorded already ({SPEC.identity})",
            details={"identity": [cn, at], "record": records[cns.index(cn)]},
        )
    held |= {
        "records": [*records, record.record_id],
        "cns": [*cns, cn],
        "times": [*held.get("times", ()), at],
        "alerts": [*held.get("alerts", ()), *alerts_of(f, len(records), limits)],
    }
    data = dict(station.data) if station is not None else {}
    until = max(data.get("singles_until", ""), held["period_end"])
    return Step(
        writes={station_key: State("active", {**data, "singles_until": until}), key: State("accepted", held)}
    )


def with_class(step: Step, station: State | None, station_key: str, st: str | None) -> Step:
    """The station's class: the ST of its first recorded reading or batch, kept in its state; a later one of
    another ST is refused, so a station cannot choose per reading which limits (if any) hold it. (None: a
    batch whose readings the caller does not have.)"""
    if st is None:
        return step
    data = station.data if station is not None else {}
    pinned = data.get("st")
    if pinned is not None and pinned != st:
        raise StationClassMismatch(
            f"the station's class (HJ 212 ST) is {pinned}, not {st}",
            details={"field": "ST", "value": st, "station_st": pinned},
        )
    written = step.writes.get(station_key)
    if written is None or written.data.get("st") == st:
        return step
    return Step(
        prior=step.prior,
        writes={**step.writes, station_key: State(written.status, {**written.data, "st": st})},
    )
