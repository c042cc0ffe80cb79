"""A gas-network reading: one asset's values at one instant, as JSON with units (``docs/formats.md``, Gas
readings)::

    {"asset": "PL-0042", "class": "pipeline", "time": "2026-12-06T08:00:00Z",
     "values": {"pressure": {"value": 0.32, "unit": "MPa"}, "methane": {"value": 0, "unit": "%LEL"}}}

Assets are of three classes: ``source`` (a gas source: 气源, city gate station), ``pipeline`` (a pipeline
segment's sensor) and ``meter`` (a customer meter). Each class measures some quantities, each quantity
takes some units; a value is a finite JSON number in its quantity's range, a pressure or flow no higher than
its asset class's physical ceiling (``CEILINGS``). A reading is signed as sent, in the unit its sensor
reported: alarms convert (``alarms.py``). Identity: one reading per asset and instant; an asset keeps its
class (``batch.py``, ``assets.py``). An asset id is compared without case and with '_' as '-'
(``asset_key``): PIPE-0EC5, pipe-0ec5 and PIPE_0EC5 are one asset.

Reads (``READ_POLICY``): the utility reads its own batches; auditors and regulators read them all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from adapters._common import domain_policy, id_key
from adapters.abc import AdaptContext
from adapters.gas.domain import KINDS
from adapters.gas.errors import (
    GasAssetInvalid,
    GasQuantityInvalid,
    GasReadingInvalid,
    GasUnitInvalid,
    GasValueImplausible,
)
from provenance.records import canonical_bytes
from provenance.timestamps import parse_rfc3339

# Each quantity's units, with the factor to its base unit (pressure: kPa), and its range in the base unit.
UNITS: Mapping[str, Mapping[str, float]] = {
    "pressure": {"kPa": 1.0, "MPa": 1000.0},  # gauge pressure
    "flow": {"m³/h": 1.0},  # volume flow at working conditions
    "volume": {"m³": 1.0},  # a meter's cumulative index
    "methane": {"%LEL": 1.0},  # methane concentration, in % of its lower explosive limit
    "temperature": {"°C": 1.0},
}
RANGES: Mapping[str, tuple[float, float]] = {
    "pressure": (-101.325, 100_000.0),  # kPa: not below vacuum
    "flow": (0.0, math.inf),
    "volume": (0.0, math.inf),
    "methane": (0.0, 100.0),
    "temperature": (-273.15, math.inf),
}
# What no asset of a class can physically read, in the base unit (kPa, m³/h): above it a value is refused
# (GAS_VALUE_IMPLAUSIBLE), not alarmed (docs/design/gas-network.md, Plausibility, with the sources). Pressure:
# 1.5 (a steel pipe's strength test) times the highest design pressure that reaches the class: 12 MPa
# transmission lines for a source, GB 50028's 4.0 MPa (high-pressure A) city network for pipelines and
# meters. Flow: methane at its speed of sound (~450 m/s) through the largest line pipe laid (OD 1422 mm) for
# sources and pipelines; the largest gas meter designation, G 16000 (Q_max 25,000 m³/h), for meters.
CEILINGS: Mapping[str, Mapping[str, float]] = {
    "source": {"pressure": 18_000.0, "flow": 2_500_000.0},
    "pipeline": {"pressure": 6_000.0, "flow": 2_500_000.0},
    "meter": {"pressure": 6_000.0, "flow": 25_000.0},
}
# What each asset class measures.
CLASSES: Mapping[str, frozenset[str]] = {
    "source": frozenset({"pressure", "flow", "temperature"}),
    "pipeline": frozenset({"pressure", "flow", "methane", "temperature"}),
    "meter": frozenset({"volume", "flow", "pressure", "methane"}),
}
MEMBERS = ("asset", "class", "time", "values")
# An asset id: letter-or-digit runs joined by single '-' or '_' (no '.', no leading, trailing or doubled
# separator), at most 64 characters; ASCII, so ``asset_key``'s upper-casing is exact.
ASSET_PATTERN = re.compile(r"(?=.{1,64}\Z)[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*")
_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")

READ_POLICY = domain_policy(KINDS)


def asset_key(asset: str) -> str:
    """The asset an id names: case and the choice of '-' or '_' make no other asset (seventh attack, finding
    4: pipe-0EC5 read as a source the pipeline PIPE-0EC5 its logger had recorded)."""
    return id_key(asset)  # the id normal form the rx dispense rules share (ninth attack, finding 1)


def _bad(index: int, field: str, why: str) -> GasReadingInvalid:
    return GasReadingInvalid(f"reading {index}: {why}", details={"index": index, "field": field})


def _time(value: Any, index: int, ctx: AdaptContext) -> str:
    if not isinstance(value, str) or not _SECOND.fullmatch(value):
        raise _bad(index, "time", "time must be an RFC 3339 UTC instant in whole seconds")
    try:
        at = parse_rfc3339(value)
    except ValueError:
        raise _bad(index, "time", "time is not a valid instant") from None
    if ctx.now is not None and at > ctx.now + ctx.max_clock_skew:
        raise _bad(index, "time", "the reading is dated in the future")
    return value


def _values(values: Any, cls: str, index: int) -> None:
    if not isinstance(values, dict) or not values:
        raise _bad(index, "values", "values must be a non-empty object of quantities")
    for quantity, v in values.items():
        where = f"values.{quantity}"
        if quantity not in UNITS or quantity not in CLASSES[cls]:
            known = sorted(CLASSES[cls])
            raise GasQuantityInvalid(
                f"reading {index}: a {cls} asset does not report {quantity!r} ({', '.join(known)})",
                details={"index": index, "field": where, "class": cls, "quantities": known},
            )
        if not isinstance(v, dict) or set(v) != {"value", "unit"}:
            raise _bad(index, where, f'{quantity} must be {{"value": <number>, "unit": <unit>}}')
        unit, value = v["unit"], v["value"]
        if unit not in UNITS[quantity]:
            units = sorted(UNITS[quantity])
            raise GasUnitInvalid(
                f"reading {index}: {quantity} is not in {str(unit)[:20]!r} (units: {', '.join(units)})",
                details={"index": index, "field": f"{where}.unit", "quantity": quantity, "units": units},
            )
        if type(value) not in (int, float) or not math.isfinite(value):
            raise _bad(index, f"{where}.value", f"{quantity} must be a finite number")
        low, high = RANGES[quantity]
        factor = UNITS[quantity][unit]
        if not low <= value * factor <= high:
            raise _bad(index, f"{where}.value", f"{quantity} {value} {unit} is out of range")
        ceiling = CEILINGS[cls].get(quantity)
        if ceiling is not None and value * factor > ceiling:
            raise GasValueImplausible(
                f"reading {index}: a {cls} asset cannot read {quantity} {value} {unit} "
                f"(at most {ceiling / factor:g} {unit})",
                details={
                    "index": index,
                    "field": f"{where}.value",
                    "class": cls,
                    "quantity": quantity,
                    "value": value,
                    "unit": unit,
                    "ceiling": ceiling / factor,
                },
            )


def check_reading(raw: Any, index: int, ctx: AdaptContext) -> tuple[dict[str, Any], bytes]:
    """A reading checked (errors naming ``index``): the reading and its canonical bytes (its leaf)."""
    if not isinstance(raw, dict):
        raise _bad(index, "$", "a reading is a JSON object")
    extra = sorted(set(raw) - set(MEMBERS))
    missing = [m for m in MEMBERS if m not in raw]
    if extra or missing:
        field = (extra or missing)[0]
        raise _bad(index, field, f"{'unknown' if extra else 'missing'} member {field}")
    asset = raw["asset"]
    if not isinstance(asset, str) or not ASSET_PATTERN.fullmatch(asset):
        raise GasAssetInvalid(
            f"reading {index}: asset must be 1 to 64 letters and digits, runs joined by single '-' or '_'",
            details={"index": index, "field": "asset", "value": str(asset)[:70]},
        )
    if raw["class"] not in CLASSES:
        raise _bad(index, "class", f"class must be one of {', '.join(sorted(CLASSES))}")
    _time(raw["time"], index, ctx)
    _values(raw["values"], raw["class"], index)
    return raw, canonical_bytes(raw)
