"""The gas-network domain's errors, each with its stable code (a batch's own are ``adapters.batch.errors``';
each of these names the reading's ``index`` in its batch)."""

from __future__ import annotations

from provenance.errors import NotFound, NotPermitted, PayloadInvalid


class GasReadingInvalid(PayloadInvalid):
    """A reading that is not a gas reading: members, asset id or class, time (RFC 3339 UTC in whole
    seconds, not in the future), or a value that is no finite number in its quantity's range."""

    code = "GAS_READING_INVALID"


class GasAssetInvalid(GasReadingInvalid):
    """An asset id outside ``payload.ASSET_PATTERN``: letters and digits in runs joined by single '-' or
    '_', at most 64 characters. A trailing dot, a doubled dash or a space would spell another id of what
    reads as the same asset (seventh attack, finding 4)."""

    code = "GAS_ASSET_INVALID"


class GasQuantityInvalid(PayloadInvalid):
    """A quantity no gas sensor reports, or one its asset class does not measure (a meter's methane is
    measured, a gas source's is not)."""

    code = "GAS_QUANTITY_INVALID"


class GasUnitInvalid(PayloadInvalid):
    """A value in a unit its quantity does not take (pressure in kPa or MPa, flow in m³/h ...)."""

    code = "GAS_UNIT_INVALID"


class GasValueImplausible(PayloadInvalid):
    """A pressure or flow above what any asset of the reading's class can physically read (its class's
    ceiling, ``payload.CEILINGS``): a sensor fault or an invented value, never a reading to alarm on."""

    code = "GAS_VALUE_IMPLAUSIBLE"


class AssetClassMismatch(PayloadInvalid):
    """A reading of an asset under another class than the asset's: the class of its first reading (in the
    batch, or recorded by its logger before), which decides the quantities and alarm bands that hold it."""

    code = "ASSET_CLASS_MISMATCH"
    http_status = 409


class LoggerUnknown(NotFound):
    """A batch names a data logger GasNetwork has not registered."""

    code = "LOGGER_UNKNOWN"


class LoggerNotOperator(NotPermitted):
    """A batch names a data logger another gas utility registered in GasNetwork."""

    code = "LOGGER_NOT_OPERATOR"


class LoggerInactive(NotPermitted):
    """A batch names a data logger its utility has suspended in GasNetwork."""

    code = "LOGGER_INACTIVE"
