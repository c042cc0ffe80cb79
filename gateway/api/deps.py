"""Dependencies of the route handlers, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from gateway.errors import AuthRequired
from gateway.services.runtime import Gateway
from gateway.services.visibility import Reader, role_name
from provenance.access_code import HEADER, AccessCode

_bearer = HTTPBearer(auto_error=False, description="Per-organisation API token")


# Async on purpose: FastAPI runs sync dependencies in its thread pool, a hop per request that these
# non-blocking lookups do not need (a token cache miss costs one indexed read, once per token per TTL).
async def get_gateway(request: Request) -> Gateway:
    """The app's running gateway."""
    gw: Gateway = request.app.state.gateway
    return gw


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


def get_session(gw: GatewayDep) -> Iterator[Session]:
    """A read session for one request."""
    with gw.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def current_org(
    gw: GatewayDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """The organisation of the request's bearer token (401 without a valid one)."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise AuthRequired("an API token is required: Authorization: Bearer <token>")
    return gw.tokens.org_of(creds.credentials)


CurrentOrg = Annotated[str, Depends(current_org)]

BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def current_reader(
    org: CurrentOrg,
    gw: GatewayDep,
    access_code: Annotated[
        str | None,
        Header(
            alias=HEADER,
            max_length=64,
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


# Cursors and sizes go to the database as BIGINT: anything beyond int64 is a 422, not a driver overflow.
INT64_MAX = 2**63 - 1
Cursor = Annotated[
    int, Query(ge=0, le=INT64_MAX, description="`next_cursor` of the previous page (0: from the start)")
]
