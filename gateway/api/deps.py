"""Dependencies of the route handlers, as ``Annotated`` aliases."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlmodel import Session

from gateway.api.front import route_header
from gateway.api.metrics import GatewayMetrics
from gateway.errors import AuthRequired, RoleForbidden
from gateway.services.runtime import Gateway
from gateway.services.visibility import Reader, role_name
from provenance.access_code import HEADER, MAX_TEXT, AccessCode

bearer = HTTPBearer(auto_error=False, description="Per-organisation API token")


# Async on purpose: FastAPI runs sync dependencies in its thread pool, a hop per request that these
# non-blocking lookups do not need (a token cache miss costs one indexed read, once per token per TTL).
async def get_gateway(request: Request) -> Gateway:
    """The app's running gateway."""
    gw: Gateway = request.app.state.gateway
    return gw


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def get_metrics(request: Request) -> GatewayMetrics:
    """The app's Prometheus registry (``gateway.api.metrics``)."""
    metrics: GatewayMetrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[GatewayMetrics, Depends(get_metrics)]


def get_session(gw: GatewayDep) -> Iterator[Session]:
    """A read session for one request."""
    with gw.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def current_org(
    gw: GatewayDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    """The organisation of the request's bearer token (401 without a valid one)."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise AuthRequired("an API token is required: Authorization: Bearer <token>")
    return gw.tokens.org_of(creds.credentials)


CurrentOrg = Annotated[str, Depends(current_org)]


async def bearer_org(request: Request, gw: Gateway) -> str:
    """``current_org`` outside FastAPI's resolution: the lean routes' (``gateway.api.front``)."""
    return await current_org(gw, await bearer(request))


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

# Who reads what concerns the whole log rather than one record (metrics, the tiles' entry bundles):
# oversight and the log's operator.
OVERSIGHT_READERS = frozenset({"auditor", "regulator", "log_operator"})


def require_oversight(gw: Gateway, creds: BearerDep, *, what: str, service_token: SecretStr | None) -> None:
    """401 AUTH_REQUIRED / TOKEN_INVALID, 403 ROLE_FORBIDDEN unless the bearer is ``service_token`` (a
    scrape or monitor token of the settings, which reads nothing else) or the API token of an auditor, a
    regulator or a log operator."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise AuthRequired(f"{what} needs a token: Authorization: Bearer <token>")
    given = creds.credentials.encode("utf-8")
    if service_token is not None and hmac.compare_digest(
        given, service_token.get_secret_value().encode("utf-8")
    ):
        return
    org = gw.tokens.org_of(creds.credentials)
    if role_name(gw.orgs.get(org)) not in OVERSIGHT_READERS:
        raise RoleForbidden(
            f"{what} is for auditors, regulators, log operators and the service token", details={"org": org}
        )


def current_reader(
    org: CurrentOrg,
    gw: GatewayDep,
    access_code: Annotated[
        str | None,
        Header(
            alias=HEADER,
            max_length=MAX_TEXT,
            description="the access code printed on a prescription's slip: its records open to the reader "
            "(docs/security.md, Read access)",
        ),
    ] = None,
) -> Reader:
    """Who reads: the token's organisation, its role in OrgRegistry, the access code it presents
    (ACCESS_CODE_MALFORMED, 400, for text that is no code, whatever it would open)."""
    code = AccessCode.parse(access_code).value if access_code is not None else None
    return Reader(org=org, role=role_name(gw.orgs.get(org)), access_code=code)


CurrentReader = Annotated[Reader, Depends(current_reader)]


async def lean_reader(request: Request, gw: Gateway) -> Reader | None:
    """``current_reader`` outside FastAPI's resolution, the lean routes' (``gateway.api.front``), its errors
    in the same order; None for an access-code header the declaration above does not take as it is (twice,
    too long): the FastAPI route answers that request."""
    org = await bearer_org(request, gw)
    took, code = route_header(request, HEADER, MAX_TEXT)
    return current_reader(org, gw, code) if took else None


# Cursors and sizes go to the database as BIGINT: anything beyond int64 is a 422, not a driver overflow.
INT64_MAX = 2**63 - 1
Cursor = Annotated[
    int, Query(ge=0, le=INT64_MAX, description="`next_cursor` of the previous page (0: from the start)")
]


# Who supervises: the certificate endpoint and the dashboard are theirs (issue 21).
SUPERVISORS = frozenset({"auditor", "regulator"})


def current_supervisor(reader: CurrentReader) -> Reader:
    """The reader, if its organisation is an auditor or a regulator (else 403 ROLE_FORBIDDEN)."""
    if reader.role not in SUPERVISORS:
        raise RoleForbidden(
            "certificates and the dashboard are for auditors and regulators", details={"org": reader.org}
        )
    return reader


CurrentSupervisor = Annotated[Reader, Depends(current_supervisor)]
