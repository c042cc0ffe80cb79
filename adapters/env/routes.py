"""The environmental-monitoring domain's reads (mounted under ``/api/v1`` by the gateway):

- ``GET /env/stations/{mn}/readings?since=&until=&after=&limit=``: a station's batch readings dated in
  [since, until), batch by batch in period order and within a batch in the order signed, each with its
  evidence bundle; ``next_cursor`` (``<period_end>/<index>``) goes back as ``after``;
- ``GET /env/batches/{record_id}/readings/{index}/bundle``: one reading's evidence bundle;
- ``GET /env/stations/{mn}/alerts?since=&until=&after=&limit=``: the station's alerts (``alerts.py``), each
  with its reading's bundle.

A reading's bundle is its batch record's bundle (the head as payload) plus ``item``: the reading and its
inclusion proof in the head's root (``docs/formats.md``, Batch items). Whoever reads a batch's payload
reads its readings (the station, the environment bureau, auditors and regulators); to anyone else a batch's
readings do not exist (READING_NOT_FOUND).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field

from adapters.abc import ReadContext, Route, State
from adapters.env.errors import ReadingNotFound, ReadingQueryInvalid
from provenance.log.merkle import leaf_hash, root_and_inclusion_proofs

MAX_PAGE = 100
DEFAULT_PAGE = 50
_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_MN = re.compile(r"[A-Za-z0-9]{1,24}")  # HJ 212-2017 MN (adapters.hj212)
_LIMIT = re.compile(r"[0-9]{1,3}")
_RECORD_ID = re.compile(r"[0-9a-f]{64}")
_CURSOR = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)/([0-9]{1,9})")


class Reading(BaseModel):
    batch: str = Field(description="the env.batch record id")
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


@lru_cache(maxsize=4)
def _proofs(root: str, leaves: tuple[str, ...]) -> list[list[bytes]]:
    """Every reading's inclusion proof in a batch (kept for the few batches read last)."""
    computed, proofs = root_and_inclusion_proofs([leaf_hash(x.encode("utf-8")) for x in leaves])
    if computed.hex() != root:  # the stored readings are the ones the root was checked against
        raise ReadingNotFound(
            "the stored readings no longer match their batch's root", details={"root": root}
        )
    return proofs


def batch_anchor(ctx: ReadContext, record_id: str, root: str) -> dict[str, Any] | None:
    """Where EnvMonitoring.anchorBatch anchored the batch's root (a bundle's ``batch_anchor``), once
    confirmed."""
    place = ctx.contract_anchor(record_id)
    return None if place is None else {**place, "root": "0x" + root}


