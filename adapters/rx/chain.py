"""The prescription domain on chain: ``Prescriptions`` holds each prescription's status (issued, dispensed,
revoked), its issuer, its dispenser, its expiry and the digests of the records that issued and closed it."""

from __future__ import annotations

from typing import Any

from adapters.abc import ChainView
from adapters.rx.domain import CONTRACT
from provenance.chain.contracts import chain_key
from provenance.timestamps import chain_time

_STATUSES = ("none", "issued", "dispensed", "revoked")


def _org(raw: Any) -> str:
    return bytes(raw).rstrip(b"\0").decode("utf-8", "replace")


def rx_status(chain: ChainView, rx_id: str) -> dict[str, Any] | None:
    """The Prescriptions entry of ``rx_id`` (None if the chain does not know it); ``expires_at`` is the
    contract's uint64."""
    rx = chain.call(CONTRACT, "statusOf", chain_key("rx", rx_id))
    status = _STATUSES[rx[0]]
    if status == "none":
        return None
    return {
        "status": status,
        "issuer": _org(rx[1]),
        "dispenser": _org(rx[2]) or None,
        "expires_at": int(rx[3]),
        "issue_digest": bytes(rx[7]).hex(),
        "close_digest": bytes(rx[8]).hex(),
    }


def readable(entry: dict[str, Any]) -> dict[str, Any]:
    """A chain entry for error details and reads: its time as RFC 3339 (any uint64 the chain holds)."""
    return {**entry, "expires_at": chain_time(entry["expires_at"])}
