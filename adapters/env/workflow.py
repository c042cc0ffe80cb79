"""The environmental-monitoring workflow. A reading is checked against the station registry and changes no
state (so readings never wait for one another and run their rule once, before the write). A batch also
moves its station's period forward (state ``station:<MN>``), keeps its readings (state
``batch:<MN>:<period_end>``, what the reads serve) and anchors its root with ``EnvMonitoring.anchorBatch``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from adapters.abc import AdaptContext, AdaptedPayload, Panel, Payload, Provision, Route, SetupCall
from adapters.batch.intake import MAX_BATCH
from adapters.batch.spec import BatchSpec
from adapters.batch.workflow import BatchWorkflow
from adapters.env.alerts import DEFAULT_LIMITS
from adapters.env.batch import SPEC, BatchAdapter
from adapters.env.domain import BATCH, CONTRACT, DOMAIN, KINDS
from adapters.env.panels import PANELS
from adapters.env.payload import EnvAdapter
from adapters.env.routes import routes
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

    def __init__(
        self,
        *,
        max_batch: int = MAX_BATCH,
        limits: Mapping[str, Mapping[str, Mapping[str, float]]] = DEFAULT_LIMITS,
    ) -> None:
        self._batches = BatchAdapter(max_batch, limits)
        self.routes: Sequence[Route] = routes()

    def adapt(self, kind: str, payload: Payload, *, context: AdaptContext | None = None) -> AdaptedPayload:
        if kind == BATCH:
            return self.adapt_batch(payload, context)
        return super().adapt(kind, payload, context=context)

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
