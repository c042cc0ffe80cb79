"""Gas-network test data: loggers registered in GasNetwork, series of readings, ``gas.batch`` payloads."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from web3 import Web3

from adapters.abc import AdaptContext
from adapters.gas.payload import check_reading
from provenance.chain.contracts import at, chain_key, transact
from provenance.manifest import Manifest
from tests.kit.gateway import batch_payload, iso_second

CLASSES = ("source", "pipeline", "meter")


def register_logger(network: Manifest, org: str = "gas-utility") -> str:
    """A data logger of its own (periods only move forward, and every gateway of a session shares the
    chain), registered in GasNetwork by the utility ``org``; its id."""
    logger = "DL-" + secrets.token_hex(6).upper()
    w3 = Web3(Web3.HTTPProvider(network.rpc_url))
    gas = at(w3, "GasNetwork", network.contracts["GasNetwork"])
    transact(w3, gas.functions.registerLogger(chain_key("logger", logger), b"\0" * 32), network.account(org))
    return logger


def normal(i: int, cls: str) -> dict[str, Any]:
    """Calm values of reading ``i`` of an asset of ``cls``: within the default thresholds, no methane."""
    if cls == "source":
        return {
            "pressure": {"value": round(0.8 + (i % 10) / 100, 2), "unit": "MPa"},
            "flow": {"value": 5000 + i, "unit": "m³/h"},
            "temperature": {"value": 12.5, "unit": "°C"},
        }
    if cls == "pipeline":
        return {
            "pressure": {"value": 250 + i % 50, "unit": "kPa"},
            "flow": {"value": 820.5, "unit": "m³/h"},
            "methane": {"value": 0, "unit": "%LEL"},
        }
    return {
        "volume": {"value": 1234.567 + i / 1000, "unit": "m³"},
        "pressure": {"value": 2.1, "unit": "kPa"},
        "methane": {"value": 1.5, "unit": "%LEL"},
    }


def gas_series(
    start: datetime, n: int, *, vary: Callable[[int, dict[str, Any]], None] | None = None
) -> list[dict[str, Any]]:
    """``n`` readings, one a second from ``start``, of three assets in turn (a source, a pipeline sensor, a
    meter); ``vary(i, reading)`` changes reading i."""
    out = []
    for i in range(n):
        cls = CLASSES[i % 3]
        reading = {
            "asset": f"{cls[:3].upper()}-{i % 3:04d}",
            "class": cls,
            "time": iso_second(start + timedelta(seconds=i)),
            "values": normal(i, cls),
        }
        if vary is not None:
            vary(i, reading)
        out.append(reading)
    return out


def gas_batch(items: list[Any], logger: str, start: datetime, end: datetime, **head: Any) -> dict[str, Any]:
    """A ``gas.batch`` submission payload of ``logger``: the head it signs and the readings."""
    return batch_payload(
        ("logger", logger), items, start, end, lambda i, r: check_reading(r, i, AdaptContext())[1], **head
    )
