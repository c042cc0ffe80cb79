"""``gas.batch``: a gas utility's data logger signs once for N readings (``docs/formats.md``, Gas readings;
the mechanism is ``adapters.batch``'s). The signed head is ``{logger, period_start, period_end, count,
root}``; the submission carries it and its ``readings`` (``payload.py``), each once per asset and instant,
within the period, each asset of one class (its first reading's); their alarms go with them to the batch's
state, and the class of each asset (``detail["classes"]``, asset key -> [class, index and id of its first
reading]) to the workflow, which holds it to the class its logger recorded the asset with before
(``assets.py``). An asset is its ``payload.asset_key``: ids that differ in case or in '-' against '_' are one
asset, for its class and for its identity (asset and time)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from adapters.abc import AdaptContext, AdaptedPayload, Payload
from adapters.batch import BatchSpec, Item
from adapters.batch.intake import MAX_BATCH, adapt_batch
from adapters.gas.alarms import DEFAULT_THRESHOLDS, Thresholds, alarms_of
from adapters.gas.domain import BATCH, CONTRACT
from adapters.gas.errors import AssetClassMismatch, LoggerInactive, LoggerNotOperator, LoggerUnknown
from adapters.gas.payload import asset_key, check_reading

SPEC = BatchSpec(
    kind=BATCH,
    source="logger",
    prefix="logger",
    source_pattern=re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"),
    source_hint="a data logger id (1 to 64 letters, digits, '.', '_' or '-')",
    identity="asset and time",
    contract=CONTRACT,
    noun="data logger",
    errors=(LoggerUnknown, LoggerNotOperator, LoggerInactive),
)


class GasBatchAdapter:
    """Adapts ``gas.batch`` submissions; subject ``logger:<id>``."""

    def __init__(
        self, max_batch: int = MAX_BATCH, thresholds: Mapping[str, Thresholds] = DEFAULT_THRESHOLDS
    ) -> None:
        self.max_batch = max_batch
        self.thresholds = thresholds  # asset class -> its alarm levels

    def adapt(self, payload: Payload, ctx: AdaptContext) -> AdaptedPayload:
        classes: dict[str, list[Any]] = {}  # asset key -> [its class, its first reading's index and id]

        def reading(raw: Any, index: int, head: Mapping[str, Any]) -> Item:
            doc, leaf = check_reading(raw, index, ctx)
            asset, cls = doc["asset"], doc["class"]
            key = asset_key(asset)
            first = classes.setdefault(key, [cls, index, asset])
            if first[0] != cls:  # one asset, one class: its quantities and alarm bands are its class's
                raise AssetClassMismatch(
                    f"reading {index} reads asset {asset!r} as a {cls}, reading {first[1]} as a {first[0]}",
                    details={
                        "index": index,
                        "field": "class",
                        "asset": asset,
                        "value": cls,
                        "asset_class": first[0],
                        "first": first[1],
                    },
                )
            return Item(leaf, (key, doc["time"]), doc["time"], alarms_of(doc, index, self.thresholds))

        done = adapt_batch(SPEC, payload, self.max_batch, reading, ctx=ctx)
        return dataclasses.replace(done, detail={**done.detail, "classes": classes})