def reading_bundle(
    batch: Mapping[str, Any], state: State, index: int, anchor: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The evidence bundle of reading ``index`` of the batch whose own bundle is ``batch`` (with its root's
    ``anchor`` on chain when there is one)."""
    readings: list[str] = state.data["readings"]
    proof = _proofs(state.data["root"], tuple(readings))[index]
    item = {
        "index": index,
        "count": len(readings),
        "document": json.loads(readings[index]),
        "inclusion_proof": [base64.b64encode(h).decode("ascii") for h in proof],
    }
    return {**batch, "item": item} | ({"batch_anchor": dict(anchor)} if anchor is not None else {})


def _instant(value: str | None, name: str) -> str | None:
    if value is not None and not _INSTANT.fullmatch(value):
        raise ReadingQueryInvalid(
            f"{name} must be an RFC 3339 UTC instant in whole seconds, like 2026-11-25T08:00:00Z",
            details={"field": name, "value": value[:80]},
        )
    return value


@dataclass(frozen=True, slots=True)
class _Batch:
    key: str
    state: State
    bundle: Mapping[str, Any]  # the batch record's own bundle (the head as payload)
    first: int  # where a resumed page goes on in this batch (0: from its start)
    anchor: Mapping[str, Any] | None  # its root's anchor in EnvMonitoring, once confirmed


def _query(
    mn: str, since: str | None, until: str | None, after: str | None, limit: str | None
) -> tuple[str | None, str | None, str, tuple[str, int] | None, int]:
    """The checked query: its bounds, the first key to read, where a cursor resumes and the page's size."""
    if not _MN.fullmatch(mn):
        raise ReadingQueryInvalid(
            "mn must be an HJ 212 MN (1 to 24 letters and digits)", details={"field": "mn"}
        )
    since, until = _instant(since, "since"), _instant(until, "until")
    size = DEFAULT_PAGE if limit is None else int(limit) if _LIMIT.fullmatch(limit) else 0
    if not 1 <= size <= MAX_PAGE:
        raise ReadingQueryInvalid(f"limit must be 1 to {MAX_PAGE}", details={"field": "limit"})
    # Batch keys are batch:<MN>:<period_end>; periods never overlap, so key order is time order.
    start = f"batch:{mn}:{since or ''}"
    resume: tuple[str, int] | None = None
    if after is not None:
        m = _CURSOR.fullmatch(after)
        if m is None:
            raise ReadingQueryInvalid("after must be a next_cursor of this query", details={"field": "after"})
        resume = (f"batch:{mn}:{m[1]}", int(m[2]) + 1)
        start = resume[0]
    return since, until, start, resume, size


def _batches(
    ctx: ReadContext,
    mn: str,
    since: str | None,
    until: str | None,
    start: str,
    resume: tuple[str, int] | None,
) -> Iterator[_Batch]:
    """The station's batches whose period meets [since, until), in time order, that the reader may read."""
    end = f"batch:{mn};"  # ";" follows ":": past this station's last key
    while True:
        found = ctx.states(start, end, 1)
        if not found:
            return
        key, state = found[0]
        data = state.data
        start = key + "~"  # the smallest key after this one ("~" sorts after every character of a key)
        if since is not None and data["period_end"] <= since:
            continue
        if until is not None and data["period_start"] >= until:
            return
        bundle = ctx.bundle(data["record"])
        if bundle is None:
            continue  # a batch this reader may not read: its readings do not exist for it
        first = resume[1] if resume is not None and resume[0] == key else 0
        yield _Batch(key, state, bundle, first, batch_anchor(ctx, data["record"], data["root"]))


def _within(at: str, since: str | None, until: str | None) -> bool:
    return (since is None or at >= since) and (until is None or at < until)


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
    since, until, start, resume, size = _query(mn, since, until, after, limit)
    items: list[Reading] = []
    cursor = None
    for batch in _batches(ctx, mn, since, until, start, resume):
        data = batch.state.data
        times: list[str] = data["times"]
        for i in range(batch.first, len(times)):
            if not _within(times[i], since, until):
                continue
            if len(items) == size:
                return ReadingPage(mn=mn, items=items, next_cursor=cursor)
            b = reading_bundle(batch.bundle, batch.state, i, batch.anchor)
            items.append(
                Reading(
                    batch=data["record"], index=i, data_time=times[i], reading=b["item"]["document"], bundle=b
                )
            )
            cursor = f"{data['period_end']}/{i}"
    return ReadingPage(mn=mn, items=items, next_cursor=None)


def station_alerts(
    ctx: ReadContext,
    mn: str,
    since: str | None = None,
    until: str | None = None,
    after: str | None = None,
    limit: str | None = None,
) -> AlertPage:
    """A station's alerts (readings over their station class's limits, data flags other than N) dated in
    [since, until), each with the evidence bundle of its reading, paginated like the readings."""
    since, until, start, resume, size = _query(mn, since, until, after, limit)
    items: list[Alert] = []
    cursor = None
    for batch in _batches(ctx, mn, since, until, start, resume):
        data = batch.state.data
        found: list[dict[str, Any]] = data.get("alerts", [])
        for n in range(batch.first, len(found)):
            alert = found[n]
            if not _within(alert["data_time"], since, until):
                continue
            if len(items) == size:
                return AlertPage(mn=mn, items=items, next_cursor=cursor)
            b = reading_bundle(batch.bundle, batch.state, alert["index"], batch.anchor)
            items.append(Alert(batch=data["record"], **alert, bundle=b))
            cursor = f"{data['period_end']}/{n}"
    return AlertPage(mn=mn, items=items, next_cursor=None)


def batch_reading(ctx: ReadContext, record_id: str, index: str) -> dict[str, Any]:
    """One reading's evidence bundle: its batch record's, plus the reading and its proof (``item``)."""
    batch = ctx.bundle(record_id) if _RECORD_ID.fullmatch(record_id) else None
    head = batch.get("payload") if batch is not None else None
    if batch is None or not isinstance(head, dict) or batch["record"]["kind"] != "env.batch":
        raise ReadingNotFound(f"no batch {record_id[:80]} for this reader", details={"batch": record_id[:80]})
    state = ctx.state(f"batch:{head['mn']}:{head['period_end']}")  # workflow.batch_key
    if not index.isdigit() or state is None or int(index) >= len(state.data["readings"]):
        raise ReadingNotFound(
            f"batch {record_id} has no reading {index[:20]}",
            details={"batch": record_id, "index": index[:20]},
        )
    return reading_bundle(batch, state, int(index), batch_anchor(ctx, record_id, state.data["root"]))


class BundleDocument(BaseModel):
    """An evidence bundle (docs/formats.md), as a JSON object."""

    model_config = {"extra": "allow"}


_PAGE_QUERY = ("since", "until", "after", "limit")


def routes() -> tuple[Route, ...]:
    return (
        Route("/env/stations/{mn}/readings", station_readings, ReadingPage, tags=("env",), query=_PAGE_QUERY),
        Route("/env/stations/{mn}/alerts", station_alerts, AlertPage, tags=("env",), query=_PAGE_QUERY),
        Route(
            "/env/batches/{record_id}/readings/{index}/bundle",
            batch_reading,  # type: ignore[arg-type]
            BundleDocument,
            tags=("env",),
        ),
    )
