"""The environmental-monitoring domain on chain: ``EnvMonitoring`` holds the monitoring points and the
organisation operating each. Readings make no call; their rule reads the station registry (cached until
EnvMonitoring's next event: registrations and suspensions are rare, readings are many)."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.abc import ChainView
from adapters.env.domain import CONTRACT
from provenance.chain.contracts import chain_key


@dataclass(frozen=True, slots=True)
class Station:
    """A monitoring point (MN) as EnvMonitoring holds it: the organisation that operates it."""

    mn: str
    operator: str
    active: bool
    last_period_end: int = 0  # unix seconds: the end of its last anchored batch (0: none yet)


def station(chain: ChainView, mn: str) -> Station | None:
    """The monitoring point ``mn`` as EnvMonitoring registered it, or None."""
    st = chain.lookup(CONTRACT, "stationOf", chain_key("station", mn))
    operator = bytes(st[0]).rstrip(b"\0")
    if not operator:
        return None
    return Station(
        mn=mn,
        operator=operator.decode("utf-8", "replace"),
        active=bool(st[2]),
        last_period_end=int(st[4]),
    )
