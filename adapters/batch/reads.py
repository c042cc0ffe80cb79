"""Batches on the read path: a source's items (or alerts) in a time range, paginated, each with its evidence
bundle; one item's bundle.

An item's bundle is its batch record's bundle (the head as payload) plus ``item``: the item and its
inclusion proof in the head's root (``docs/formats.md``, Batch items). Whoever reads a batch's payload
reads its items; to anyone else a batch's items do not exist (READING_NOT_FOUND).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from adapters.abc import ReadContext, Route, State
from adapters.batch.errors import ReadingNotFound
from adapters.batch.spec import BatchSpec
from adapters.errors import QueryInvalid
from provenance.log.merkle import leaf_hash, root_and_inclusion_proofs

MAX_PAGE = 100
DEFAULT_PAGE = 50
PAGE_QUERY = ("since", "until", "after", "limit")  # a page route's ``Route.query``
_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_LIMIT = re.compile(r"[0-9]{1,3}")
_RECORD_ID = re.compile(r"[0-9a-f]{64}")
_CURSOR = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)/([0-9]{1,9})")
T = TypeVar("T")
P = TypeVar("P", bound=BaseModel)


class BundleDocument(BaseModel):
    """An evidence bundle (docs/formats.md), as a JSON object."""

    model_config = {"extra": "allow"}


class ItemEntry(BaseModel):
    """What a page says of each entry: the item it is about (a domain's readings and alerts add theirs)."""

    batch: str = Field(description="the batch record id (a single reading: its own record id)")
    index: int = Field(description="the reading's place in its batch")
    data_time: str = Field(description="the reading's time (UTC)")


class ItemRead(ItemEntry):
    """A readings page's entry: the reading as signed, with its evidence bundle."""

    reading: dict[str, Any] = Field(description="the reading, as signed")
    bundle: dict[str, Any] = Field(description="its evidence bundle (docs/formats.md, Batch items)")


@lru_cache(maxsize=4)
def _proofs(root: str, leaves: tuple[str, ...]) -> list[list[bytes]]:
    """Every item's inclusion proof in a batch (kept for the few batches read last)."""
    computed, proofs = root_and_inclusion_proofs([leaf_hash(x.encode("utf-8")) for x in leaves])
    if computed.hex() != root:  # the stored items are the ones the root was checked against
        raise ReadingNotFound(
            "the stored readings no longer match their batch's root", details={"root": root}
        )
    return proofs


def batch_anchor(ctx: ReadContext, record_id: str, root: str) -> dict[str, Any] | None:
    """Where the domain contract's ``anchorBatch`` anchored the batch's root (a bundle's ``batch_anchor``),
    once confirmed."""
    place = ctx.contract_anchor(record_id)
    return None if place is None else {**place, "root": "0x" + root}


def item_bundle(
    batch: Mapping[str, Any], state: State, index: int, anchor: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The evidence bundle of item ``index`` of the batch whose own bundle is ``batch`` (with its root's
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
        raise QueryInvalid(
            f"{name} must be an RFC 3339 UTC instant in whole seconds, like 2026-11-25T08:00:00Z",
            details={"field": name, "value": value[:80]},
        )
    return value


@dataclass(frozen=True, slots=True)
class Query:
    """A checked page query of one source's batches."""

    source: str
    since: str | None
    until: str | None
    start: str  # the first state key to read
    resume: tuple[str, int] | None  # the batch key a cursor resumes in, and where in it
    size: int

    @classmethod
    def of(
        cls,
        spec: BatchSpec,
        source: str,
        since: str | None,
        until: str | None,
        after: str | None,
        limit: str | None,
    ) -> Query:
        if not spec.source_pattern.fullmatch(source):
            raise QueryInvalid(f"{spec.source} must be {spec.source_hint}", details={"field": spec.source})
        since, until = _instant(since, "since"), _instant(until, "until")
        size = DEFAULT_PAGE if limit is None else int(limit) if _LIMIT.fullmatch(limit) else 0
        if not 1 <= size <= MAX_PAGE:
            raise QueryInvalid(f"limit must be 1 to {MAX_PAGE}", details={"field": "limit"})
        # Batch keys are batch:<source>:<period_end>; periods never overlap, so key order is time order.
        start = spec.batch_key(source, since or "")
        resume: tuple[str, int] | None = None
        if after is not None:
            m = _CURSOR.fullmatch(after)
            if m is None:
                raise QueryInvalid("after must be a next_cursor of this query", details={"field": "after"})
            resume = (spec.batch_key(source, m[1]), int(m[2]) + 1)
            start = resume[0]
        return cls(source, since, until, start, resume, size)

    def within(self, at: str) -> bool:
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch a page reads: its state, its record's own bundle (the head as payload), where to go on."""

    state: State
    bundle: Mapping[str, Any]
    first: int  # where a resumed page goes on in this batch (0: from its start)
    anchor: Mapping[str, Any] | None  # its root's anchor in the domain's contract, once confirmed
    # Single readings of one second (``adapters.env.single``) in place of a batch: each its record's bundle.
    singles: Sequence[Mapping[str, Any]] = ()

    @property
    def record(self) -> str:
        return str(self.state.data["record"])

    def record_at(self, index: int) -> str:
        """The record of item ``index``: the batch's, or the single reading's own."""
        return str(self.state.data["records"][index]) if self.singles else self.record

    def item(self, index: int) -> dict[str, Any]:
        if self.singles:
            return dict(self.singles[index])  # the reading is its record's payload: no inclusion proof
        return item_bundle(self.bundle, self.state, index, self.anchor)


def _batches(ctx: ReadContext, q: Query) -> Iterator[Batch]:
    """The source's batches whose period meets [since, until), in time order, that the reader may read."""
    start, end = q.start, f"batch:{q.source};"  # ";" follows ":": past this source's last key
    while True:
        found = ctx.states(start, end, 1)
        if not found:
            return
        key, state = found[0]
        data = state.data
        start = key + "~"  # the smallest key after this one ("~" sorts after every character of a key)
        if q.since is not None and data["period_end"] <= q.since:
            continue
        if q.until is not None and data["period_start"] >= q.until:
            return
        first = q.resume[1] if q.resume is not None and q.resume[0] == key else 0
        if "records" in data:  # single readings of one second
            bundles = [ctx.bundle(r) for r in data["records"]]
            singles = [b for b in bundles if b is not None]
            if len(singles) == len(bundles):  # else records this reader may not read
                yield Batch(state, singles[0], first, None, singles)
            continue
        bundle = ctx.bundle(data["record"])
        if bundle is None:
            continue  # a batch this reader may not read: its items do not exist for it
        yield Batch(state, bundle, first, batch_anchor(ctx, data["record"], data["root"]))


def page(
    ctx: ReadContext,
    q: Query,
    entries: Callable[[Mapping[str, Any]], Sequence[Mapping[str, Any]]],
    make: Callable[[Batch, Mapping[str, Any]], T],
) -> tuple[list[T], str | None]:
    """A page of the entries (``entries(state.data)``: each with its ``data_time``) of the source's batches
    dated in the query's range, ``make`` building each; and the next page's cursor (None: the last)."""
    items: list[T] = []
    cursor = None
    for batch in _batches(ctx, q):
        data = batch.state.data
        found = entries(data)
        for n in range(batch.first, len(found)):
            entry = found[n]
            if not q.within(entry["data_time"]):
                continue
            if len(items) == q.size:
                return items, cursor
            items.append(make(batch, entry))
            cursor = f"{data['period_end']}/{n}"
    return items, None


def item_page(ctx: ReadContext, q: Query, model: Callable[..., T]) -> tuple[list[T], str | None]:
    """A page of the source's items, each ``model(batch=, index=, data_time=, reading=, bundle=)``: the
    item as signed and its evidence bundle."""

    def make(batch: Batch, entry: Mapping[str, Any]) -> T:
        b = batch.item(entry["index"])
        document = b["item"]["document"] if "item" in b else b["payload"]
        return model(batch=batch.record_at(entry["index"]), **entry, reading=document, bundle=b)

    return page(ctx, q, readings_of, make)


def alert_page(
    ctx: ReadContext,
    q: Query,
    model: Callable[..., T],
    entries: Callable[[Mapping[str, Any]], Sequence[Mapping[str, Any]]] | None = None,
) -> tuple[list[T], str | None]:
    """A page of the source's alerts (``entries``, default all), each ``model(batch=, <the alert>,
    bundle=)`` with its item's evidence bundle."""

    def make(batch: Batch, entry: Mapping[str, Any]) -> T:
        return model(batch=batch.record_at(entry["index"]), **entry, bundle=batch.item(entry["index"]))

    return page(ctx, q, entries or alerts_of, make)


Fill = Callable[[ReadContext, "Query"], tuple[list[Any], str | None]]
# What a readings route says of itself after what it reads ("A station's batch readings").
READINGS_DOC = (
    "dated in [since, until) (RFC 3339 UTC, whole seconds), each with its\n"
    "evidence bundle, paginated (``after``: the previous page's ``next_cursor``; ``limit`` ≤ 100)."
)


def page_route(spec: BatchSpec, model: Callable[..., P]) -> Callable[[Fill], Callable[..., P]]:
    """Makes ``fill(ctx, query)`` (what a page holds) the handler of a page route
    ``…/{<spec.source>}/…?since=&until=&after=&limit=``, named and described as ``fill``: it checks the
    query and returns ``model(<spec.source>=, items=, next_cursor=)``."""

    def route(fill: Fill) -> Callable[..., P]:
        def handler(
            ctx: ReadContext,
            since: str | None = None,
            until: str | None = None,
            after: str | None = None,
            limit: str | None = None,
            **path: str,
        ) -> P:
            source = path[spec.source]
            items, cursor = fill(ctx, Query.of(spec, source, since, until, after, limit))
            return model(**{spec.source: source}, items=items, next_cursor=cursor)

        # The route's name and description in the API are the handler's.
        handler.__name__, handler.__qualname__, handler.__doc__ = fill.__name__, fill.__name__, fill.__doc__
        return handler

    return route


def readings_route(
    spec: BatchSpec, name: str, what: str, model: Callable[..., P], item: Callable[..., Any]
) -> Callable[..., P]:
    """The handler ``name`` of a source's readings (``what``: "A station's batch readings"), each
    ``item(...)`` (``item_page``), in pages ``model``."""

    def fill(ctx: ReadContext, q: Query) -> tuple[list[Any], str | None]:
        return item_page(ctx, q, item)

    fill.__name__, fill.__doc__ = name, f"{what} {READINGS_DOC}"
    return page_route(spec, model)(fill)


def item_route(spec: BatchSpec, domain: str) -> Route:
    """``GET /<domain>/batches/{record_id}/readings/{index}/bundle``: one item's evidence bundle."""

    def batch_reading(ctx: ReadContext, record_id: str, index: str) -> dict[str, Any]:
        """One reading's evidence bundle: its batch record's, plus the reading and its proof (``item``)."""
        return one_item(spec, ctx, record_id, index)

    return Route(
        f"/{domain}/batches/{{record_id}}/readings/{{index}}/bundle",
        batch_reading,  # type: ignore[arg-type]
        BundleDocument,
        tags=(domain,),
    )


def readings_of(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A batch's items as page entries: each its ``index`` and ``data_time``."""
    return [{"index": i, "data_time": t} for i, t in enumerate(data["times"])]


def alerts_of(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A batch's alerts as page entries (each names its item's ``index`` and ``data_time``)."""
    found: list[Mapping[str, Any]] = data.get("alerts", [])
    return found


def one_item(spec: BatchSpec, ctx: ReadContext, record_id: str, index: str) -> dict[str, Any]:
    """One item's evidence bundle: its batch record's, plus the item and its proof (``item``)."""
    batch = ctx.bundle(record_id) if _RECORD_ID.fullmatch(record_id) else None
    head = batch.get("payload") if batch is not None else None
    if batch is None or not isinstance(head, dict) or batch["record"]["kind"] != spec.kind:
        raise ReadingNotFound(f"no batch {record_id[:80]} for this reader", details={"batch": record_id[:80]})
    state = ctx.state(spec.batch_key(head[spec.source], head["period_end"]))
    if not index.isdigit() or state is None or int(index) >= len(state.data["readings"]):
        raise ReadingNotFound(
            f"batch {record_id} has no reading {index[:20]}",
            details={"batch": record_id, "index": index[:20]},
        )
    return item_bundle(batch, state, int(index), batch_anchor(ctx, record_id, state.data["root"]))
