"""The environmental-monitoring domain's reads (mounted under ``/api/v1`` by the gateway):

- ``GET /env/stations/{mn}/readings?since=&until=&after=&limit=``: a station's batch readings dated in
  [since, until), batch by batch in period order and within a batch in the order signed, each with its
  evidence bundle; ``next_cursor`` (``<period_end>/<index>``) goes back as ``after``;
- ``GET /env/batches/{record_id}/readings/{index}/bundle``: one reading's evidence bundle;
- ``GET /env/stations/{mn}/alerts?since=&until=&after=&limit=``: the station's alerts (``alerts.py``), each
  with its reading's bundle.

A reading's bundle is its batch record's bundle plus ``item`` (``adapters.batch.reads``). Whoever reads a
batch's payload reads its readings (the station, the environment bureau, auditors and regulators); to anyone
else a batch's readings do not exist (READING_NOT_FOUND).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from adapters.abc import ReadContext, Route
from adapters.batch.reads import (
    PAGE_QUERY,
    ItemEntry,
    ItemRead,
    Query,
    alert_page,
    alerts_of,
    item_route,
    page_route,
    readings_route,
)
from adapters.env.batch import SPEC


class Reading(ItemRead):
    reading: dict[str, Any] = Field(description="the reading, as signed (an env.reading payload)")


class Alert(ItemEntry):
    type: str = Field(description="exceedance (outside the station class's limit) | flag (data flag not N)")
    code: str = Field(description="the HJ 212 pollutant code")
    value: float | None = None
    limit: float | None = Field(default=None, description="the limit the value is beyond")
    bound: str | None = Field(
        default=None, description="max (over a maximum) | min (under a minimum: DO, pH): the limit's side"
    )
    averaging: str | None = Field(default=None, description="hour | day: the limit's averaging time")
    flag: str | None = None
    bundle: dict[str, Any] = Field(description="the reading's evidence bundle")


class AlertPage(BaseModel):
    mn: str
    items: list[Alert]
    next_cursor: str | None


class ReadingPage(BaseModel):
    mn: str
    items: list[Reading]
    next_cursor: str | None = Field(description="pass as ?after= for the next page; null on the last page")


station_readings = readings_route(
    SPEC, "station_readings", "A station's batch readings", ReadingPage, Reading
)


def _alerts(only: str | None) -> Callable[[Mapping[str, Any]], Sequence[Mapping[str, Any]]]:
    """A batch's alerts (``only``: of that type alone, for the dashboard's panel)."""
    return lambda data: [x for x in alerts_of(data) if only is None or x["type"] == only]


@page_route(SPEC, AlertPage)
def station_alerts(ctx: ReadContext, q: Query) -> tuple[list[Alert], str | None]:
    """A station's alerts (readings outside their station class's limits, data flags other than N) dated in
    [since, until), each with the evidence bundle of its reading, paginated like the readings."""
    return alert_page(ctx, q, Alert, _alerts(None))


@page_route(SPEC, AlertPage)
def station_exceedances(ctx: ReadContext, q: Query) -> tuple[list[Alert], str | None]:
    """A station's exceedances alone (the dashboard's panel), paginated like its alerts."""
    return alert_page(ctx, q, Alert, _alerts("exceedance"))


def routes() -> tuple[Route, ...]:
    return (
        Route("/env/stations/{mn}/readings", station_readings, ReadingPage, tags=("env",), query=PAGE_QUERY),
        Route("/env/stations/{mn}/alerts", station_alerts, AlertPage, tags=("env",), query=PAGE_QUERY),
        item_route(SPEC, "env"),
    )
