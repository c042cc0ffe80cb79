"""The gas-network workflow: a batch's data logger is registered in GasNetwork, active and operated by the
signing utility; its period follows the logger's last (``adapters.batch``); it keeps its readings and
alarms (state ``batch:<logger>:<period_end>``, what the reads serve) and anchors its root with
``GasNetwork.anchorBatch``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

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
from adapters.batch.chain import operated_station
from adapters.batch.intake import MAX_BATCH, anchor_call, anchored_already, batch_keys, batch_step
from adapters.errors import KindUnknown
from adapters.gas.alarms import DEFAULT_THRESHOLDS, Thresholds
from adapters.gas.batch import SPEC, GasBatchAdapter
from adapters.gas.domain import BATCH, CONTRACT, DOMAIN, KINDS
from adapters.gas.payload import READ_POLICY
from adapters.gas.routes import routes
from provenance.chain.contracts import ContractReverted, chain_key
from provenance.types import Role


class GasWorkflow:
    """``gas.batch`` by the gas utility operating the data logger."""

    domain = DOMAIN
    kinds: tuple[str, ...] = KINDS
    read_policy = READ_POLICY
    contracts: tuple[str, ...] = (CONTRACT,)  # what the network deploys for the domain
    watched: tuple[str, ...] = (CONTRACT,)
    panels: Sequence[Panel] = ()

    def __init__(
        self, *, max_batch: int = MAX_BATCH, thresholds: Mapping[str, Thresholds] = DEFAULT_THRESHOLDS
    ) -> None:
        self._batches = GasBatchAdapter(max_batch, thresholds)
        self.routes: Sequence[Route] = routes()

    @property
    def max_batch(self) -> int:
        return self._batches.max_batch

    def adapt(self, kind: str, payload: Payload, *, context: AdaptContext | None = None) -> AdaptedPayload:
        if kind != BATCH:
            raise KindUnknown(f"the gas domain has no record kind {kind!r}", details={"field": "kind"})
        return self._batches.adapt(payload, context or AdaptContext())

    def keys(self, kind: str, facts: Mapping[str, Any]) -> tuple[str, ...]:
        return batch_keys(SPEC, facts)

    def transition(
        self, record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, now: datetime
    ) -> Step:
        found = operated_station(chain, SPEC, record)
        return batch_step(SPEC, record, states, chain, found.last_period_end)

    def provision(self, network: Provision) -> Sequence[SetupCall]:
        # A gas utility registers its own data loggers (its ``stations``), each operated by itself.
        fns = network.contracts[CONTRACT].functions
        return [
            SetupCall(org.id, fns.registerLogger(chain_key(SPEC.prefix, logger), b"\0" * 32))
            for org in network.orgs
            if org.role == Role.GAS_UTILITY
            for logger in org.stations
        ]

    def contract_call(self, record: RecordFacts) -> ContractCall | None:
        return anchor_call(SPEC, record)

    def already_applied(self, record: RecordFacts, revert: ContractReverted, chain: ChainView) -> bool:
        """A batch sent again after a crash: applied if the logger's last anchor is this batch's."""
        return anchored_already(SPEC, record, revert, chain)
