"""The prescription domain on chain: ``Prescriptions`` holds each prescription's status (issued, dispensed,
revoked), its issuer, its dispenser, its expiry and the digests of the records that issued and closed it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.abc import ChainView
from adapters.rx.domain import CONTRACT
from provenance.chain.contracts import REGISTRY, chain_key
from provenance.timestamps import chain_time
from provenance.types import Role

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


def organisations(chain: ChainView) -> list[tuple[str, str, str]]:
    """Every organisation in OrgRegistry as (id, role, name), both reads cached until the registry emits an
    event: what a dispense may display as its pharmacy or pharmacist, and the names and ids it may not
    give another organisation than the signer."""
    out = []
    for raw in chain.lookup(REGISTRY, "orgIds"):
        role, _active, _created, name = chain.lookup(REGISTRY, "getOrg", bytes(raw))
        out.append((_org(raw), Role(role).label, str(name)))
    return out


def readable(entry: dict[str, Any]) -> dict[str, Any]:
    """A chain entry for error details and reads: its time as RFC 3339 (any uint64 the chain holds)."""
    return {**entry, "expires_at": chain_time(entry["expires_at"])}


_REVIEWS = (None, "approved", "rejected")


def rx_review(chain: ChainView, rx_id: str) -> dict[str, Any] | None:
    """The pharmacist's review the chain holds of ``rx_id`` (None: none)."""
    decision, reviewer, digest = chain.call(CONTRACT, "reviewOf", chain_key("rx", rx_id))
    if decision == 0:
        return None
    return {"decision": _REVIEWS[decision], "by": _org(reviewer), "record": bytes(digest).hex()}


def review_required(chain: ChainView) -> bool:
    """The deployment's setting: a dispense needs an approved review (fixed before the first issue)."""
    return bool(chain.call(CONTRACT, "reviewRequired"))


def rx_settlement(chain: ChainView, rx_id: str) -> dict[str, Any] | None:
    """医保's settlement the chain holds of ``rx_id`` (None: none)."""
    insurer, digest = chain.call(CONTRACT, "settlementOf", chain_key("rx", rx_id))
    if not any(bytes(digest)):
        return None
    return {"by": _org(insurer), "record": bytes(digest).hex()}


def code_use(chain: ChainView, key: str | None, digest: str) -> dict[str, Any] | None:
    """The dispense that handed over the box whose chain key is ``key`` (its keyed digest under the network
    key, :func:`provenance.trace_code.chain_digest`) or, dispensed before keyed digests, whose identity has
    SM3 ``digest`` (None: neither); ``key``: the one the chain holds it under."""
    for held in (key, digest):
        if held is None:
            continue
        rx_id, record = chain.call(CONTRACT, "codeUse", bytes.fromhex(held))
        if any(bytes(record)):
            return {"rx_id": bytes(rx_id).hex(), "record": bytes(record).hex(), "key": held}
    return None


def box_keys(facts: Mapping[str, Any]) -> list[str]:
    """The chain keys of a dispense's boxes: their keyed digests; a record accepted before them (without
    ``trace_code_keys``, its call still to send) keeps the SM3 digests it was accepted with."""
    keys = facts.get("trace_code_keys")
    return list(keys if keys is not None else facts.get("trace_code_digests") or [])
