"""The environmental-monitoring domain's errors, each with its stable code (HJ 212 packet faults are the
shared codec's: ``adapters.errors``)."""

from __future__ import annotations

from provenance.errors import NotFound, NotPermitted, PayloadInvalid


class EnvRuleViolation(PayloadInvalid):
    """A well-formed packet that is not an acceptable reading (not a data upload, dated in the future)."""

    code = "ENV_RULE_VIOLATION"


class StationUnknown(NotFound):
    """A reading names a monitoring point (MN) that EnvMonitoring has not registered."""

    code = "STATION_UNKNOWN"


class StationNotOperator(NotPermitted):
    """A reading names a monitoring point that EnvMonitoring registered to another organisation."""

    code = "STATION_NOT_OPERATOR"


class StationInactive(NotPermitted):
    """A reading names a monitoring point the environmental bureau has suspended in EnvMonitoring."""

    code = "STATION_INACTIVE"
