"""The environmental-monitoring workflow. A reading is checked against the station registry and changes no
state (so readings never wait for one another and run their rule once, before the write). A batch also
moves its station's period forward (state ``station:<MN>``), keeps its readings (state
``batch:<MN>:<period_end>``, what the reads serve) and anchors its root with ``EnvMonitoring.anchorBatch``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters._common import rfc3339_utc
from adapters.abc import (
    AdaptContext,
    AdaptedPayload,
    ChainView,
    ContractCall,
    Panel,
    Payload,
    Provision,
    RecordFacts,
    Route,
    SetupCall,
    State,
    Step,
)
from adapters.env.alerts import DEFAULT_LIMITS
from adapters.env.batch import MAX_BATCH, BatchAdapter
from adapters.env.chain import station
from adapters.env.domain import BATCH, CONTRACT, DOMAIN, KINDS
from adapters.env.errors import (
    BatchPeriodInvalid,
    BatchPeriodOverlap,
    StationInactive,
    StationNotOperator,
    StationUnknown,
)
from adapters.env.panels import PANELS
from adapters.env.payload import EnvAdapter
from adapters.env.routes import routes
from provenance.chain.contracts import ContractReverted, chain_key, org_id
from provenance.timestamps import parse_rfc3339
from provenance.types import Role

# EnvMonitoring.MAX_CLOCK_LEAD: how far past the chain's clock a batch period may end.
MAX_CLOCK_LEAD = timedelta(hours=1)


def station_key(mn: str) -> str:
    return f"station:{mn}"


def batch_key(mn: str, period_end: str) -> str:
    """A batch's state key; a station's batches sort by period (RFC 3339 UTC in whole seconds, and periods
    never overlap), so the reads find those of a time range from its start."""
    return f"batch:{mn}:{period_end}"


def _unix(instant: str) -> int:
    return int(parse_rfc3339(instant).timestamp())


class EnvWorkflow(EnvAdapter):
    """``env.reading`` and ``env.batch`` by the organisation operating the monitoring point."""

    domain = DOMAIN
    kinds: tuple[str, ...] = KINDS
    contracts: tuple[str, ...] = (CONTRACT,)
    watched: tuple[str, ...] = (CONTRACT,)
    panels: Sequence[Panel] = PANELS

    def __init__(
        self,
        *,
        max_batch: int = MAX_BATCH,
        limits: Mapping[str, Mapping[str, Mapping[str, float]]] = DEFAULT_LIMITS,
    ) -> None:
        self._batches = BatchAdapter(max_batch, limits)
        self.routes: Sequence[Route] = routes()

    @property
    def max_batch(self) -> int:
        return self._batches.max_batch

    def adapt(self, kind: str, payload: Payload, *, context: AdaptContext | None = None) -> AdaptedPayload:
        if kind == BATCH:
            return self._batches.adapt(payload, context or AdaptContext())
        return super().adapt(kind, payload, context=context)

    def keys(self, kind: str, facts: Mapping[str, Any]) -> tuple[str, ...]:
        if kind != BATCH:
            return ()
        return station_key(facts["mn"]), batch_key(facts["mn"], facts["period_end"])

    def transition(
        self, record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, now: datetime
    ) -> Step:
        """A reading's or batch's monitoring point is registered in EnvMonitoring, active, operated by its
        signer; a batch's period follows the station's last and ends within the chain's clock lead."""
        mn = str(record.facts["mn"])
        found = station(chain, mn)
        if found is None:
            raise StationUnknown(
                f"monitoring point {mn!r} is not registered in EnvMonitoring", details={"mn": mn}
            )
        if found.operator != record.org:
            raise StationNotOperator(
                f"monitoring point {mn!r} is operated by {found.operator!r}, not {record.org!r}",
                details={"mn": mn, "operator": found.operator, "org": record.org},
            )
        if not found.active:
            raise StationInactive(f"monitoring point {mn!r} is suspended", details={"mn": mn})
        if record.kind != BATCH:
            return Step()
        return self._batch(record, states, chain, found.last_period_end)

    def _batch(
        self, record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, anchored_end: int
    ) -> Step:
        f = record.facts
        mn, start, end = f["mn"], f["period_start"], f["period_end"]
        latest = chain.clock() + MAX_CLOCK_LEAD
        if parse_rfc3339(end) > latest:
            raise BatchPeriodInvalid(
                f"the period ends at {end}, later than the chain's clock allows ({latest.isoformat()})",
                details={"field": "period_end", "period_end": end},
            )
        last = states.get(station_key(mn))
        last_end = last.data.get("period_end") if last is not None else None
        # The station's last batch here, or on chain (anchored through another gateway): periods only move
        # forward, so anchorBatch never reverts PeriodOverlap for a batch accepted here.
        if anchored_end > 0 and (last_end is None or _unix(last_end) < anchored_end):
            last_end = rfc3339_utc(datetime.fromtimestamp(anchored_end, UTC))
        if last_end is not None and start < last_end:
            raise BatchPeriodOverlap(
                f"the period starts at {start}, before the end of the station's last batch ({last_end})",
                details={"period_start": start, "last_period_end": last_end},
            )
        batches = int(last.data.get("batches", 0)) if last is not None else 0
        readings = record.detail.get("readings", ())
        return Step(
            writes={
                station_key(mn): State("active", {"period_end": end, "batches": batches + 1}),
                batch_key(mn, end): State(
                    "accepted",
                    {
                        "record": record.record_id,
                        "period_start": start,
                        "period_end": end,
                        "count": f["count"],
                        "root": f["root"],
                        "readings": list(readings),
                        "times": list(record.detail.get("times", ())),
                        "alerts": list(record.detail.get("alerts", ())),
                    },
                ),
            }
        )

    def provision(self, network: Provision) -> Sequence[SetupCall]:
        # Stations are registered by the environment bureau, each to the organisation that operates it.
        owned = [(org.id, mn) for org in network.orgs for mn in org.stations]
        if not owned:
            return ()
        bureau = next((o for o in network.orgs if o.role == Role.ENV_BUREAU), None)
        if bureau is None:
            raise ValueError("stations need an env_bureau organisation to register them")
        fns = network.contracts[CONTRACT].functions
        return [
            SetupCall(bureau.id, fns.registerStation(chain_key("station", mn), org_id(operator), b"\0" * 32))
            for operator, mn in owned
        ]

    def contract_call(self, record: RecordFacts) -> ContractCall | None:
        if record.kind != BATCH:
            return None  # readings go through the log only
        f = record.facts
        return ContractCall(
            CONTRACT,
            "anchorBatch",
            (
                chain_key("station", f["mn"]),
                _unix(f["period_start"]),
                _unix(f["period_end"]),
                bytes.fromhex(f["root"]),
                f["count"],
            ),
        )

    def already_applied(self, record: RecordFacts, revert: ContractReverted, chain: ChainView) -> bool:
        """A batch sent again after a crash reverts PeriodOverlap: applied if the station's last anchor is
        this batch's (period, root, count)."""
        if record.kind != BATCH or revert.error != "PeriodOverlap":
            return False
        f = record.facts
        sid = chain_key("station", f["mn"])
        n = int(chain.call(CONTRACT, "batchCount", sid))
        if n == 0:
            return False
        last = chain.call(CONTRACT, "batchAt", sid, n - 1)
        return (int(last[0]), int(last[1]), bytes(last[2]), int(last[3])) == (
            _unix(f["period_start"]),
            _unix(f["period_end"]),
            bytes.fromhex(f["root"]),
            f["count"],
        )
