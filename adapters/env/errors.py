"""The environmental-monitoring domain's errors, each with its stable code (HJ 212 packet faults are the
shared codec's: ``adapters.errors``)."""

from __future__ import annotations

from adapters.batch.errors import (
    BatchPeriodInvalid,
    BatchPeriodOverlap,
    BatchRootMismatch,
    BatchTooLarge,
    ReadingDuplicate,
    ReadingNotFound,
    ReadingOutOfPeriod,
)
from provenance.errors import NotFound, NotPermitted, PayloadInvalid

__all__ = [
    "BatchPeriodInvalid",
    "BatchPeriodOverlap",
    "BatchRootMismatch",
    "BatchStationMismatch",
    "BatchTooLarge",
    "EnvRuleViolation",
    "PollutantClassMismatch",
    "ReadingDuplicate",
    "ReadingNotFound",
    "ReadingOutOfOrder",
    "ReadingOutOfPeriod",
    "ReadingTooOld",
    "StationClassMismatch",
    "StationInactive",
    "StationNotOperator",
    "StationUnknown",
]


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


# --- batches (``env.batch``): the shared codes are ``adapters.batch.errors``'s ------------------------------


class BatchStationMismatch(PayloadInvalid):
    """A reading of the batch names another monitoring point than the batch."""

    code = "BATCH_STATION_MISMATCH"


# --- single readings (``env.reading``) held to the batches' guarantees -------------------------------------


class ReadingOutOfOrder(PayloadInvalid):
    """A single reading dated inside or before the station's last recorded batch period: periods only move
    forward, so a reading of an earlier batch never comes again."""

    code = "READING_OUT_OF_ORDER"
    http_status = 409


class ReadingTooOld(PayloadInvalid):
    """A single reading dated before the backdating window (``EnvWorkflow(max_backdate=…)``, 72 h)."""

    code = "READING_TOO_OLD"


class StationClassMismatch(PayloadInvalid):
    """A reading whose HJ 212 system code (ST) is not its station's class: the ST of the station's first
    recorded reading or batch, which decides the limits its readings are held to."""

    code = "STATION_CLASS_MISMATCH"
    http_status = 409


class PollutantClassMismatch(PayloadInvalid):
    """A reading naming a pollutant code outside its station class's family (``adapters.env.stclass``): a
    water station's air code, an air station's water code, a code of neither form."""

    code = "POLLUTANT_CLASS_MISMATCH"
