"""The domains' own reads: each registered workflow's routes (``adapters.Route``), mounted under /api/v1.

A route's handler gets a :class:`DomainReads` (``adapters.ReadContext``): the reader, its workflow's states,
the chain and the organisations; the domain decides what it answers. It runs in the thread pool (it may read
the chain), and its errors go through the one exception handler like every route's.
"""

from __future__ import annotations

import inspect
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlmodel import Session, col, select

from adapters import Access, ChainView, Route, State, Workflow
from adapters.abc import Listed
from adapters.registry import workflows
from gateway.api.deps import CurrentReader, GatewayDep, SessionDep
from gateway.errors import PayloadPurged, RequestInvalid
from gateway.models import WorkflowState
from gateway.services.reads import PAGE_MAX, PAGE_SIZE, bundle_of, find_record
from gateway.services.rules import record_facts
from gateway.services.runtime import Gateway
from gateway.services.states import read_states
from gateway.services.visibility import Reader, absent_record
from gateway.services.workers import signed_record
from provenance.orgs import OrgEntry

_PARAM = re.compile(r"{(\w+)}")


class DomainReads:
    """``adapters.ReadContext`` for one request of one domain."""

    def __init__(self, reader: Reader, gw: Gateway, session: Session, domain: str) -> None:
        self.org = reader.org
        self.role = reader.role
        self.access_code = reader.access_code
        self.chain: ChainView = gw.chain
        self.network_key = gw.network_key
        self._reader = reader
        self._gw = gw
        self._session = session
        self._domain = domain

    def state(self, key: str) -> State | None:
        return read_states(self._session, self._domain, [key])[key].state

    def states(self, start: str, end: str, limit: int) -> list[tuple[str, State]]:
        key: Any = col(WorkflowState.key)
        if self._session.get_bind().dialect.name != "sqlite":
            key = key.collate("C")  # byte order, whatever the database's collation
        rows = self._session.exec(
            select(WorkflowState)
            .where(WorkflowState.domain == self._domain, key >= start, key < end)
            .order_by(key)
            .limit(limit)
        ).all()
        return [(r.key, State(r.status, r.data)) for r in rows]

    def bundle(self, record_id: str) -> dict[str, Any] | None:
        row = find_record(self._session, record_id)
        if row is None or self._reader.access(self._session, row) is not Access.PAYLOAD:
            return None
        try:
            return bundle_of(self._session, row, self._gw.identity, self._gw.kek, include_payload=True)
        except PayloadPurged:
            return None

    def visible(self, record_id: str) -> bool:
        row = find_record(self._session, record_id)
        access = self._reader.access(self._session, row if row is not None else absent_record())
        return row is not None and access is not Access.NONE

    def contract_anchor(self, record_id: str) -> dict[str, Any] | None:
        row = find_record(self._session, record_id)
        if row is None or row.chain_status != "confirmed" or row.chain_tx is None:
            return None
        return self._gw.ledger.transaction_place(row.chain_tx)

    def org_entry(self, org_id: str) -> OrgEntry | None:
        return self._gw.orgs.get(org_id)

    def records(self, subject: str, *, after: int = 0, limit: int = PAGE_SIZE) -> list[Listed]:
        if not 1 <= limit <= PAGE_MAX:
            raise RequestInvalid(f"a page holds 1 to {PAGE_MAX} records", details={"limit": limit})
        s = self._session
        rows = self._reader.subject_rows(s, subject, after=after, limit=limit)
        payload = self._reader.payload_rule(s)
        return [
            Listed(
                seq=row.seq,
                record=record_facts(signed_record(row).envelope, row.facts if payload(row) else {}),
                accepted_at=row.accepted_at,
                leaf_index=row.leaf_index,
                chain_status=row.chain_status,
            )
            for row in rows
            if row.seq is not None
        ]


def _mount(router: APIRouter, workflow: Workflow, route: Route) -> None:
    domain = workflow.domain.name

    def endpoint(reader: CurrentReader, gw: GatewayDep, session: SessionDep, **params: str | None) -> Any:
        return route.handler(DomainReads(reader, gw, session, domain), **params)

    # FastAPI reads the parameters from the signature: the dependencies, the path's, then the query's.
    kw = inspect.Parameter.KEYWORD_ONLY
    deps = [("reader", CurrentReader), ("gw", GatewayDep), ("session", SessionDep)]
    path = [(name, Annotated[str, Path()]) for name in _PARAM.findall(route.path)]
    query = [
        inspect.Parameter(name, kw, annotation=Annotated[str | None, Query(max_length=200)], default=None)
        for name in route.query
    ]
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*(inspect.Parameter(name, kw, annotation=annotation) for name, annotation in (*deps, *path)), *query]
    )
    router.add_api_route(
        route.path,
        endpoint,
        methods=["GET"],
        response_model=route.response_model,
        name=route.handler.__name__,
        description=inspect.getdoc(route.handler) or "",
        tags=list(route.tags or (domain,)),
    )


def router() -> APIRouter:
    """Every registered workflow's routes (read when the app is made)."""
    found = APIRouter()
    for workflow in workflows():
        for route in workflow.routes:
            _mount(found, workflow, route)
    return found
