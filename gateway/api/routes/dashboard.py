"""The supervision dashboard's data (auditors and regulators): records per domain and day, the subjects
with the most records, refusals by code since start, anchoring and witness lag, and the panels the
domains declare (``adapters.Panel``: the gateway names no domain). Every number has a read of what is
behind it. The page itself is static (``gateway/static/dashboard``, built from ``webui/src/dashboard``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from sqlmodel import Session, col, func, select

from adapters import Panel, Refusal
from adapters.registry import kinds as registered_kinds
from adapters.registry import workflows
from gateway.api.deps import CurrentSupervisor, Cursor, GatewayDep, MetricsDep, SessionDep
from gateway.api.metrics import GatewayMetrics, progress
from gateway.api.routes.domains import DomainReads
from gateway.errors import RequestInvalid
from gateway.models import Record
from gateway.services.reads import PAGE_MAX, PAGE_SIZE
from gateway.services.runtime import Gateway
from gateway.services.visibility import Reader

router = APIRouter(tags=["dashboard"])


def domains() -> tuple[str, ...]:
    """A domain is a kind's first part: the registered domains name them, the gateway does not (read at
    each request: a domain may be registered while the gateway runs)."""
    return tuple(sorted({kind.split(".", 1)[0] for kind in registered_kinds()}))


_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
TOP_SUBJECTS = 8


class DayCount(BaseModel):
    domain: str
    day: str = Field(description="YYYY-MM-DD of the records' signing time (UTC)")
    count: int


class SubjectCount(BaseModel):
    domain: str
    subject: str
    count: int


class Refusals(BaseModel):
    since: float = Field(description="POSIX time the gateway started counting (refusals are not logged)")
    items: list[dict[str, Any]] = Field(description="{kind, code, count}, most first")


class PanelNumber(BaseModel):
    key: str = Field(description="what /dashboard/panels/{domain}/{name} takes as ?key=")
    count: int


class PanelSummary(BaseModel):
    domain: str
    name: str
    title: dict[str, str] = Field(description="by language: zh, en")
    key_title: dict[str, str] = Field(description="what the counts' keys are, by language")
    counts: list[PanelNumber]


class Summary(BaseModel):
    generated_at: str
    domains: list[str]
    days: list[str]
    records: list[DayCount]
    subjects: list[SubjectCount]
    refusals: Refusals
    progress: dict[str, Any] = Field(
        description="tree, checkpoint and anchored sizes, backlog, lags, witnesses"
    )
    panels: list[PanelSummary] = Field(description="the domains' own panels, over the same days")


def _domain_of(kind: str) -> str:
    return kind.split(".", 1)[0]


class PanelReads(DomainReads):
    """``adapters.SupervisionContext``: a supervisor's reads of one domain and the kept refusals."""

    def __init__(
        self, reader: Reader, gw: Gateway, session: Session, domain: str, metrics: GatewayMetrics
    ) -> None:
        super().__init__(reader, gw, session, domain)
        self._metrics = metrics

    def refusals(self, code: str) -> list[Refusal]:
        return self._metrics.refused_since(code=code)


