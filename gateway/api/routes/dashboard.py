"""The supervision dashboard's data (auditors and regulators): records per domain and day, the subjects
with the most records, refusals by code since start, anchoring and witness lag. The page itself is
static (``gateway/static/dashboard``, built from ``webui/src/dashboard``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import col, func, select

from adapters.registry import KINDS
from gateway.api.deps import CurrentSupervisor, Cursor, GatewayDep, MetricsDep, SessionDep
from gateway.api.metrics import progress
from gateway.errors import RequestInvalid
from gateway.models import Record

router = APIRouter(tags=["dashboard"])

# A domain here is a kind's first part (before its dot), over the built-in domains' kinds (adapters.registry).
DOMAINS = tuple(sorted({kind.split(".", 1)[0] for kind in KINDS}))
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


def _domain_of(kind: str) -> str:
    return kind.split(".", 1)[0]


@router.get("/dashboard/summary", response_model=Summary)
def dashboard_summary(
    reader: CurrentSupervisor,
    gw: GatewayDep,
    session: SessionDep,
    metrics: MetricsDep,
    days: Annotated[int, Query(ge=1, le=366, description="how many days back, today included")] = 14,
) -> Summary:
    """What the dashboard charts; ROLE_FORBIDDEN (403) unless the token is an auditor's or a regulator's."""
    today = datetime.now(UTC).date()
    span = [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
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
    for domain in DOMAINS:
        many = func.count().label("n")
        top = session.exec(
            select(Record.subject, many)
            .where(col(Record.kind).startswith(domain + "."), col(Record.timestamp) >= span[0])
            .group_by(Record.subject)
            .order_by(many.desc(), Record.subject)
            .limit(TOP_SUBJECTS)
        ).all()
        subjects += [SubjectCount(domain=domain, subject=s, count=int(c)) for s, c in top]
    return Summary(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        domains=list(DOMAINS),
        days=span,
        records=[DayCount(domain=d, day=day, count=c) for (d, day), c in sorted(counts.items())],
        subjects=subjects,
        refusals=Refusals(since=metrics.started, items=metrics.refusals()),
        progress=progress(gw, started=metrics.started),
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
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RecordPage:
    """The records behind one number of the summary (a domain's records signed on a day), in log order."""
    if domain not in DOMAINS:
        raise RequestInvalid(f"unknown domain {domain[:40]!r}", details={"field": "domain", "known": DOMAINS})
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
