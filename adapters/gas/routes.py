"""The gas-network domain's reads (mounted under ``/api/v1`` by the gateway):

- ``GET /gas/loggers/{logger}/readings?since=&until=&after=&limit=``: a data logger's readings dated in
  [since, until), batch by batch in period order and within a batch in the order signed, each with its
  evidence bundle; ``next_cursor`` goes back as ``after``;
- ``GET /gas/loggers/{logger}/alarms?since=&until=&after=&limit=``: its alarms (``alarms.py``), each with
  its reading's bundle;
- ``GET /gas/batches/{record_id}/readings/{index}/bundle``: one reading's evidence bundle.

Whoever reads a batch's payload reads its readings (the utility, auditors, regulators); to anyone else they
do not exist (READING_NOT_FOUND, empty pages).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from adapters.abc import ReadContext, Route
from adapters.batch.reads import (
    PAGE_QUERY,
    ItemEntry,
    ItemRead,
    Query,
    alert_page,
    item_route,
    page_route,
    readings_route,
)
from adapters.gas.batch import SPEC


class GasReading(ItemRead):
    pass


class GasAlarm(ItemEntry):
    asset: str
    asset_class: str = Field(description="the asset's class: source | pipeline | meter")
    type: str = Field(description="leak | pressure_low | pressure_high | flow_high")
    quantity: str = Field(description="methane | pressure | flow")
    value: float = Field(description="the reading's value, in its unit")
    unit: str
    limit: float = Field(description="the threshold crossed, in the same unit")
    bundle: dict[str, Any] = Field(description="the reading's evidence bundle")


class GasReadingPage(BaseModel):
    logger: str
    items: list[GasReading]
    next_cursor: str | None = Field(description="pass as ?after= for the next page; null on the last page")


class GasAlarmPage(BaseModel):
    logger: str
    items: list[GasAlarm]
    next_cursor: str | None


logger_readings = readings_route(
    SPEC, "logger_readings", "A data logger's readings", GasReadingPage, GasReading
)


@page_route(SPEC, GasAlarmPage)
def logger_alarms(ctx: ReadContext, q: Query) -> tuple[list[GasAlarm], str | None]:
    """A data logger's alarms (leaks, pressures out of band, flows too high) dated in [since, until), each
    with its reading's evidence bundle, paginated like the readings."""
    return alert_page(ctx, q, GasAlarm)


def routes() -> tuple[Route, ...]:
    return (
        Route(
            "/gas/loggers/{logger}/readings", logger_readings, GasReadingPage, tags=("gas",), query=PAGE_QUERY
        ),
        Route("/gas/loggers/{logger}/alarms", logger_alarms, GasAlarmPage, tags=("gas",), query=PAGE_QUERY),
        item_route(SPEC, "gas"),
    )
