"""The environmental-monitoring workflow. A reading or batch is checked against the station registry. A
single reading is held to the batches' guarantees (``adapters.env.single``): recorded once, after the
station's last batch period, within the backdating window, kept for the reads with its alerts. A batch
moves its station's period forward (state ``station:<MN>``), keeps its readings (state
``batch:<MN>:<period_end>``, what the reads serve) and anchors its root with ``EnvMonitoring.anchorBatch``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from adapters._common import MAX_BACKDATE, adapted_bytes
from adapters.abc import (
    AdaptContext,
    AdaptedPayload,
    ChainView,
    Panel,
    Payload,
    Provision,
    RecordFacts,
    Route,
    SetupCall,
    State,
    Step,
)
from adapters.batch.chain import operated_station
from adapters.batch.intake import MAX_BATCH, batch_keys, batch_step
from adapters.batch.spec import BatchSpec
from adapters.batch.workflow import BatchWorkflow
from adapters.env import fastpath
from adapters.env.batch import SPEC, BatchAdapter
from adapters.env.domain import BATCH, CONTRACT, DOMAIN, KINDS, READING
from adapters.env.limits import DEFAULT_LIMITS, Limits
from adapters.env.panels import PANELS
from adapters.env.payload import EnvAdapter
from adapters.env.routes import routes
from adapters.env.single import single_keys, single_step, with_class
from provenance.chain.contracts import chain_key, org_id
from provenance.types import Role


class EnvWorkflow(BatchWorkflow, EnvAdapter):
    """``env.reading`` and ``env.batch`` by the organisation operating the monitoring point."""

    domain = DOMAIN
    kinds: tuple[str, ...] = KINDS
    contracts: tuple[str, ...] = (CONTRACT,)
    watched: tuple[str, ...] = (CONTRACT,)
    panels: Sequence[Panel] = PANELS
    spec: ClassVar[BatchSpec] = SPEC
    _batches: BatchAdapter  # its limits judge single readings too

    def __init__(
        self,
        *,
        max_batch: int = MAX_BATCH,
        limits: Limits = DEFAULT_LIMITS,
        max_backdate: timedelta = MAX_BACKDATE,
    ) -> None:
        self._batches = BatchAdapter(max_batch, limits)
        self.max_backdate = max_backdate  # how far back a single reading may be dated
        self.routes: Sequence[Route] = routes()

    def adapt(self, kind: str, payload: Payload, *, context: AdaptContext | None = None) -> AdaptedPayload:
        if kind == BATCH:
            return self.adapt_batch(payload, context)
        if kind == READING and type(payload) is bytes and payload[:2] == b"##" and payload.isascii():
            # A packet of a shape met before: one match, its canonical bytes from the shape's template
            # (``fastpath``); anything it does not take, the codec decides, as for a batch's readings.
            hit = fastpath.reading(payload.decode("ascii"), context or AdaptContext())
            if hit is not None:
                return adapted_bytes(kind, f"station:{hit.mn}", hit.canonical, hit.facts())
        return super().adapt(kind, payload, context=context)

    def keys(self, kind: str, facts: Mapping[str, Any]) -> tuple[str, ...]:
        return batch_keys(SPEC, facts) if kind == BATCH else single_keys(facts)

    def transition(
        self, record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, now: datetime
    ) -> Step:
        """A reading's or batch's monitoring point is registered in EnvMonitoring, active, operated by its
        signer; a batch's period follows the station's last and ends within the chain's clock lead; a single
        reading follows the station's last batch period and is recorded once."""
        found = operated_station(chain, SPEC, record)
        key = SPEC.source_key(record.facts["mn"])
        if record.kind != BATCH:
            limits = self._batches.limits
            step = single_step(record, states, found.last_period_end, now, self.max_backdate, limits)
            return with_class(step, states.get(key), key, record.facts["st"])
        step = batch_step(SPEC, record, states, chain, found.last_period_end)
        return with_class(step, states.get(key), key, record.detail.get("st"))

    def provision(self, network: Provision) -> Sequence[SetupCall]:
        # Stations are registered by the environment bureau, each to the organisation that operates it
        # (a gas utility's ``stations`` are its data loggers: GasNetwork's).
        owned = [
            (org.id, mn) for org in network.orgs if org.role == Role.MONITORING_STATION for mn in org.stations
        ]
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
