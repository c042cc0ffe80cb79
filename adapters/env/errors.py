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


# --- batches (``env.batch``): each names the reading's ``index`` where one reading is at fault -----------


class BatchTooLarge(PayloadInvalid):
    """A batch of more readings than the domain's bound (``EnvWorkflow.max_batch``, default 10,000)."""

    code = "BATCH_TOO_LARGE"
    http_status = 413


class BatchRootMismatch(PayloadInvalid):
    """The batch's signed Merkle root (or count) is not that of the readings it carries."""

    code = "BATCH_ROOT_MISMATCH"


class BatchStationMismatch(PayloadInvalid):
    """A reading of the batch names another monitoring point than the batch."""

    code = "BATCH_STATION_MISMATCH"


class ReadingDuplicate(PayloadInvalid):
    """Two readings of the same monitoring point, command and DataTime (HJ 212's identity of a reading)."""

    code = "READING_DUPLICATE"


class ReadingOutOfPeriod(PayloadInvalid):
    """A reading dated outside its batch's period [period_start, period_end)."""

    code = "READING_OUT_OF_PERIOD"


class BatchPeriodInvalid(PayloadInvalid):
    """A batch period that is empty, not in whole UTC seconds, or ends beyond the chain's clock by more than
    EnvMonitoring's ``MAX_CLOCK_LEAD`` (one hour): the anchor could never go on chain."""

    code = "BATCH_PERIOD_INVALID"


class BatchPeriodOverlap(PayloadInvalid):
    """A batch period starting before the end of the station's last batch. Periods only move forward (as in
    EnvMonitoring), so a reading of an earlier batch can never come again in a later one."""

    code = "BATCH_PERIOD_OVERLAP"
    http_status = 409


class ReadingNotFound(NotFound):
    """No such reading, or one of a batch whose payload this reader may not read (the same answer)."""

    code = "READING_NOT_FOUND"


class ReadingQueryInvalid(PayloadInvalid):
    """A readings query with a malformed instant, cursor or limit."""

    code = "REQUEST_INVALID"
    http_status = 422
