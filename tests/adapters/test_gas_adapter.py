"""The gas domain's adapter: units per quantity, quantities per asset class, and alarms by the thresholds
a deployment configures per asset class (the gateway tests run the defaults)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters import adapt, registry
from adapters.abc import AdaptContext
from adapters.gas import GasWorkflow
from adapters.gas.alarms import Thresholds
from adapters.gas.errors import GasQuantityInvalid, GasReadingInvalid, GasUnitInvalid
from tests.kit.gas import gas_batch, gas_series

START = datetime(2026, 12, 6, 8, tzinfo=UTC)


def _batch(items: list[dict[str, Any]]) -> dict[str, Any]:
    return gas_batch(items, "DL-1", START, START + timedelta(minutes=10))


def test_registered_as_one_domain() -> None:
    assert registry.roles("gas.batch") == frozenset({"gas_utility"})
    assert registry.workflow_for("gas.batch").domain.name == "gas"
    a = adapt("gas.batch", _batch(gas_series(START, 9)))
    assert a.subject == "logger:DL-1" and set(a.facts) == {
        "logger",
        "period_start",
        "period_end",
        "count",
        "root",
    }
    assert len(a.detail["readings"]) == 9 and a.detail["alerts"] == []  # calm series: no alarm


def test_thresholds_are_configured_per_asset_class() -> None:
    """The same readings under other thresholds: a meter's methane at 10 %LEL is a leak only where the
    deployment sets its meters' level at 10; a source's 0.8 MPa is out of a 1 to 2 MPa band."""
    items = gas_series(START, 6)
    items[2]["values"]["methane"]["value"] = 10  # a meter
    assert adapt("gas.batch", _batch(items)).detail["alerts"] == []
    strict = GasWorkflow(
        thresholds={
            "meter": Thresholds(methane_lel=10.0),
            "source": Thresholds(pressure_kpa=(1000.0, 2000.0)),
        }
    )
    alarms = strict.adapt("gas.batch", _batch(items)).detail["alerts"]
    assert [(a["index"], a["type"], a["value"], a["unit"], a["limit"]) for a in alarms] == [
        (0, "pressure_low", 0.8, "MPa", 1.0),
        (2, "leak", 10, "%LEL", 10.0),
        (3, "pressure_low", 0.83, "MPa", 1.0),
    ]  # pipelines: no thresholds in this configuration, no alarm


@pytest.mark.parametrize(
    ("index", "values", "error", "field"),
    [
        (1, {"pressure": {"value": 3, "unit": "psi"}}, GasUnitInvalid, "values.pressure.unit"),
        (2, {"volume": {"value": 3, "unit": "L"}}, GasUnitInvalid, "values.volume.unit"),
        (0, {"methane": {"value": 3, "unit": "%LEL"}}, GasQuantityInvalid, "values.methane"),
        (0, {"volume": {"value": 3, "unit": "m³"}}, GasQuantityInvalid, "values.volume"),
        (1, {"methane": {"value": 101, "unit": "%LEL"}}, GasReadingInvalid, "values.methane.value"),
        (1, {"flow": {"value": -1, "unit": "m³/h"}}, GasReadingInvalid, "values.flow.value"),
        (1, {"flow": {"value": True, "unit": "m³/h"}}, GasReadingInvalid, "values.flow.value"),
        (1, {"flow": {"value": 1, "unit": "m³/h", "at": "x"}}, GasReadingInvalid, "values.flow"),
    ],
)
def test_units_quantities_and_values(index: int, values: dict[str, Any], error: type, field: str) -> None:
    items = gas_series(START, 3)
    items[index]["values"].update(values)
    with pytest.raises(error) as caught:
        adapt("gas.batch", _batch(items))
    assert caught.value.details["index"] == index and caught.value.details["field"] == field


def test_a_reading_from_the_future_is_refused() -> None:
    items = gas_series(START, 3)
    ctx = AdaptContext(now=START + timedelta(seconds=1), max_clock_skew=timedelta(0))
    with pytest.raises(GasReadingInvalid) as caught:
        adapt("gas.batch", _batch(items), ctx)
    assert caught.value.details == {"index": 2, "field": "time"}
