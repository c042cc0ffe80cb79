"""A subject's history (every record about one prescription, dataset, station or branch), paginated."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from gateway.api.deps import CurrentReader, Cursor, GatewayDep, SessionDep
from gateway.models import RecordPublic
from gateway.services.reads import record_public

router = APIRouter(tags=["subjects"])


class SubjectPage(BaseModel):
    subject: str
    items: list[RecordPublic]
    next_cursor: int | None  # pass as ?after= for the next page; null on the last page


# ``path``: the envelope's subject pattern allows "/" (only the adapters' ids exclude it today).
@router.get("/subjects/{subject:path}/records", response_model=SubjectPage)
def subject_history(
    subject: str,
    reader: CurrentReader,
    gw: GatewayDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Cursor = 0,
) -> SubjectPage:
    """Records of ``subject`` in acceptance order: those the reader may see (docs/security.md, Read
    access); a subject it may not see answers like one without records."""
    rows = reader.subject_rows(session, subject, after=after, limit=limit + 1)
    page = rows[:limit]
    anchored = gw.stats.anchored_size
    nxt = page[-1].seq if len(rows) > limit and page else None
    return SubjectPage(subject=subject, items=[record_public(r, anchored) for r in page], next_cursor=nxt)
