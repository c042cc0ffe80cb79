"""A subject's history (every record about one prescription, dataset, station or branch), paginated."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.deps import INT64_MAX, CurrentReader, Cursor, GatewayDep, SessionDep, lean_reader
from gateway.api.front import LeanRoute, in_thread, json_response
from gateway.models import RecordPublic
from gateway.services.reads import PAGE_MAX, PAGE_SIZE, public_fields, public_rows
from gateway.services.runtime import Gateway
from gateway.services.visibility import Reader

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
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_SIZE,
    after: Cursor = 0,
) -> dict[str, Any]:
    """Records of ``subject`` in acceptance order: those the reader may see (docs/security.md, Read
    access); a subject it may not see answers like one without records."""
    return history_page(session, gw, reader, subject, after=after, limit=limit)


def history_page(
    s: Session, gw: Gateway, reader: Reader, subject: str, *, after: int, limit: int
) -> dict[str, Any]:
    """``subject_history``'s answer as JSON values, its lean twin's too (the route validates it as a
    ``SubjectPage``, the lean twin writes it as it is: ``tests/gateway/test_lean_routes.py`` holds the two
    equal)."""
    rows = public_rows(s, reader.subject_where(s, subject, after=after), limit=limit + 1)
    page = rows[:limit]
    anchored = gw.stats.anchored_size
    nxt = page[-1].seq if len(rows) > limit and page else None
    return {"subject": subject, "items": [public_fields(r, anchored) for r in page], "next_cursor": nxt}


# --- the lean twin of subject_history (gateway.api.front) -----------------------------------------------

_DECIMAL = re.compile(rb"0|[1-9][0-9]{0,18}")
_PAGE_PARAMS = (b"limit", b"after")


def _page_query(query: bytes) -> tuple[int, int] | None:
    """(limit, after) of a query in the plain form: ``limit`` and ``after`` at most once each, decimal,
    within the route's bounds. None for any other query (the route answers it: its 422s, its parsing)."""
    given: dict[bytes, int] = {}
    for part in query.split(b"&") if query else ():
        name, eq, value = part.partition(b"=")
        if name not in _PAGE_PARAMS or name in given or not eq or not _DECIMAL.fullmatch(value):
            return None
        given[name] = int(value)
    limit, after = given.get(b"limit", PAGE_SIZE), given.get(b"after", 0)
    return (limit, after) if 1 <= limit <= PAGE_MAX and after <= INT64_MAX else None


async def lean_history(request: Request, _body: bytes | None, params: dict[str, str]) -> Response | None:
    """``GET /api/v1/subjects/{subject}/records``: no query, or ``limit`` and ``after`` in the plain form."""
    taken = _page_query(request.scope.get("query_string", b""))
    if taken is None:
        return None
    limit, after = taken
    gw: Gateway = request.app.state.gateway
    reader = await lean_reader(request, gw)
    if reader is None:
        return None

    def read() -> dict[str, Any]:
        with gw.db.session() as s:
            return history_page(s, gw, reader, params["subject"], after=after, limit=limit)

    return json_response(await in_thread(request, read))


def lean_routes() -> list[LeanRoute]:
    """The lean twin, for ``gateway.api.front.Front``."""
    return [LeanRoute("GET", "/api/v1/subjects/{subject:path}/records", lean_history)]
