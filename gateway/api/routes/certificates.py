"""存证证明: a record's PDF certificate for auditors and regulators (``provenance certificate`` over HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gateway.api.deps import CurrentSupervisor, GatewayDep, SessionDep
from gateway.api.routes.orgs import trust_document
from gateway.errors import error_responses
from gateway.services.reads import bundle_of, find_record
from provenance.certificate import certify, render_certificate
from provenance.timestamps import format_timestamp
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier

router = APIRouter(tags=["records"])

_PDF: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        "description": "the certificate, its evidence bundle embedded (docs/formats.md, Certificates)",
    }
}


@router.get(
    "/records/{record_id}/certificate",
    response_class=Response,
    responses={**_PDF, **error_responses(403, 404, 409)},
)
def record_certificate(
    record_id: str,
    request: Request,
    reader: CurrentSupervisor,
    gw: GatewayDep,
    session: SessionDep,
    lang: Annotated[Literal["zh", "en"], Query(description="zh (default) or en")] = "zh",
    allow_unanchored: Annotated[bool, Query(description="certify a record not anchored yet")] = False,
) -> Response:
    """The record's 存证证明 (PDF): verified now against OrgRegistry's keys and the log key (the anchor is
    not looked up here: `provenance certificate --rpc` does), with a QR code opening `/verify` on it.

    ROLE_FORBIDDEN (403) unless the token is an auditor's or a regulator's; CERTIFICATE_REFUSED (409,
    naming the step) for a record that does not verify, e.g. one not anchored yet.
    """
    row, _ = reader.visible(session, find_record(session, record_id), record_id)
    doc = bundle_of(session, row, gw.identity, gw.kek, include_payload=False)
    store = TrustStore.from_dict(trust_document(gw))
    verifier = Verifier(trust=store, require_anchor=not allow_unanchored)
    base = gw.settings.public_url or str(request.base_url)
    pdf = render_certificate(
        [certify(verifier, doc, store)],
        lang=lang,
        verify_base=base.rstrip("/") + "/verify/",
        issued_at=format_timestamp(datetime.now(UTC)),
        issuer=f"{gw.origin} ({base.rstrip('/')})",
    )
    name = f"certificate-{record_id[:16]}.pdf"
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'}
    )
