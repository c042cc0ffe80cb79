"""``env.batch``: a station signs once for N readings (``docs/formats.md``, Sensor batches; the mechanism is
``adapters.batch``'s).

The signed payload is the batch's head, ``{mn, period_start, period_end, count, root}``: ``root`` is the
RFC 9162 Merkle root (SM3, 0x00/0x01 prefixes: ``provenance.log.merkle``) whose leaves are the readings'
canonical bytes (each exactly an ``env.reading`` payload), in the order sent. A submission carries the head
and its ``readings`` (HJ 212 packets or their JSON form); each reading must be of the batch's station, once
(MN, CN and DataTime), within its period.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from adapters.abc import AdaptContext, AdaptedPayload, Payload
from adapters.batch import BatchSpec, Item
from adapters.batch.intake import MAX_BATCH, adapt_batch, batch_root
from adapters.env import fastpath
from adapters.env.alerts import alerts_of
from adapters.env.domain import BATCH, CONTRACT, READING
from adapters.env.errors import (
    BatchStationMismatch,
    StationClassMismatch,
    StationInactive,
    StationNotOperator,
    StationUnknown,
)
from adapters.env.limits import DEFAULT_LIMITS, Limits
from adapters.env.payload import EnvAdapter
from adapters.errors import PayloadInvalid
from provenance.errors import DuplicateKey

__all__ = ["MAX_BATCH", "SPEC", "BatchAdapter", "batch_root"]

SPEC = BatchSpec(
    kind=BATCH,
    source="mn",
    prefix="station",
    source_pattern=re.compile(r"[A-Za-z0-9]{1,24}"),  # HJ 212-2017 MN (adapters.hj212)
    source_hint="an HJ 212 MN (1 to 24 letters and digits)",
    identity="MN, CN and DataTime",
    contract=CONTRACT,
    noun="monitoring point",
    errors=(StationUnknown, StationNotOperator, StationInactive),
)
_READING = EnvAdapter()


class BatchAdapter:
    """Adapts ``env.batch`` submissions; subject ``station:<MN>``."""

    def __init__(
        self,
        max_batch: int = MAX_BATCH,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.max_batch = max_batch
        self.limits = limits  # station class (HJ 212 ST) -> pollutant code -> averaging time -> limit

    def adapt(self, payload: Payload, ctx: AdaptContext) -> AdaptedPayload:
        fast: list[fastpath.Fast | None] = []  # the one-pass forms, made once the head and bound passed
        classes: list[str] = []  # the ST of the batch's readings (its first's)

        def prepare(readings: list[Any]) -> None:
            fast[:] = fastpath.readings(readings, ctx)

        def reading(raw: Any, index: int, head: Mapping[str, Any]) -> Item:
            """One reading (a packet or its JSON form); its errors keep their code, naming its index."""
            hit = fast[index] if index < len(fast) else None
            facts: Mapping[str, Any] | None
            if hit is None:  # what the one pass does not take, the codec decides (and names the error)
                r = _slow_reading(raw, index, ctx)
                canonical, facts = r.canonical, r.facts
                mn, cn, at, st = facts["mn"], facts["cn"], facts["data_time"], facts["st"]
            else:
                canonical, mn, cn, at, st = hit.canonical, hit.mn, hit.cn, hit.data_time, hit.st
                facts = hit.facts() if hit.abnormal or hit.st in self.limits else None
            if mn != head["mn"]:
                raise BatchStationMismatch(
                    f"reading {index} is of monitoring point {mn!r}, the batch of {head['mn']!r}",
                    details={"index": index, "mn": mn, "batch_mn": head["mn"]},
                )
            if classes and st != classes[0]:  # one station, one class (ST): the workflow checks it is its own
                raise StationClassMismatch(
                    f"reading {index} has ST {st}, the batch's readings {classes[0]}",
                    details={"index": index, "field": "ST", "value": st, "station_st": classes[0]},
                )
            if not classes:
                classes.append(st)
            alerts = alerts_of(facts, index, self.limits) if facts is not None else ()
            return Item(canonical, (cn, at), at, alerts)

        done = adapt_batch(SPEC, payload, self.max_batch, reading, prepare=prepare, ctx=ctx)
        return dataclasses.replace(done, detail={**done.detail, "st": classes[0]})


def _slow_reading(raw: Any, index: int, ctx: AdaptContext) -> AdaptedPayload:
    """One reading through the HJ 212 codec; its errors keep their code and name its index."""
    try:
        data: Payload = raw.encode("utf-8") if isinstance(raw, str) else raw
        if not isinstance(data, bytes | Mapping):
            raise PayloadInvalid("a reading is an HJ 212 packet (text) or its JSON form (object)")
        return _READING.adapt(READING, data, context=ctx)
    except (PayloadInvalid, DuplicateKey) as exc:
        raise type(exc)(f"reading {index}: {exc.message}", details={**exc.details, "index": index}) from exc
    except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800" in the JSON): no text at all
        raise PayloadInvalid(
            f"reading {index} is not Unicode text (a lone surrogate)", details={"index": index}
        ) from exc
