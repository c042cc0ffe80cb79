"""Evidence bundles in bulk, for auditors' exports (`provenance export`): filtered, paginated by cursor."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.api.deps import CurrentReader, Cursor, GatewayDep, SessionDep
from gateway.errors import RequestInvalid
from gateway.services.reads import PAGE_MAX, PAGE_SIZE, ExportFilter, export_page
from provenance.timestamps import parse_rfc3339

router = APIRouter(tags=["records"])


class BundlePage(BaseModel):
    items: list[dict[str, Any]] = Field(description="evidence bundles (docs/formats.md), in acceptance order")
    next_cursor: int | None = Field(description="pass as ?after= for the next page; null on the last page")
    total: int | None = Field(description="records matching the filter (first page only, else null)")


# A date, or a date-time with Z or an offset. Documented in the OpenAPI and checked by _instant (its error
# names the field and shows an example, where the framework's would only quote the pattern).
_INSTANT = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$"
)
_DOC: dict[str, Any] = {"pattern": _INSTANT}


def _instant(value: str | None, name: str) -> datetime | None:
    """An RFC 3339 instant with ``Z`` or an offset, or a bare date (its midnight UTC)."""
    if value is None:
        return None
    at = None
    if re.fullmatch(_INSTANT, value):
        try:
            if len(value) == 10:
                return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
            at = parse_rfc3339(value, lenient=True)
        except ValueError:  # matches the pattern but does not exist (2026-02-30)
            at = None
    if at is None or at.tzinfo is None:
        raise RequestInvalid(
            f"{name} must be an RFC 3339 instant in UTC, like 2026-11-25T08:00:00Z",
            details={"field": name, "value": value},
        )
    return at.astimezone(UTC)


@router.get("/bundles", response_model=BundlePage)
def export_bundles(
    reader: CurrentReader,
    gw: GatewayDep,
    session: SessionDep,
    org: Annotated[str | None, Query(max_length=32, description="only records of this organisation")] = None,
    kind: Annotated[str | None, Query(max_length=64, description="only records of this kind")] = None,
    since: Annotated[
        str | None,
        Query(
            max_length=40, json_schema_extra=_DOC, description="envelope timestamp at or after (RFC 3339 UTC)"
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(max_length=40, json_schema_extra=_DOC, description="envelope timestamp before (RFC 3339 UTC)"),
    ] = None,
    after: Cursor = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_SIZE,
    payload: Annotated[
        bool | None, Query(description="include payloads (default: those the reader may see)")
    ] = None,
) -> BundlePage:
    """Evidence bundles of the records in the log (under a signed checkpoint), in acceptance order.

    Records accepted but not yet sequenced and checkpointed are not exported yet. Auditors and regulators
    export every record; other readers their own and those their role reads in every subject (the
    environment bureau every reading, data owners every request): `total` counts only those.
    """
    flt = ExportFilter(
        scope=reader.listing(),
        org=org,
        kind=kind,
        since=_instant(since, "since"),
        until=_instant(until, "until"),
    )
    rule = reader.payload_rule(session)
    page = export_page(
        session, gw.identity, gw.kek, flt, after=after, limit=limit, payload_rule=rule, payload=payload
    )
    return BundlePage(items=page.items, next_cursor=page.next_cursor, total=page.total)
