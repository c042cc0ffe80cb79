"""The environmental-monitoring domain as verifiers and auditors see it: readings by stations. Readings
make no contract call (``EnvMonitoring`` holds the stations), so the audit has no event of theirs."""

from __future__ import annotations

from provenance.domains import DomainSpec

READING = "env.reading"
KINDS = (READING,)
CONTRACT = "EnvMonitoring"

DOMAIN = DomainSpec(name="env", roles={READING: frozenset({"monitoring_station"})})
