"""Records: submit (single and bulk), read with status, evidence bundle."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session

from adapters import Access
from gateway.api.deps import (
    CurrentOrg,
    CurrentReader,
    GatewayDep,
    MetricsDep,
    SessionDep,
    bearer_org,
    lean_reader,
)
from gateway.api.front import JSON_TYPE, LeanRoute, in_thread, json_response, route_header
from gateway.api.guard import StrictJsonRoute, strict_json
from gateway.api.metrics import GatewayMetrics
from gateway.errors import PayloadForbidden, RequestInvalid, error_body
from gateway.models import RecordPublic
from gateway.services.intake import Accepted, Submission
from gateway.services.reads import bundle_of, find_record, record_public
from gateway.services.runtime import Gateway
from gateway.services.visibility import Reader
from provenance.access_code import HEADER, MAX_TEXT
from provenance.errors import DuplicateKey, ProvenanceError
from provenance.log.bundle import bundle_schema, envelope_schema

router = APIRouter(tags=["records"], route_class=StrictJsonRoute)  # JSON_DUPLICATE_KEY
# The bound of the Idempotency-Key header: the route's and its lean twin's (which must take the same).
IDEMPOTENCY_KEY_MAX = 200


class RecordSubmit(BaseModel):
    """A signed record and its payload (a JSON object, or the text of an HJ 212 packet)."""

    # The envelope and signature are checked by the intake (specific error codes); their schemas here say
    # what passes, for clients generated from the OpenAPI document.
    record: dict[str, Any] = Field(
        description="the record envelope (docs/formats.md)", json_schema_extra=envelope_schema()
    )
    signature: str = Field(
        description="base64 DER SM2 signature over the envelope's canonical bytes",
        json_schema_extra={"pattern": bundle_schema()["$defs"]["base64"]["pattern"], "minLength": 1},
    )
    payload: dict[str, Any] | str
    signer: dict[str, Any] | None = Field(default=None, description="informative; keys come from OrgRegistry")
    access_code: str | None = Field(
        default=None,
        max_length=MAX_TEXT,
        description="the access code of the record's subject (a prescription's slip), for the kinds only "
        "its holder submits (a domain's ReadPolicy.code_writes); in a single submission also the "
        "Provenance-Access-Code header. Never part of the signed record or payload",
    )


def _submission(body: RecordSubmit, access_code: str | None = None) -> Submission:
    code = body.access_code
    if access_code is not None:
        if code is not None and code != access_code:
            raise RequestInvalid(
                f"the {HEADER} header and the body's access_code differ", details={"field": "access_code"}
            )
        code = access_code
    return Submission(record=body.record, signature=body.signature, payload=body.payload, access_code=code)


RECEIPT_DESCRIPTION = (
    "signed acceptance receipt: a C2SP signed note by the log key, lines '<origin> accepted', record id, "
    "accepted-at (RFC 3339 UTC, the first acceptance), maximum merge delay in seconds; for records "
    "accepted together, 'shancheng-provenance/acceptance-proof@v1' lines (record, accepted-at, index, "
    "inclusion proof) before the log key's signed batch note over their Merkle root (docs/formats.md)"
)


class RecordAccepted(BaseModel):
    id: str
    status: Literal["accepted"] = "accepted"
    existing: bool = False
    receipt: str = Field(description=RECEIPT_DESCRIPTION)


class BulkSubmit(BaseModel):
    records: list[RecordSubmit] = Field(
        description="1 to PROV_GW_MAX_BULK (default 1000) records", json_schema_extra={"minItems": 1}
    )


class BulkItem(BaseModel):
    index: int
    id: str | None = None
    status: Literal["accepted", "rejected"]
    existing: bool = False
    receipt: str | None = Field(default=None, description=RECEIPT_DESCRIPTION + "; accepted items only")
    error: dict[str, Any] | None = None


class BulkResult(BaseModel):
    accepted: int
    rejected: int
    items: list[BulkItem]


@router.post(
    "/records",
    status_code=202,
    response_model=RecordAccepted,
    responses={200: {"model": RecordAccepted, "description": "the same record was already accepted"}},
)
async def submit_record(
    request: Request,
    body: RecordSubmit,
    org: CurrentOrg,
    gw: GatewayDep,
    metrics: MetricsDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=IDEMPOTENCY_KEY_MAX)] = None,
    access_code: Annotated[
        str | None,
        Header(
            alias=HEADER,
            max_length=MAX_TEXT,
            description="the access code of the record's subject (a prescription's slip), for the kinds "
            "only its holder submits (docs/security.md)",
        ),
    ] = None,
) -> RecordAccepted:
    """Accept one signed record: 202 with its id and signed receipt (200 if it was already accepted)."""
    status, accepted = await accept_one(request, gw, metrics, org, body, access_code, idempotency_key)
    response.status_code = status
    return accepted


async def accept_one(
    request: Request,
    gw: Gateway,
    metrics: GatewayMetrics,
    org: str,
    body: RecordSubmit,
    access_code: str | None,
    idempotency_key: str | None,
) -> tuple[int, RecordAccepted]:
    """``submit_record``'s work, its lean twin's too: the HTTP status and the answer."""
    sub = _submission(body, access_code)

    def accept() -> tuple[Accepted, str]:
        accepted = gw.intake.submit(org, sub, idempotency_key=idempotency_key)
        return accepted, gw.receipt(accepted)

    try:
        result, receipt = await in_thread(request, accept)
    except ProvenanceError as exc:
        metrics.count(body.record, exc, org=org)
        raise
    metrics.count(body.record, result, org=org)
    answer = RecordAccepted(id=result.id, existing=not result.created, receipt=receipt)
    return (202 if result.created else 200), answer


@router.post("/records:bulk", response_model=BulkResult)
async def submit_bulk(body: BulkSubmit, org: CurrentOrg, gw: GatewayDep, metrics: MetricsDep) -> BulkResult:
    """Accept many records; each item is accepted or rejected on its own, in request order."""
    if not body.records or len(body.records) > gw.settings.max_bulk:
        raise RequestInvalid(
            f"a bulk request holds 1 to {gw.settings.max_bulk} records", details={"count": len(body.records)}
        )
    subs = [_submission(r) for r in body.records]

    def accept() -> list[tuple[Accepted | ProvenanceError, str | None]]:
        results = gw.intake.submit_many(org, subs)
        # The accepted items' receipts under one SM2 signature (a batch note and a proof each).
        accepted = [r for r in results if isinstance(r, Accepted)]
        signed = iter(gw.receipts(accepted))
        return [(r, None if isinstance(r, ProvenanceError) else next(signed)) for r in results]

    results = await run_in_threadpool(accept)
    items: list[BulkItem] = []
    for i, ((r, receipt), item) in enumerate(zip(results, body.records, strict=True)):
        metrics.count(item.record, r, org=org)
        if isinstance(r, ProvenanceError):
            items.append(BulkItem(index=i, status="rejected", error=error_body(r)["error"]))
        else:
            items.append(
                BulkItem(index=i, id=r.id, status="accepted", existing=not r.created, receipt=receipt)
            )
    accepted = sum(1 for it in items if it.status == "accepted")
    return BulkResult(accepted=accepted, rejected=len(items) - accepted, items=items)


@router.get("/records/{record_id}", response_model=RecordPublic)
def read_record(record_id: str, reader: CurrentReader, gw: GatewayDep, session: SessionDep) -> RecordPublic:
    """A record's envelope, signature and status (accepted / sequenced / anchored) with its leaf index.

    RECORD_NOT_FOUND (404) alike for a record that does not exist and one the reader may not see.
    """
    row, _ = reader.visible(session, find_record(session, record_id), record_id)
    return record_public(row, gw.stats.anchored_size)


@router.get(
    "/records/{record_id}/bundle",
    responses={
        200: {"content": {"application/json": {}}, "description": "evidence bundle (docs/formats.md)"}
    },
)
def read_bundle(
    record_id: str,
    reader: CurrentReader,
    gw: GatewayDep,
    session: SessionDep,
    payload: Annotated[bool | None, Query(description="include the payload (default: when allowed)")] = None,
) -> dict[str, Any]:
    """The evidence bundle of a record: verifiable offline with `provenance verify`.

    RECORD_NOT_FOUND (404) for a record the reader may not see; PAYLOAD_FORBIDDEN (403) for
    ``payload=true`` on one whose envelope it sees but not its payload (docs/security.md, Read access).
    """
    return bundle_for(session, gw, reader, record_id, payload)


def bundle_for(
    s: Session, gw: Gateway, reader: Reader, record_id: str, payload: bool | None
) -> dict[str, Any]:
    """``read_bundle``'s work, its lean twin's too."""
    row, access = reader.visible(s, find_record(s, record_id), record_id)
    allowed = access is Access.PAYLOAD
    if payload and not allowed:
        raise PayloadForbidden(
            "this reader sees the record but not its payload (docs/security.md, Read access)",
            details={"id": record_id},
        )
    include = allowed if payload is None else payload
    return bundle_of(s, row, gw.identity, gw.kek, include_payload=include)


# --- the lean twins of submit_record and read_bundle (gateway.api.front) --------------------------------

_PAYLOAD_QUERY = {b"": None, b"payload=false": False, b"payload=true": True}


async def lean_submit(request: Request, body: bytes | None, _params: dict[str, str]) -> Response | None:
    """``POST /api/v1/records``: a JSON body that passes the model, with simple headers."""
    ctype = request.headers.get("content-type", "")
    if not body or ctype.split(";", 1)[0].strip().lower() != JSON_TYPE:
        return None
    try:
        data = strict_json(body)  # JSON_DUPLICATE_KEY, as the route's own parse
    except DuplicateKey:
        raise
    except (ValueError, RecursionError):
        return None  # the route answers JSON_INVALID
    gw: Gateway = request.app.state.gateway
    org = await bearer_org(request, gw)  # the route's dependencies run before its body is validated
    took_key, idempotency_key = route_header(request, "idempotency-key", IDEMPOTENCY_KEY_MAX)
    took_code, access_code = route_header(request, HEADER, MAX_TEXT)
    if not (took_key and took_code):
        return None
    try:
        submitted = RecordSubmit.model_validate(data)
    except ValidationError:
        return None  # the route's 422, with FastAPI's own error list
    metrics: GatewayMetrics = request.app.state.metrics
    status, accepted = await accept_one(request, gw, metrics, org, submitted, access_code, idempotency_key)
    return json_response(accepted.model_dump(), status_code=status)


async def lean_bundle(request: Request, _body: bytes | None, params: dict[str, str]) -> Response | None:
    """``GET /api/v1/records/{record_id}/bundle``: no query, or ``payload=true|false`` alone."""
    query = request.scope.get("query_string", b"")
    if query not in _PAYLOAD_QUERY:
        return None
    gw: Gateway = request.app.state.gateway
    reader = await lean_reader(request, gw)
    if reader is None:
        return None
    payload = _PAYLOAD_QUERY[query]

    def read() -> dict[str, Any]:
        with gw.db.session() as s:
            return bundle_for(s, gw, reader, params["record_id"], payload)

    return json_response(await in_thread(request, read))


def lean_routes() -> list[LeanRoute]:
    """The lean twins, for ``gateway.api.front.Front``."""
    return [
        LeanRoute("POST", "/api/v1/records", lean_submit),
        LeanRoute("GET", "/api/v1/records/{record_id}/bundle", lean_bundle),
    ]
