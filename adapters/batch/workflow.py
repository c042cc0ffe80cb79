"""The part of a sensor domain's workflow that its batch kind makes: the submission's checks (the domain's
batch adapter), the states it reads and writes, the rule (the source registered, operated by the signer
and active; the period moving forward) and the anchor in the domain's contract. A domain with items
that are also records alone (``env.reading``) adapts those itself: they pass its source's rule alone."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Protocol

from adapters.abc import (
    AdaptContext,
    AdaptedPayload,
    ChainView,
    ContractCall,
    DemoWriter,
    RecordFacts,
    State,
    Step,
)
from adapters.batch.chain import operated_station
from adapters.batch.intake import anchor_call, anchored_already, batch_keys, batch_step
from adapters.batch.spec import BatchSpec
from provenance.chain.contracts import ContractReverted


class BatchChecks(Protocol):
    """How a domain checks a batch submission whole (``intake.adapt_batch`` with its item check)."""

    max_batch: int

    def adapt(self, payload: Any, ctx: AdaptContext) -> AdaptedPayload: ...


class BatchWorkflow:
    """A workflow's batch kind (``spec.kind``); its other kinds change no state and anchor nothing."""

    spec: ClassVar[BatchSpec]
    _batches: BatchChecks

    @property
    def max_batch(self) -> int:
        return self._batches.max_batch

    def adapt_batch(self, payload: Any, context: AdaptContext | None) -> AdaptedPayload:
        return self._batches.adapt(payload, context or AdaptContext())

    def keys(self, kind: str, facts: Mapping[str, Any]) -> tuple[str, ...]:
        return batch_keys(self.spec, facts) if kind == self.spec.kind else ()

    def transition(
        self, record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, now: datetime
    ) -> Step:
        """A record's source is registered in the domain's contract, active, operated by its signer; a
        batch's period follows the source's last and ends within the chain's clock lead."""
        found = operated_station(chain, self.spec, record)
        if record.kind != self.spec.kind:
            return Step()
        return batch_step(self.spec, record, states, chain, found.last_period_end)

    def contract_call(self, record: RecordFacts) -> ContractCall | None:
        return anchor_call(self.spec, record) if record.kind == self.spec.kind else None

    def demo(self, writer: DemoWriter) -> str | None:
        return None  # a station's readings need its registered logger: no demo records

    def already_applied(self, record: RecordFacts, revert: ContractReverted, chain: ChainView) -> bool:
        """A batch sent again after a crash: applied if its source's last anchor is this batch's."""
        return record.kind == self.spec.kind and anchored_already(self.spec, record, revert, chain)
