"""A batch's source on chain: a station of a ``SensorStations`` contract (EnvMonitoring's monitoring points,
GasNetwork's data loggers) and the organisation operating it. The rule reads it through the registry cache
(until the contract's next event: registrations and suspensions are rare, batches are many)."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.abc import ChainView, RecordFacts
from adapters.batch.spec import BatchSpec
from provenance.chain.contracts import chain_key


@dataclass(frozen=True, slots=True)
class Station:
    """A station as its contract holds it: the organisation that operates it."""

    id: str
    operator: str
    active: bool
    last_period_end: int = 0  # unix seconds: the end of its last anchored batch (0: none yet)


def station(chain: ChainView, spec: BatchSpec, source: str) -> Station | None:
    """The station ``source`` as the domain's contract registered it, or None."""
    st = chain.lookup(spec.contract, "stationOf", chain_key(spec.prefix, source))
    operator = bytes(st[0]).rstrip(b"\0")
    if not operator:
        return None
    return Station(
        id=source,
        operator=operator.decode("utf-8", "replace"),
        active=bool(st[2]),
        last_period_end=int(st[4]),
    )


def operated_station(chain: ChainView, spec: BatchSpec, record: RecordFacts) -> Station:
    """The record's station, registered, operated by the record's signer and active; else the domain's
    error (``spec.errors``: unknown, not its operator, suspended)."""
    source = str(record.facts[spec.source])
    unknown, not_operator, inactive = spec.errors
    found = station(chain, spec, source)
    if found is None:
        raise unknown(
            f"{spec.noun} {source!r} is not registered in {spec.contract}", details={spec.source: source}
        )
    if found.operator != record.org:
        raise not_operator(
            f"{spec.noun} {source!r} is operated by {found.operator!r}, not {record.org!r}",
            details={spec.source: source, "operator": found.operator, "org": record.org},
        )
    if not found.active:
        raise inactive(f"{spec.noun} {source!r} is suspended", details={spec.source: source})
    return found
