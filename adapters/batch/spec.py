"""What a domain declares of its batch record: its kind, how the head names the source, the keys of its
states and the contract anchoring it; and what it tells of one item."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from provenance.domains import RootSpec
from provenance.errors import ProvenanceError


@dataclass(frozen=True, kw_only=True)
class BatchSpec:
    """A domain's batch record. The head a source signs is ``{<source>, period_start, period_end, count,
    root}``; the subject is ``<prefix>:<source id>``, the source's state key too, and its batches' states are
    ``batch:<source id>:<period_end>``; the contract's ``anchorBatch`` takes ``chain_key(prefix, id)``."""

    kind: str  # "env.batch"
    source: str  # the head member naming the source: "mn"
    prefix: str  # "station": subject, state key and chain key of the source
    source_pattern: re.Pattern[str]  # a well-formed source id (the reads check their path with it)
    source_hint: str  # what a source id looks like, for errors
    identity: str  # what makes two items one, for errors: "MN, CN and DataTime"
    contract: str  # the SensorStations contract registering sources and anchoring roots: "EnvMonitoring"
    noun: str  # what a source is called in errors: "monitoring point"
    # The domain's errors for a source not registered, operated by another org, suspended.
    errors: tuple[type[ProvenanceError], type[ProvenanceError], type[ProvenanceError]]

    @property
    def head_members(self) -> tuple[str, ...]:
        return (self.source, "period_start", "period_end", "count", "root")

    def source_key(self, source: str) -> str:
        return f"{self.prefix}:{source}"

    def batch_key(self, source: str, period_end: str) -> str:
        """A batch's state key; a source's batches sort by period (RFC 3339 UTC in whole seconds, and periods
        never overlap), so the reads find those of a time range from its start."""
        return f"batch:{source}:{period_end}"


class Item(NamedTuple):
    """One item of a batch as its domain checked it (a named tuple: immutable, and made in half the time of
    a frozen dataclass, once for each of a batch's up to 10,000 items)."""

    canonical: bytes  # the leaf: the item's canonical bytes (RFC 8785 JSON)
    identity: tuple[str, ...]  # two items of one source with the same identity are duplicates
    at: str  # its instant, RFC 3339 UTC in whole seconds: within the batch's period
    alerts: Sequence[Mapping[str, Any]] = ()  # each naming the item's ``index``


def anchored_roots(contract: str, kind: str) -> RootSpec:
    """How ``provenance audit batches`` reads a SensorStations contract's ``BatchAnchored`` events: each the
    root of a logged batch of ``kind`` of that station (``stationId``), period and count."""
    return RootSpec(
        contract=contract,
        event="BatchAnchored",
        kind=kind,
        subject="stationId",
        root="merkleRoot",
        fields={
            "merkleRoot": "root",
            "count": "count",
            "periodStart": "period_start",
            "periodEnd": "period_end",
        },
    )
