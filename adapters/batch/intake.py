"""Batches on the write path: the adapter's checks of a submission (head, period, size, each item, root),
the rule that moves a source's period forward and keeps the items, and the anchor call."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters._common import adapted, load_json_object, rfc3339_utc
from adapters.abc import AdaptContext, AdaptedPayload, ChainView, ContractCall, RecordFacts, State, Step
from adapters.batch.errors import (
    BatchPeriodInFuture,
    BatchPeriodInvalid,
    BatchPeriodOverlap,
    BatchRootMismatch,
    BatchTooLarge,
    ReadingDuplicate,
    ReadingOutOfPeriod,
)
from adapters.batch.spec import BatchSpec, Item
from adapters.errors import PayloadInvalid
from provenance.chain.contracts import ContractReverted, chain_key
from provenance.log.merkle import items_root
from provenance.timestamps import parse_rfc3339

MAX_BATCH = 10_000  # items per batch unless the workflow is built with another bound
# The anchoring contracts' MAX_CLOCK_LEAD: how far past the chain's clock a batch period may end.
MAX_CLOCK_LEAD = timedelta(hours=1)
_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")

# The Merkle root of items' canonical bytes (what a source signs through the head's ``root``).
batch_root = items_root

# How a domain checks item ``index`` of a batch with this head (raising its error, naming the index).
ItemCheck = Callable[[Any, int, Mapping[str, Any]], Item]


def _instant(head: Mapping[str, Any], name: str) -> datetime:
    value = head.get(name)
    if not isinstance(value, str) or not _SECOND.fullmatch(value):
        raise BatchPeriodInvalid(
            f"{name} must be an RFC 3339 UTC instant in whole seconds, like 2026-11-25T08:00:00Z",
            details={"field": name},
        )
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise BatchPeriodInvalid(f"{name} is not a valid instant", details={"field": name}) from exc


def _head(spec: BatchSpec, obj: Mapping[str, Any]) -> dict[str, Any]:
    members = spec.head_members
    extra = sorted(set(obj) - {*members, "readings"})
    missing = [k for k in members if k not in obj]
    if extra or missing:
        field = (extra or missing)[0]
        why = "unknown member" if extra else "missing member"
        raise PayloadInvalid(f"batch: {why} {field}", details={"field": field})
    head = {k: obj[k] for k in members}
    if not isinstance(head[spec.source], str) or not spec.source_pattern.fullmatch(head[spec.source]):
        raise PayloadInvalid(
            f"batch: {spec.source} must be {spec.source_hint}", details={"field": spec.source}
        )
    if type(head["count"]) is not int or head["count"] < 1:
        raise PayloadInvalid("batch: count must be a positive integer", details={"field": "count"})
    if not isinstance(head["root"], str) or not _HEX64.fullmatch(head["root"]):
        raise PayloadInvalid("batch: root must be 64 lowercase hex", details={"field": "root"})
    return head


def _submission(payload: object) -> dict[str, Any]:
    """The submission as a plain JSON object (``load_json_object``). A mapping's readings that are all ASCII
    text (HJ 212 packets: the usual batch) are taken as they are, not written as canonical JSON and read back
    with the rest: such a string is JSON already and would come back unchanged (3 MB of them a batch)."""
    if isinstance(payload, Mapping):
        readings = payload.get("readings")
        if type(readings) is list and all(type(r) is str and r.isascii() for r in readings):
            obj = load_json_object({k: v for k, v in payload.items() if k != "readings"})
            obj["readings"] = list(readings)
            return obj
    return load_json_object(payload)


def adapt_batch(
    spec: BatchSpec,
    payload: object,
    max_batch: int,
    check: ItemCheck,
    *,
    prepare: Callable[[list[Any]], None] | None = None,
    ctx: AdaptContext | None = None,
) -> AdaptedPayload:
    """A batch submission ``{<head>, readings}`` checked whole: the head, the period, the bound, every item
    (``check``), that none repeats another or lies outside the period, and that they hash to the root. The
    items go to the rules as the ``detail`` (``readings``, ``times``, ``alerts``), never into the facts.
    ``prepare``: what the domain does with all the items once the head and bound passed, before the first
    ``check`` (env: its one-pass forms of the readings). ``ctx.now``: the period may end no later than it
    plus ``ctx.max_clock_skew``.
    """
    obj = _submission(payload)
    readings = obj.get("readings")
    if not isinstance(readings, list) or not readings:
        raise PayloadInvalid("batch: readings must be a non-empty list", details={"field": "readings"})
    if len(readings) > max_batch or (type(obj.get("count")) is int and obj["count"] > max_batch):
        raise BatchTooLarge(
            f"a batch holds at most {max_batch} readings",
            details={"limit": max_batch, "count": len(readings)},
        )
    head = _head(spec, obj)
    start, end = _instant(head, "period_start"), _instant(head, "period_end")
    if start >= end:
        raise BatchPeriodInvalid("period_start must be before period_end", details={"field": "period_end"})
    if head["count"] != len(readings):
        raise BatchRootMismatch(
            f"the batch names {head['count']} readings and carries {len(readings)}",
            details={"field": "count", "count": head["count"], "readings": len(readings)},
        )
    lo, hi = head["period_start"], head["period_end"]  # whole-second UTC text: ordered as instants
    leaves: list[bytes] = []
    times: list[str] = []
    alerts: list[Mapping[str, Any]] = []
    seen: dict[tuple[str, ...], int] = {}
    if prepare is not None:
        prepare(readings)
    for i, raw in enumerate(readings):
        item = check(raw, i, head)
        first = seen.setdefault(item.identity, i)
        if first != i:
            raise ReadingDuplicate(
                f"reading {i} repeats reading {first} ({spec.identity})",
                details={"index": i, "first": first, "identity": list(item.identity)},
            )
        if not lo <= item.at < hi:
            raise ReadingOutOfPeriod(
                f"reading {i} is dated {item.at}, outside the batch's period",
                details={"index": i, "data_time": item.at},
            )
        leaves.append(item.canonical)
        times.append(item.at)
        if item.alerts:
            alerts += item.alerts
    # After the readings: one dated in the future is named by its own code and index.
    if ctx is not None and ctx.now is not None and end > ctx.now + ctx.max_clock_skew:
        raise BatchPeriodInFuture(
            f"the period ends at {head['period_end']}, in the future (more than "
            f"{int(ctx.max_clock_skew.total_seconds())} s past the gateway's clock)",
            details={"field": "period_end", "period_end": head["period_end"]},
        )
    root = batch_root(leaves).hex()
    if root != head["root"]:
        raise BatchRootMismatch(
            "the batch's root is not the Merkle root of its readings",
            details={"field": "root", "expected": head["root"], "actual": root},
        )
    base = adapted(spec.kind, spec.source_key(head[spec.source]), head, dict(head))
    detail = {"readings": [leaf.decode("utf-8") for leaf in leaves], "times": times, "alerts": alerts}
    return dataclasses.replace(base, detail=detail)


def _unix(instant: str) -> int:
    return int(parse_rfc3339(instant).timestamp())


def batch_keys(spec: BatchSpec, facts: Mapping[str, Any]) -> tuple[str, ...]:
    """The states a batch reads and writes: its source's and its own."""
    source = facts[spec.source]
    return spec.source_key(source), spec.batch_key(source, facts["period_end"])


