"""Exceedance alerts of batch readings (``docs/design/sensor-batches.md``, Alerts): a reading over the limit
of its station class for one of its pollutants, or a pollutant whose HJ 212-2017 data flag is not ``N`` (``F``
stopped, ``M`` maintenance, ``S`` manual, ``D`` fault, ``C`` calibration, ``T`` over range, ``B``
communication), each naming the reading. Pure functions of the signed readings and the limit table.

The station class is the reading's own HJ 212 system code (ST): ``22`` (空气质量监测, ambient air) is held to
GB 3095-2012 表1/表2 grade II (二级) limits, mapped to HJ 212-2017 pollutant codes; other classes raise flag
alerts only unless the deployment gives them limits (``EnvWorkflow(limits=...)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# GB 3095-2012 grade II concentration limits by HJ 212-2017 code and averaging time: µg/m³, CO in mg/m³.
GB3095_GRADE_II: Mapping[str, Mapping[str, float]] = {
    "a21026": {"hour": 500.0, "day": 150.0},  # SO2 (表1)
    "a21004": {"hour": 200.0, "day": 80.0},  # NO2 (表1)
    "a21005": {"hour": 10.0, "day": 4.0},  # CO (表1)
    "a05024": {"hour": 200.0},  # O3 1-hour mean (表1; its 8-hour mean is no HJ 212 interval)
    "a34002": {"day": 150.0},  # PM10 (表1)
    "a34004": {"day": 75.0},  # PM2.5 (表1)
    "a34001": {"day": 300.0},  # TSP (表2)
    "a21002": {"hour": 250.0, "day": 100.0},  # NOx (表2)
}
AMBIENT_AIR = "22"  # HJ 212-2017 system code (ST) of ambient air quality monitoring
DEFAULT_LIMITS: Mapping[str, Mapping[str, Mapping[str, float]]] = {AMBIENT_AIR: GB3095_GRADE_II}

# The averaging time a reading is held to: real-time, minute and hour data to the 1-hour limit (a minute
# over it is an early warning), daily data to the 24-hour limit.
_AVERAGING = {"real-time": "hour", "minute": "hour", "hour": "hour", "day": "day"}


def alerts_of(
    facts: Mapping[str, Any], index: int, limits: Mapping[str, Mapping[str, Mapping[str, float]]]
) -> list[dict[str, Any]]:
    """The alerts of one reading (its adapter's facts), in pollutant-code order: exceedances, then flags."""
    out: list[dict[str, Any]] = []
    averaging = _AVERAGING[facts["interval"]]
    table = limits.get(facts["st"], {})
    at = facts["data_time"]
    for code, value in sorted(facts["pollutants"].items()):
        limit = table.get(code, {}).get(averaging)
        if limit is not None and value > limit:
            out.append(
                {
                    "index": index,
                    "data_time": at,
                    "type": "exceedance",
                    "code": code,
                    "value": value,
                    "limit": limit,
                    "averaging": averaging,
                }
            )
    for code in facts["abnormal"]:
        out.append(
            {"index": index, "data_time": at, "type": "flag", "code": code, "flag": facts["flags"][code]}
        )
    return out
