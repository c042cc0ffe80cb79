"""Alarms of gas readings (``docs/design/gas-network.md``, Alarms): a leak (methane at or over its asset
class's alarm level, in %LEL), a pressure out of its class's band (low, high) and a flow over its class's
level (possible, but not for an asset of the class as deployed), each naming the reading.
Pure functions of the signed readings and the thresholds the workflow is configured with.

Defaults (``DEFAULT_THRESHOLDS``; a deployment passes its own, ``GasWorkflow(thresholds=...)``):
- leak at 25 %LEL, GB/T 50493-2019's upper bound for a combustible-gas detector's first alarm level
  (一级报警设定值 ≤ 25%LEL), for the classes that measure methane (pipeline sensors, customer meters);
- pressure bands by GB 50028-2006's classes of city gas pipelines: a gas source feeding a sub-high-pressure
  network 0.4 to 1.6 MPa (次高压), pipeline segments of the medium-pressure network 0.01 to 0.4 MPa
  (中压 B and A), customer meters of the low-pressure service 1 to 3 kPa (household appliances run at a
  nominal 2 kPa);
- flow over 160 m³/h for customer meters: the largest diaphragm gas meter (GB/T 6968-2019, G 100, Q_max
  160 m³/h), what a low-pressure service's customer is metered with; none for sources and pipelines, whose
  flows depend on their pipe. A network of other classes configures its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.gas.payload import UNITS


@dataclass(frozen=True, slots=True)
class Thresholds:
    """One asset class's alarm levels: the pressure band in kPa (None: no pressure alarm), the methane
    level in %LEL at which a leak is raised (None: no leak alarm) and the flow in m³/h over which one is
    too high (None: no flow alarm)."""

    pressure_kpa: tuple[float, float] | None = None
    methane_lel: float | None = None
    flow_m3h: float | None = None


DEFAULT_THRESHOLDS: Mapping[str, Thresholds] = {
    "source": Thresholds(pressure_kpa=(400.0, 1600.0)),
    "pipeline": Thresholds(pressure_kpa=(10.0, 400.0), methane_lel=25.0),
    "meter": Thresholds(pressure_kpa=(1.0, 3.0), methane_lel=25.0, flow_m3h=160.0),
}


def alarms_of(
    reading: Mapping[str, Any], index: int, thresholds: Mapping[str, Thresholds]
) -> list[dict[str, Any]]:
    """The alarms of one (checked) reading: a leak, a pressure out of band, then a flow too high."""
    levels = thresholds.get(reading["class"])
    if levels is None:
        return []
    values = reading["values"]
    base = {
        "index": index,
        "data_time": reading["time"],
        "asset": reading["asset"],
        "asset_class": reading["class"],
    }
    out: list[dict[str, Any]] = []
    methane = values.get("methane")
    if methane is not None and levels.methane_lel is not None and methane["value"] >= levels.methane_lel:
        out.append({**base, "type": "leak", "quantity": "methane", **methane, "limit": levels.methane_lel})
    pressure = values.get("pressure")
    if pressure is not None and levels.pressure_kpa is not None:
        factor = UNITS["pressure"][pressure["unit"]]
        low, high = levels.pressure_kpa
        kpa = pressure["value"] * factor
        if kpa < low or kpa > high:
            kind, limit = ("pressure_low", low) if kpa < low else ("pressure_high", high)
            # The limit in the unit the sensor reported, beside the reading's own value.
            out.append({**base, "type": kind, "quantity": "pressure", **pressure, "limit": limit / factor})
    flow = values.get("flow")  # m³/h, its one unit
    if flow is not None and levels.flow_m3h is not None and flow["value"] > levels.flow_m3h:
        out.append({**base, "type": "flow_high", "quantity": "flow", **flow, "limit": levels.flow_m3h})
    return out
