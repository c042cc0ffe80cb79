"""``env.batch``: a station signs once for N readings (``docs/formats.md``, Sensor batches).

The signed payload is the batch's head, ``{mn, period_start, period_end, count, root}``: ``root`` is the
RFC 9162 Merkle root (SM3, 0x00/0x01 prefixes: ``provenance.log.merkle``) whose leaves are the readings'
canonical bytes (each exactly an ``env.reading`` payload), in the order sent. A submission carries the head
and its ``readings`` (HJ 212 packets or their JSON form); the adapter checks every reading, that each is of
the batch's station and period, once, and that they hash to the root. The readings go to the rules as the
adapted payload's ``detail`` (stored in the domain's states), never into the record's facts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters._common import adapted, load_json_object
from adapters.abc import AdaptContext, AdaptedPayload, Payload
from adapters.env import fastpath
from adapters.env.alerts import DEFAULT_LIMITS, alerts_of
from adapters.env.domain import BATCH, READING
from adapters.env.errors import (
    BatchPeriodInvalid,
    BatchRootMismatch,
    BatchStationMismatch,
    BatchTooLarge,
    ReadingDuplicate,
    ReadingOutOfPeriod,
)
from adapters.env.payload import EnvAdapter
from adapters.errors import PayloadInvalid
from provenance.errors import DuplicateKey
from provenance.log.merkle import items_root
from provenance.timestamps import parse_rfc3339

MAX_BATCH = 10_000  # readings per batch unless the workflow is built with another bound
HEAD = ("mn", "period_start", "period_end", "count", "root")
_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_READING = EnvAdapter()


# The Merkle root of readings' canonical bytes (what a station signs through the head's ``root``).
batch_root = items_root


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


def _head(obj: Mapping[str, Any]) -> dict[str, Any]:
    extra = sorted(set(obj) - {*HEAD, "readings"})
    missing = [k for k in HEAD if k not in obj]
    if extra or missing:
        field = (extra or missing)[0]
        why = "unknown member" if extra else "missing member"
        raise PayloadInvalid(f"batch: {why} {field}", details={"field": field})
    head = {k: obj[k] for k in HEAD}
    if not isinstance(head["mn"], str) or not head["mn"]:
        raise PayloadInvalid("batch: mn must be the monitoring point's MN", details={"field": "mn"})
    if type(head["count"]) is not int or head["count"] < 1:
        raise PayloadInvalid("batch: count must be a positive integer", details={"field": "count"})
    if not isinstance(head["root"], str) or not _HEX64.fullmatch(head["root"]):
        raise PayloadInvalid("batch: root must be 64 lowercase hex", details={"field": "root"})
    return head


def _reading(raw: Any, index: int, ctx: AdaptContext) -> AdaptedPayload:
    """One reading (a packet's text or its JSON form); its errors keep their code and name its index."""
    try:
        payload: Payload = raw.encode("utf-8") if isinstance(raw, str) else raw
        if not isinstance(payload, bytes | Mapping):
            raise PayloadInvalid("a reading is an HJ 212 packet (text) or its JSON form (object)")
        return _READING.adapt(READING, payload, context=ctx)
    except (PayloadInvalid, DuplicateKey) as exc:
        raise type(exc)(f"reading {index}: {exc.message}", details={**exc.details, "index": index}) from exc


class BatchAdapter:
    """Adapts ``env.batch`` submissions; subject ``station:<MN>``."""

    def __init__(
        self,
        max_batch: int = MAX_BATCH,
        limits: Mapping[str, Mapping[str, Mapping[str, float]]] = DEFAULT_LIMITS,
    ) -> None:
        self.max_batch = max_batch
        self.limits = limits  # station class (HJ 212 ST) -> pollutant code -> averaging time -> limit

    def adapt(self, payload: Payload, ctx: AdaptContext) -> AdaptedPayload:
        obj = load_json_object(payload)
        readings = obj.get("readings")
        if not isinstance(readings, list) or not readings:
            raise PayloadInvalid("batch: readings must be a non-empty list", details={"field": "readings"})
        if len(readings) > self.max_batch or (
            type(obj.get("count")) is int and obj["count"] > self.max_batch
        ):
            raise BatchTooLarge(
                f"a batch holds at most {self.max_batch} readings",
                details={"limit": self.max_batch, "count": len(readings)},
            )
        head = _head(obj)
        start, end = _instant(head, "period_start"), _instant(head, "period_end")
        if start >= end:
            raise BatchPeriodInvalid(
                "period_start must be before period_end", details={"field": "period_end"}
            )
        if head["count"] != len(readings):
            raise BatchRootMismatch(
                f"the batch names {head['count']} readings and carries {len(readings)}",
                details={"field": "count", "count": head["count"], "readings": len(readings)},
            )
        leaves: list[bytes] = []
        times: list[str] = []
        alerts: list[dict[str, Any]] = []
        seen: dict[tuple[str, str], int] = {}
        # Period bounds and DataTimes are RFC 3339 UTC in whole seconds: their text sorts as their instants.
        start_text, end_text = head["period_start"], head["period_end"]
        table = self.limits
        for i, fast in enumerate(fastpath.readings(readings, ctx)):
            if fast is None:
                r = _reading(readings[i], i, ctx)
                canonical, facts = r.canonical, r.facts
                mn, ident, at = facts["mn"], (facts["cn"], facts["data_time"]), facts["data_time"]
            else:
                canonical, facts = fast.canonical, None
                mn, ident, at = fast.mn, (fast.cn, fast.data_time), fast.data_time
            if mn != head["mn"]:
                raise BatchStationMismatch(
                    f"reading {i} is of monitoring point {mn!r}, the batch of {head['mn']!r}",
                    details={"index": i, "mn": mn, "batch_mn": head["mn"]},
                )
            first = seen.setdefault(ident, i)
            if first != i:
                raise ReadingDuplicate(
                    f"reading {i} repeats reading {first} (MN, CN and DataTime)",
                    details={"index": i, "first": first, "cn": ident[0], "data_time": ident[1]},
                )
            if not start_text <= at < end_text:
                raise ReadingOutOfPeriod(
                    f"reading {i} is dated {at}, outside the batch's period",
                    details={"index": i, "data_time": at},
                )
            leaves.append(canonical)
            times.append(at)
            if facts is None and (fast is not None and (fast.abnormal or fast.st in table)):
                facts = fast.facts()
            if facts is not None:
                alerts += alerts_of(facts, i, table)
        root = batch_root(leaves).hex()
        if root != head["root"]:
            raise BatchRootMismatch(
                "the batch's root is not the Merkle root of its readings",
                details={"field": "root", "expected": head["root"], "actual": root},
            )
        base = adapted(BATCH, f"station:{head['mn']}", head, dict(head))
        detail = {"readings": [leaf.decode("utf-8") for leaf in leaves], "times": times, "alerts": alerts}
        return AdaptedPayload(
            kind=base.kind,
            subject=base.subject,
            canonical=base.canonical,
            digest=base.digest,
            facts=base.facts,
            detail=detail,
        )