def _span(days: int) -> list[str]:
    today = datetime.now(UTC).date()
    return [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def _window(span: list[str]) -> tuple[str, str]:
    """The span's days as the instants [since, until) panels take."""
    end = datetime.fromisoformat(span[-1]).date() + timedelta(days=1)
    return f"{span[0]}T00:00:00Z", f"{end.isoformat()}T00:00:00Z"


@router.get("/dashboard/summary", response_model=Summary)
def dashboard_summary(
    reader: CurrentSupervisor,
    gw: GatewayDep,
    session: SessionDep,
    metrics: MetricsDep,
    days: Annotated[int, Query(ge=1, le=366, description="how many days back, today included")] = 14,
) -> Summary:
    """What the dashboard charts; ROLE_FORBIDDEN (403) unless the token is an auditor's or a regulator's."""
    span = _span(days)
    day = func.substr(Record.timestamp, 1, 10)
    per_day = session.exec(
        select(Record.kind, day, func.count())
        .where(col(Record.timestamp) >= span[0])
        .group_by(Record.kind, day)
    ).all()
    counts: dict[tuple[str, str], int] = {}
    for kind, d, n in per_day:
        key = (_domain_of(kind), str(d))
        counts[key] = counts.get(key, 0) + int(n)
    subjects: list[SubjectCount] = []
    for domain in domains():
        many = func.count().label("n")
        top = session.exec(
            select(Record.subject, many)
            .where(col(Record.kind).startswith(domain + "."), col(Record.timestamp) >= span[0])
            .group_by(Record.subject)
            .order_by(many.desc(), Record.subject)
            .limit(TOP_SUBJECTS)
        ).all()
        subjects += [SubjectCount(domain=domain, subject=s, count=int(c)) for s, c in top]
    since, until = _window(span)
    panels = [
        PanelSummary(
            domain=w.domain.name,
            name=p.name,
            title=dict(p.title),
            key_title=dict(p.key_title),
            counts=[
                PanelNumber(key=n.key, count=n.count)
                for n in p.counts(PanelReads(reader, gw, session, w.domain.name, metrics), since, until)
            ],
        )
        for w in workflows()
        for p in w.panels
    ]
    return Summary(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        domains=list(domains()),
        days=span,
        records=[DayCount(domain=d, day=day, count=c) for (d, day), c in sorted(counts.items())],
        subjects=subjects,
        refusals=Refusals(since=metrics.started, items=metrics.refusals()),
        progress=progress(gw, started=metrics.started),
        panels=panels,
    )


class RecordRow(BaseModel):
    id: str
    kind: str
    subject: str
    org: str
    timestamp: str


class RecordPage(BaseModel):
    items: list[RecordRow]
    next_cursor: int | None


@router.get("/dashboard/records", response_model=RecordPage)
def dashboard_records(
    reader: CurrentSupervisor,
    session: SessionDep,
    domain: Annotated[str, Query(description="a domain: rx, share, env, party")],
    day: Annotated[str, Query(description="YYYY-MM-DD (UTC), as the summary's records name it")],
    after: Cursor = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_SIZE,
) -> RecordPage:
    """The records behind one number of the summary (a domain's records signed on a day), in log order."""
    if domain not in (known := domains()):
        raise RequestInvalid(f"unknown domain {domain[:40]!r}", details={"field": "domain", "known": known})
    if not _DAY.fullmatch(day):
        raise RequestInvalid("day must be YYYY-MM-DD", details={"field": "day"})
    rows = session.exec(
        select(Record)
        .where(
            col(Record.kind).startswith(domain + "."),
            col(Record.timestamp).startswith(day),
            col(Record.seq) > after,
        )
        .order_by(col(Record.seq))
        .limit(limit + 1)
    ).all()
    page = rows[:limit]
    return RecordPage(
        items=[
            RecordRow(id=r.id, kind=r.kind, subject=r.subject, org=r.org, timestamp=r.timestamp) for r in page
        ],
        next_cursor=page[-1].seq if len(rows) > limit and page else None,
    )


class RefusalRow(BaseModel):
    seq: int
    at: str = Field(description="when it was refused (UTC)")
    kind: str
    code: str
    org: str = Field(description="the organisation whose token submitted it")
    subject: str = Field(description="the subject its envelope declared")
    details: dict[str, Any]


class RefusalPage(BaseModel):
    items: list[RefusalRow]
    next_cursor: int | None


_CODE = re.compile(r"^[A-Z0-9_]{1,64}$")


@router.get("/dashboard/refusals", response_model=RefusalPage)
def dashboard_refusals(
    reader: CurrentSupervisor,
    metrics: MetricsDep,
    code: Annotated[str, Query(description="an error code, as the summary's refusals name it")],
    kind: Annotated[str | None, Query(max_length=64, description="only refusals of this kind")] = None,
    after: Cursor = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_SIZE,
) -> RefusalPage:
    """The refusals behind one number of the summary, oldest first: the latest this gateway kept since it
    started (refused submissions are never logged; the counts go further back than these)."""
    if not _CODE.fullmatch(code):
        raise RequestInvalid("code must be an error code (A-Z, 0-9, _)", details={"field": "code"})
    rows = [r for r in metrics.refused_since(after=after, code=code) if kind in (None, r.kind)]
    page = rows[:limit]
    return RefusalPage(
        items=[
            RefusalRow(
                seq=r.seq,
                at=r.at,
                kind=r.kind,
                code=r.code,
                org=r.org,
                subject=r.subject,
                details=dict(r.details),
            )
            for r in page
        ],
        next_cursor=page[-1].seq if len(rows) > limit else None,
    )


class PanelRow(BaseModel):
    record_id: str | None = Field(description="the record behind the entry (null: none logged here)")
    at: str
    org: str
    subject: str
    detail: str


class PanelPage(BaseModel):
    items: list[PanelRow]
    next_cursor: str | None = Field(description="pass as ?after= for the next page; null on the last page")


def _panel(domain: str, name: str) -> Panel:
    for w in workflows():
        if w.domain.name == domain:
            for p in w.panels:
                if p.name == name:
                    return p
            raise RequestInvalid(
                f"domain {domain!r} has no panel {name[:40]!r}",
                details={"field": "name", "known": [p.name for p in w.panels]},
            )
    raise RequestInvalid(f"unknown domain {domain[:40]!r}", details={"field": "domain", "known": domains()})


@router.get("/dashboard/panels/{domain}/{name}", response_model=PanelPage)
def dashboard_panel(
    reader: CurrentSupervisor,
    gw: GatewayDep,
    session: SessionDep,
    metrics: MetricsDep,
    domain: Annotated[str, Path(max_length=64)],
    name: Annotated[str, Path(max_length=64)],
    key: Annotated[str, Query(min_length=1, max_length=200, description="a key of the panel's counts")],
    days: Annotated[int, Query(ge=1, le=366, description="as the summary's")] = 14,
    after: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> PanelPage:
    """The entries behind one number of a domain's panel, a page at a time, each naming its record."""
    panel = _panel(domain, name)
    since, until = _window(_span(days))
    items, cursor = panel.items(
        PanelReads(reader, gw, session, domain, metrics), key, since, until, after, limit
    )
    return PanelPage(
        items=[
            PanelRow(record_id=i.record_id, at=i.at, org=i.org, subject=i.subject, detail=i.detail)
            for i in items
        ],
        next_cursor=cursor,
    )
