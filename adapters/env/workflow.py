"""The environmental-monitoring workflow: a reading is checked against the station registry and changes no
state (so readings never wait for one another and run their rule once, before the write)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from adapters.abc import ChainView, ContractCall, RecordFacts, Route, State, Step
from adapters.env.chain import station
from adapters.env.domain import CONTRACT, DOMAIN
from adapters.env.errors import StationInactive, StationNotOperator, StationUnknown
from adapters.env.payload import EnvAdapter
from provenance.chain.contracts import ContractReverted


class EnvWorkflow(EnvAdapter):
    """``env.reading`` by the organisation operating the reading's monitoring point."""

    domain = DOMAIN
    watched: tuple[str, ...] = (CONTRACT,)
    routes: Sequence[Route] = ()

    def keys(self, kind: str, facts: Mapping[str, Any]) -> tuple[str, ...]:
        return ()

    def transition(
        self, record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, now: datetime
    ) -> Step:
        """A reading's monitoring point is registered in EnvMonitoring, active, operated by its signer."""
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
        return Step()

    def contract_call(self, record: RecordFacts) -> ContractCall | None:
        return None  # readings go through the log only

    def already_applied(self, record: RecordFacts, revert: ContractReverted, chain: ChainView) -> bool:
        return False