def recorded_end(source: State | None, anchored_end: int) -> str | None:
    """The end of the source's last batch (its state ``source``), or of its last anchored on chain
    (``anchored_end``, unix seconds, 0 for none: through another gateway), whichever is later; None if none.
    Periods only move forward, so anchorBatch never reverts PeriodOverlap for a batch accepted here."""
    last_end = source.data.get("period_end") if source is not None else None
    if anchored_end > 0 and (last_end is None or _unix(last_end) < anchored_end):
        last_end = rfc3339_utc(datetime.fromtimestamp(anchored_end, UTC))
    return last_end


def batch_step(
    spec: BatchSpec,
    record: RecordFacts,
    states: Mapping[str, State | None],
    chain: ChainView,
    anchored_end: int,
) -> Step:
    """A batch's period ends within the chain's clock lead and follows its source's last (here, or anchored
    on chain: ``anchored_end``, unix seconds, 0 for none); it moves the source's period forward and keeps
    its items. Its source's registration is the domain's rule, checked before."""
    f = record.facts
    source, start, end = f[spec.source], f["period_start"], f["period_end"]
    latest = chain.clock() + MAX_CLOCK_LEAD
    if parse_rfc3339(end) > latest:
        raise BatchPeriodInvalid(
            f"the period ends at {end}, later than the chain's clock allows ({latest.isoformat()})",
            details={"field": "period_end", "period_end": end},
        )
    last = states.get(spec.source_key(source))
    last_end = recorded_end(last, anchored_end)
    # Nor may it cover a single reading the source recorded (``env.reading``: the second after the latest).
    singles = last.data.get("singles_until") if last is not None else None
    if singles is not None and (last_end is None or last_end < singles):
        last_end = singles
    if last_end is not None and start < last_end:
        raise BatchPeriodOverlap(
            f"the period starts at {start}, before the end of the source's last batch ({last_end})",
            details={"period_start": start, "last_period_end": last_end},
        )
    batches = int(last.data.get("batches", 0)) if last is not None else 0
    return Step(
        writes={
            spec.source_key(source): State(
                "active", {**(last.data if last else {}), "period_end": end, "batches": batches + 1}
            ),
            spec.batch_key(source, end): State(
                "accepted",
                {
                    "record": record.record_id,
                    "period_start": start,
                    "period_end": end,
                    "count": f["count"],
                    "root": f["root"],
                    "readings": list(record.detail.get("readings", ())),
                    "times": list(record.detail.get("times", ())),
                    "alerts": list(record.detail.get("alerts", ())),
                },
            ),
        }
    )


def anchor_call(spec: BatchSpec, record: RecordFacts) -> ContractCall:
    """``anchorBatch(id, periodStart, periodEnd, root, count)`` of the domain's contract."""
    f = record.facts
    return ContractCall(
        spec.contract,
        "anchorBatch",
        (
            chain_key(spec.prefix, f[spec.source]),
            _unix(f["period_start"]),
            _unix(f["period_end"]),
            bytes.fromhex(f["root"]),
            f["count"],
        ),
    )


def anchored_already(
    spec: BatchSpec, record: RecordFacts, revert: ContractReverted, chain: ChainView
) -> bool:
    """A batch sent again after a crash reverts PeriodOverlap: applied if the source's last anchor is this
    batch's (period, root, count)."""
    if revert.error != "PeriodOverlap":
        return False
    f = record.facts
    sid = chain_key(spec.prefix, f[spec.source])
    n = int(chain.call(spec.contract, "batchCount", sid))
    if n == 0:
        return False
    last = chain.call(spec.contract, "batchAt", sid, n - 1)
    return (int(last[0]), int(last[1]), bytes(last[2]), int(last[3])) == (
        _unix(f["period_start"]),
        _unix(f["period_end"]),
        bytes.fromhex(f["root"]),
        f["count"],
    )
