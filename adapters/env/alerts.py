"""Exceedance alerts of readings (``docs/design/sensor-batches.md``, Alerts): a reading outside the limit of
its station class for one of its pollutants (over a maximum, or under a minimum: dissolved oxygen, pH), or a
pollutant whose HJ 212-2017 data flag is not ``N`` (``F`` stopped, ``M`` maintenance, ``S`` manual, ``D``
fault, ``C`` calibration, ``T`` over range, ``B`` communication), each naming the reading. Pure functions
of the signed readings and the limit table (``limits.py``).

The station class is the reading's own HJ 212 system code (ST): ``22`` (ambient air) is held to GB 3095-2012
grade II, ``21`` (surface water quality) to GB 3838-2002 Class III, ``32`` (a discharge to surface water) to
GB 8978-1996 grade 1; other classes raise flag alerts only unless the deployment gives them limits
(``EnvWorkflow(limits=...)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.env.limits import Limits, Range

# The averaging time a reading is held to: real-time, minute and hour data to the 1-hour limit (a minute
# over it is an early warning), daily data to the 24-hour limit.
_AVERAGING = {"real-time": "hour", "minute": "hour", "hour": "hour", "day": "day"}


def alerts_of(facts: Mapping[str, Any], index: int, limits: Limits) -> list[dict[str, Any]]:
    """The alerts of one reading (its adapter's facts), in pollutant-code order: exceedances, then flags."""
    out: list[dict[str, Any]] = []
    averaging = _AVERAGING[facts["interval"]]
    table = limits.get(facts["st"], {})
    at = facts["data_time"]
    for code, value in sorted(facts["pollutants"].items()):
        limit = table.get(code, {}).get(averaging)
        if limit is None:
            continue
        low, high = (limit.low, limit.high) if isinstance(limit, Range) else (None, limit)
        if high is not None and value > high:
            bound, crossed = "max", high
        elif low is not None and value < low:
            bound, crossed = "min", low
        else:
            continue
        out.append(
            {
                "index": index,
                "data_time": at,
                "type": "exceedance",
                "code": code,
                "value": value,
                "limit": crossed,
                "bound": bound,
                "averaging": averaging,
            }
        )
    for code in facts["abnormal"]:
        out.append(
            {"index": index, "data_time": at, "type": "flag", "code": code, "flag": facts["flags"][code]}
        )
    return out
