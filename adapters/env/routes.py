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

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from adapters.abc import ReadContext, Route
from adapters.batch.reads import (
    PAGE_QUERY,
    BundleDocument,
    Query,
    alert_page,
    alerts_of,
    item_page,
    one_item,
)
from adapters.env.batch import SPEC


class Reading(BaseModel):
    batch: str = Field(description="the env.batch record id (a single reading: its env.reading record id)")
    index: int = Field(description="the reading's place in its batch")
    data_time: str = Field(description="DataTime in UTC")
    reading: dict[str, Any] = Field(description="the reading, as signed (an env.reading payload)")
    bundle: dict[str, Any] = Field(description="its evidence bundle (docs/formats.md, Batch items)")


class Alert(BaseModel):
    batch: str = Field(description="the env.batch record id")
    index: int = Field(description="the reading's place in its batch")
    data_time: str = Field(description="the reading's DataTime in UTC")
    type: str = Field(description="exceedance (over the station class's limit) | flag (data flag not N)")
    code: str = Field(description="the HJ 212 pollutant code")
    value: float | None = None
    limit: float | None = None
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


def station_readings(
    ctx: ReadContext,
    mn: str,
    since: str | None = None,
    until: str | None = None,
    after: str | None = None,
    limit: str | None = None,
) -> ReadingPage:
    """A station's batch readings dated in [since, until) (RFC 3339 UTC, whole seconds), each with its
    evidence bundle, paginated (``after``: the previous page's ``next_cursor``; ``limit`` ≤ 100)."""

    items, cursor = item_page(ctx, Query.of(SPEC, mn, since, until, after, limit), Reading)
    return ReadingPage(mn=mn, items=items, next_cursor=cursor)


def station_alerts(
    ctx: ReadContext,
    mn: str,
    since: str | None = None,
    until: str | None = None,
    after: str | None = None,
    limit: str | None = None,
    *,
    only: str | None = None,
) -> AlertPage:
    """A station's alerts (readings over their station class's limits, data flags other than N) dated in
    [since, until), each with the evidence bundle of its reading, paginated like the readings (``only``:
    alerts of that type alone, for the dashboard's panel)."""

    def entries(data: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        found = alerts_of(data)
        return found if only is None else [x for x in found if x["type"] == only]

    items, cursor = alert_page(ctx, Query.of(SPEC, mn, since, until, after, limit), Alert, entries)
    return AlertPage(mn=mn, items=items, next_cursor=cursor)


def batch_reading(ctx: ReadContext, record_id: str, index: str) -> dict[str, Any]:
    """One reading's evidence bundle: its batch record's, plus the reading and its proof (``item``)."""
    return one_item(SPEC, ctx, record_id, index)


def routes() -> tuple[Route, ...]:
    return (
        Route("/env/stations/{mn}/readings", station_readings, ReadingPage, tags=("env",), query=PAGE_QUERY),
        Route("/env/stations/{mn}/alerts", station_alerts, AlertPage, tags=("env",), query=PAGE_QUERY),
        Route(
            "/env/batches/{record_id}/readings/{index}/bundle",
            batch_reading,  # type: ignore[arg-type]
            BundleDocument,
            tags=("env",),
        ),
    )
