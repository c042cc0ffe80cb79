"""The domains' rules on the write path, for any domain: a record's step through its workflow, decided
before the write (to refuse early and to give the adapter the prior facts) and again inside the write
transaction on the states as they stand there (which decides races; where they are still the states it was
decided on, the decided step stands), by the one ``transition`` the domain declares (``adapters.Workflow``).
The gateway names no domain here: the record's kind finds its workflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from adapters import ContractCall, RecordFacts, State, Step, Workflow
from adapters.registry import workflows
from gateway.services.chain import ChainReads, Recorded
from gateway.services.states import CommittedStates, Key, Stored, TxStates, read_states
from provenance.chain.contracts import REGISTRY
from provenance.records import Envelope


def now() -> datetime:
    """The gateway's clock."""
    return datetime.now(UTC)


def watched_contracts() -> tuple[str, ...]:
    """OrgRegistry and the contracts whose events drop the domains' cached lookups (a station registry)."""
    return tuple(dict.fromkeys([REGISTRY, *(c for w in workflows() for c in w.watched)]))


def record_facts(
    rec: Envelope, facts: Mapping[str, Any], detail: Mapping[str, Any] | None = None
) -> RecordFacts:
    """A record as rules see it (``detail``: what its adapter gave beside the facts, never stored)."""
    return RecordFacts(
        kind=rec.kind,
        org=rec.org,
        subject=rec.subject,
        record_id=rec.digest,
        payload_digest=rec.payload_digest,
        facts=facts,
        detail=detail or {},
    )


@dataclass(slots=True)
class Decision:
    """A record's step as decided before its write, carried into the write transaction."""

    workflow: Workflow
    record: RecordFacts
    keys: tuple[str, ...]
    writes: frozenset[str]  # the keys its step changes: later items of a bulk request wait for its write
    chain: Recorded  # what its rules read of the chain, read again from here inside the transaction
    call: ContractCall | None = None  # the contract call it makes once accepted
    # The step as decided and the versions of the states it was decided on: inside the transaction, states
    # of the same versions are the same states (a version counts every change; states are never deleted),
    # so the same step, not the transition again (None: the facts changed since, with the prior record's).
    step: Step | None = None
    versions: tuple[int, ...] = ()

    @property
    def locks(self) -> list[Key]:
        """The states to lock inside the write transaction (every key it reads or writes)."""
        return [(self.workflow.domain.name, k) for k in self.keys]

    def changes(self) -> Iterable[Key]:
        return ((self.workflow.domain.name, k) for k in self.writes)


def _states(stored: Mapping[str, Stored]) -> dict[str, State | None]:
    return {k: v.state for k, v in stored.items()}


class Rules:
    """Runs the domains' transitions for the write path."""

    def __init__(self, chain: ChainReads) -> None:
        self._chain = chain

    def decide(
        self,
        s: Session,
        workflow: Workflow,
        record: RecordFacts,
        at: datetime,
        committed: CommittedStates | None = None,
    ) -> tuple[Step, Decision]:
        """The record's step on the committed states (``committed``: read already for many records); raises
        the domain's error."""
        keys = workflow.keys(record.kind, record.facts)
        chain = Recorded(self._chain)
        domain = workflow.domain.name
        stored = read_states(s, domain, keys) if committed is None else committed.read(s, domain, keys)
        step = workflow.transition(record, _states(stored), chain, at)
        versions = tuple(stored[k].version for k in keys)
        decision = Decision(
            workflow, record, keys, frozenset(step.writes), chain, step=step, versions=versions
        )
        return step, decision

    @staticmethod
    def with_facts(decision: Decision, facts: Mapping[str, Any]) -> None:
        """The facts the adapter gave with the prior record's (the ones stored and called with)."""
        if facts is not decision.record.facts:
            decision.step = None  # decided on other facts: decided again inside the transaction
        decision.record = replace(decision.record, facts=facts)
        decision.call = decision.workflow.contract_call(decision.record)

    @staticmethod
    def apply(tx: TxStates, decision: Decision) -> None:
        """The record's step on the states as this transaction sees them; store the new states. Where they
        are the states it was decided on (the same versions), the step decided then (the transition is a
        function of the record, the states and the chain's answers, which ``Recorded`` replays; its clock
        was read then, within this request); else the transition again, which decides a race. A record
        without keys has nothing to decide here: its checks ran before the write."""
        if not decision.keys:
            return
        domain = decision.workflow.domain.name
        stored = tx.read(domain, decision.keys)
        step = decision.step
        if step is None or tuple(stored[k].version for k in decision.keys) != decision.versions:
            step = decision.workflow.transition(decision.record, _states(stored), decision.chain, now())
        tx.write(domain, step.writes)
