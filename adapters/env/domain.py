"""The environmental-monitoring domain as verifiers and auditors see it: readings by stations, one by one
(``env.reading``) or signed once per batch (``env.batch``, whose root ``EnvMonitoring.anchorBatch``
anchors; ``provenance audit batches`` checks those anchors against the logged batches)."""

from __future__ import annotations

from adapters.batch.spec import anchored_roots
from provenance.domains import DomainSpec

READING = "env.reading"
BATCH = "env.batch"
KINDS = (READING, BATCH)
CONTRACT = "EnvMonitoring"

DOMAIN = DomainSpec(
    name="env",
    roles={READING: frozenset({"monitoring_station"}), BATCH: frozenset({"monitoring_station"})},
    roots=(anchored_roots(CONTRACT, BATCH),),
)
