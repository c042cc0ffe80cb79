"""The SDK client: sign records with the organisation's SM2 key, submit them, fetch and verify evidence.

The gateway never sees the private key: records are signed here. Sync :class:`Client` and async
:class:`AsyncClient` share one request description (:class:`Api`), so both speak the same API.
"""

from provenance.client.api import (
    NOT_YET_LOGGED,
    AccessCodeArg,
    AnchorTimeout,
    Api,
    GatewayError,
    GatewayProofs,
    GatewayUnreachable,
    IssuedPrescription,
    Receipt,
)
from provenance.client.clients import AsyncClient, Client

__all__ = [
    "NOT_YET_LOGGED",
    "AccessCodeArg",
    "AnchorTimeout",
    "Api",
    "AsyncClient",
    "Client",
    "GatewayError",
    "GatewayProofs",
    "GatewayUnreachable",
    "IssuedPrescription",
    "Receipt",
]
