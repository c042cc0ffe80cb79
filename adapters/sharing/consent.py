"""A request's live consent, as the accesses and the derivations under it check it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters._common import parse_instant
from adapters.abc import State
from adapters.sharing.errors import ConsentExpired, ConsentMissing, ConsentRevoked
from provenance.timestamps import parse_rfc3339


def check_consent(state: State | None, request_id: str, org: str, now: datetime) -> Mapping[str, Any]:
    """The live consent of the request for ``org`` at ``now`` (its facts), or the specific error."""
    consent: Mapping[str, Any] | None = state.data.get("consent_facts") if state is not None else None
    if state is None or state.status == "pending" or consent is None:
        raise ConsentMissing(
            f"no consent for request {request_id!r}",
            details={"request_id": request_id, "status": state.status if state else None},
        )
    if state.status == "revoked":
        raise ConsentRevoked(
            f"the consent for request {request_id!r} was revoked", details={"request_id": request_id}
        )
    if state.data.get("requester") != org:
        raise ConsentMissing(
            f"the consent for request {request_id!r} is not for {org!r}", details={"request_id": request_id}
        )
    expires = consent.get("expires_at")
    if isinstance(expires, str) and now >= parse_rfc3339(expires, lenient=True):
        raise ConsentExpired(
            f"the consent for request {request_id!r} expired at {expires}",
            details={"request_id": request_id, "expires_at": expires},
        )
    return consent


def outside_validity(consent: Mapping[str, Any], at: datetime) -> str | None:
    """The bound of the consent's validity [granted_at, expires_at) that ``at`` misses, or None."""
    for key, late in (("granted_at", False), ("expires_at", True)):
        bound = consent.get(key)
        if isinstance(bound, str):
            when = parse_instant(bound, key)
            if (at >= when) if late else (at < when):
                return key
    return None
