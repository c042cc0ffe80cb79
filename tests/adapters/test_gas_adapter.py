"""The gas domain's adapter: units per quantity, quantities per asset class, each asset of one class in a
batch, pressures and flows within what their class can read, and alarms by the thresholds a deployment
configures per asset class (the gateway tests run the defaults)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters import adapt, registry
from adapters.abc import AdaptContext
from adapters.gas import GasWorkflow
from adapters.gas.alarms import Thresholds
from adapters.gas.errors import (
    AssetClassMismatch,
    GasAssetInvalid,
    GasQuantityInvalid,
    GasReadingInvalid,
    GasUnitInvalid,
    GasValueImplausible,
)
from provenance.errors import PayloadInvalid
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


def test_a_meters_flow_over_its_class_level_alarms() -> None:
    """A customer meter's flow over 160 m³/h (the largest diaphragm meter's Q_max) is possible, so accepted,
    and alarms ``flow_high``; at the level, or a pipeline's, it does not (no flow level for pipelines)."""
    items = gas_series(START, 6)
    items[2]["values"]["flow"] = {"value": 160, "unit": "m³/h"}
    items[4]["values"]["flow"] = {"value": 20_000, "unit": "m³/h"}  # a pipeline
    items[5]["values"]["flow"] = {"value": 20_000, "unit": "m³/h"}  # a meter
    alarms = adapt("gas.batch", _batch(items)).detail["alerts"]
    assert [(a["index"], a["type"], a["quantity"], a["value"], a["unit"], a["limit"]) for a in alarms] == [
        (5, "flow_high", "flow", 20_000, "m³/h", 160.0)
    ]
    assert alarms[0]["asset"] == "MET-0002" and alarms[0]["asset_class"] == "meter"


def test_asset_ids_are_strict_and_compared_without_case_or_separator() -> None:
    """An asset id is letter-or-digit runs joined by single '-' or '_' (64 at most): a trailing dot, a space,
    a doubled or leading dash is GAS_ASSET_INVALID naming the reading. Case and '-' against '_' make no
    other asset: a variant of an asset read as another class is ASSET_CLASS_MISMATCH, and at the same
    instant it repeats the reading (seventh attack, finding 4)."""
    for good in ("PIPE-0EC5", "a", "A_1-b", "9" * 64):
        adapt("gas.batch", _batch([{**gas_series(START, 1)[0], "asset": good}]))
    for bad in ("PIPE-0EC5.", "PIPE.0EC5", " PIPE-0EC5", "PIPE--0EC5", "-PIPE", "PIPE_", "9" * 65, "", 7):
        with pytest.raises(GasAssetInvalid) as caught:
            adapt("gas.batch", _batch([{**gas_series(START, 1)[0], "asset": bad}]))
        assert caught.value.code == "GAS_ASSET_INVALID"
        assert caught.value.details["index"] == 0 and caught.value.details["field"] == "asset", bad
    items = gas_series(START, 3)  # SOU-0000, PIP-0001, MET-0002
    items[2] = {**items[1], "asset": "pip_0001", "time": items[2]["time"]}
    assert adapt("gas.batch", _batch(items)).detail["classes"]["PIP-0001"] == ["pipeline", 1, "PIP-0001"]
    items[2] = {**items[0], "asset": "sou-0000", "class": "pipeline", "time": items[2]["time"]}
    with pytest.raises(AssetClassMismatch) as hop:
        adapt("gas.batch", _batch(items))
    assert hop.value.details["asset"] == "sou-0000" and hop.value.details["asset_class"] == "source"
    items[2] = {**items[1], "asset": "Pip-0001"}  # PIP-0001's own instant
    with pytest.raises(PayloadInvalid) as again:
        adapt("gas.batch", _batch(items))
    assert again.value.code == "READING_DUPLICATE" and again.value.details["first"] == 1


@pytest.mark.parametrize(
    ("index", "quantity", "ceiling", "over", "stated"),
    [
        (0, "pressure", {"value": 18, "unit": "MPa"}, {"value": 18_000.5, "unit": "kPa"}, 18_000),  # source
        (1, "pressure", {"value": 6000, "unit": "kPa"}, {"value": 6.001, "unit": "MPa"}, 6),  # pipeline
        (2, "pressure", {"value": 6, "unit": "MPa"}, {"value": 6.5, "unit": "MPa"}, 6),  # meter
        (0, "flow", {"value": 2_500_000, "unit": "m³/h"}, {"value": 2_500_001, "unit": "m³/h"}, 2_500_000),
        (1, "flow", {"value": 2_500_000, "unit": "m³/h"}, {"value": 1e9, "unit": "m³/h"}, 2_500_000),
        (2, "flow", {"value": 25_000, "unit": "m³/h"}, {"value": 25_000.5, "unit": "m³/h"}, 25_000),
    ],
)
def test_pressures_and_flows_within_what_their_class_can_read(
    index: int, quantity: str, ceiling: dict[str, Any], over: dict[str, Any], stated: float
) -> None:
    """At its class's ceiling a value is accepted (an alarm, if over its band); over it, in either unit,
    refused GAS_VALUE_IMPLAUSIBLE naming the reading and the ceiling in the unit sent (``stated``)."""
    items = gas_series(START, 3)
    items[index]["values"][quantity] = ceiling
    adapt("gas.batch", _batch(items))
    items[index]["values"][quantity] = over
    with pytest.raises(GasValueImplausible) as caught:
        adapt("gas.batch", _batch(items))
    assert caught.value.details == {
        "index": index,
        "field": f"values.{quantity}.value",
        "class": items[index]["class"],
        "quantity": quantity,
        **over,
        "ceiling": pytest.approx(stated),
    }


def test_nan_or_infinity_is_no_value() -> None:
    """JSON has no NaN nor Infinity: a batch that carries them (Python's json writes them) does not load."""
    for bad in ("NaN", "Infinity", "-Infinity"):
        text = json.dumps(_batch(gas_series(START, 3))).replace('"value": 820.5', f'"value": {bad}', 1)
        assert bad in text
        with pytest.raises(PayloadInvalid):
            adapt("gas.batch", text.encode())


def test_an_asset_has_one_class_in_a_batch() -> None:
    """The same asset read as another class later in the batch is refused, naming that reading and the
    first; the classes of the batch's assets go to the workflow with their first readings."""
    items = gas_series(START, 6)
    assert adapt("gas.batch", _batch(items)).detail["classes"] == {
        "SOU-0000": ["source", 0, "SOU-0000"],
        "PIP-0001": ["pipeline", 1, "PIP-0001"],
        "MET-0002": ["meter", 2, "MET-0002"],
    }
    items[4] = {**items[4], "asset": "SOU-0000"}  # a pipeline reading of the source
    with pytest.raises(AssetClassMismatch) as caught:
        adapt("gas.batch", _batch(items))
    assert caught.value.details == {
        "index": 4,
        "field": "class",
        "asset": "SOU-0000",
        "value": "pipeline",
        "asset_class": "source",
        "first": 0,
    }
    assert caught.value.http_status == 409
