"""The gas-network workflow: a batch's data logger is registered in GasNetwork, active and operated by the
signing utility; its period follows the logger's last (``adapters.batch``); it keeps its readings and
alarms (state ``batch:<logger>:<period_end>``, what the reads serve), holds each asset to the class its
logger first recorded it with (``assets.py``, state ``logger:<id>``) and anchors its root with
``GasNetwork.anchorBatch``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar

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
from adapters.batch.intake import MAX_BATCH
from adapters.batch.spec import BatchSpec
from adapters.batch.workflow import BatchWorkflow
from adapters.errors import KindUnknown
from adapters.gas.alarms import DEFAULT_THRESHOLDS, Thresholds
from adapters.gas.assets import with_asset_classes
from adapters.gas.batch import SPEC, GasBatchAdapter
from adapters.gas.domain import BATCH, CONTRACT, DOMAIN, KINDS
from adapters.gas.payload import READ_POLICY
from adapters.gas.routes import routes
from provenance.chain.contracts import chain_key
from provenance.types import Role


class GasWorkflow(BatchWorkflow):
    """``gas.batch`` by the gas utility operating the data logger."""

    domain = DOMAIN
    kinds: tuple[str, ...] = KINDS
    read_policy = READ_POLICY
    contracts: tuple[str, ...] = (CONTRACT,)  # what the network deploys for the domain
    watched: tuple[str, ...] = (CONTRACT,)
    panels: Sequence[Panel] = ()
    spec: ClassVar[BatchSpec] = SPEC

    def __init__(
        self, *, max_batch: int = MAX_BATCH, thresholds: Mapping[str, Thresholds] = DEFAULT_THRESHOLDS
    ) -> None:
        self._batches = GasBatchAdapter(max_batch, thresholds)
        self.routes: Sequence[Route] = routes()

    def adapt(self, kind: str, payload: Payload, *, context: AdaptContext | None = None) -> AdaptedPayload:
        if kind != BATCH:
            raise KindUnknown(f"the gas domain has no record kind {kind!r}", details={"field": "kind"})
        return self.adapt_batch(payload, context)

    def transition(
        self, record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, now: datetime
    ) -> Step:
        """The batch rule (``BatchWorkflow``), then each asset held to the class its logger recorded it
        with; a new asset's class is pinned."""
        step = super().transition(record, states, chain, now)
        if record.kind != BATCH:
            return step
        key = SPEC.source_key(record.facts[SPEC.source])
        return with_asset_classes(step, states.get(key), key, record.detail.get("classes", {}))

    def provision(self, network: Provision) -> Sequence[SetupCall]:
        # A gas utility registers its own data loggers (its ``stations``), each operated by itself.
        fns = network.contracts[CONTRACT].functions
        return [
            SetupCall(org.id, fns.registerLogger(chain_key(SPEC.prefix, logger), b"\0" * 32))
            for org in network.orgs
            if org.role == Role.GAS_UTILITY
            for logger in org.stations
        ]
