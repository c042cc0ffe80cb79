"""Payloads of a dataset's life (``data.*``, adapters/sharing/lifecycle.py) for tests: valid by default."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from adapters.sharing.lifecycle import content_root
from provenance.crypto.sm3 import sm3_hex

if TYPE_CHECKING:
    from tests.kit.gateway import Harness, OrgClient

PURPOSE = "城乡居民医保参保核查"  # the kit's share_request and share_consent purpose
ROWS = [f"{i},district-{i % 7},insured".encode() for i in range(11)]


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now(delta: timedelta = timedelta(0)) -> str:
    return _iso(datetime.now(UTC) + delta)


def fresh(prefix: str) -> str:
    # The SQLite and PostgreSQL runs share one chain: a collected dataset is registered there.
    return f"{prefix}-{secrets.token_hex(4)}"


def collected(dataset: str, owner: str = "data-owner") -> dict[str, Any]:
    return {
        "dataset": dataset,
        "owner": owner,
        "source": "区县卫健委直报系统",
        "schema_digest": sm3_hex(b'{"columns":["person_id_hash","district","insured"]}'),
        "content_root": content_root(ROWS),
        "leaf_count": len(ROWS),
        "collected_at": now(-timedelta(minutes=2)),
    }


def stored(dataset: str, classification: str = "general") -> dict[str, Any]:
    return {
        "dataset": dataset,
        "location": "政务云 渝北节点 /lake/health",
        "retention_days": 3650,
        "classification": classification,
        "stored_at": now(),  # after what it stores was collected or derived (now)
    }


def opened(dataset: str, *, public: bool = True, to: list[str] | None = None) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "licence": "CC-BY-4.0",
        "public": public,
        "to": to or [],
        "opened_at": now(),
    }


def derived(
    output: str, inputs: list[dict[str, Any]], analyst: str = "data-user", **kw: Any
) -> dict[str, Any]:
    return {
        "dataset": output,
        "analyst": analyst,
        "inputs": inputs,
        "purpose": kw.get("purpose", PURPOSE),
        "method": "按区县汇总参保率",
        "schema_digest": sm3_hex(b'{"columns":["district","rate"]}'),
        "content_root": content_root([b"district-0,0.97", b"district-1,0.95"]),
        "leaf_count": 2,
        "derived_at": now(),
    }


def settled(request_id: str, start: str, end: str, count: int, **kw: Any) -> dict[str, Any]:
    price = kw.get("unit_price", 150)
    return {
        "settlement_id": kw.get("settlement_id", fresh("SET")),
        "request_id": request_id,
        "dataset": "health-stats",
        "provider": kw.get("provider", "data-owner"),
        "consumer": "data-user",
        "period_start": start,
        "period_end": end,
        "access_count": count,
        "unit_price": price,
        "amount": kw.get("amount", count * price),
        "currency": "CNY",
        "settled_at": end,
    }


def countersigned(settlement: dict[str, Any], digest: str) -> dict[str, Any]:
    return {
        "settlement_id": settlement["settlement_id"],
        "dataset": "health-stats",
        "settlement_digest": digest,
        "countersigned_at": now(),
    }


# The kinds of the input dataset's own records in the whole life below, in acceptance order.
INPUT_LIFE = (
    "data.collected",
    "data.stored",
    "share.request",
    "share.consent",
    "share.access",
    "data.settled",
    "data.countersigned",
    "data.opened",
)


@dataclass(frozen=True)
class Life:
    """A dataset's whole life as :func:`record_life` recorded it."""

    dataset: str  # the input: collected by data-owner
    out: str  # derived from it by data-user under its consent and stored (bound by it: never opened)
    ids: list[str]  # every record, in acceptance order (the derivation is ids[5])
    proposal: dict[str, Any]  # the data.settled payload
    digest: str  # its payload digest, which the countersignature names

    @property
    def input_ids(self) -> list[str]:
        return [*self.ids[:5], *self.ids[7:]]

    @property
    def output_ids(self) -> list[str]:
        return self.ids[5:7]


def record_life(harness: Harness) -> Life:
    """The issue's acceptance path through the real gateway: collected, stored, shared under a consent,
    accessed, used in an analysis whose output is stored, the period settled by both sides; the owner then
    opens its dataset."""
    from tests.kit.gateway import share_access, share_consent, share_request

    owner, user = harness.client("data-owner"), harness.client("data-user")

    def put(client: OrgClient, kind: str, payload: dict[str, Any]) -> str:
        r = client.submit(kind, payload)
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    dataset, out, request_id = fresh("census"), fresh("census-rates"), fresh("REQ")
    ids = [put(owner, "data.collected", collected(dataset))]
    assert harness.wait_chain(ids[0])["chain_status"] == "confirmed"  # registered: requests may name it
    ids.append(put(owner, "data.stored", stored(dataset)))
    ids.append(put(user, "share.request", share_request(request_id, "data-user", dataset=dataset)))
    ids.append(put(owner, "share.consent", share_consent(request_id, dataset=dataset)))
    consent_digest = str(harness.record(ids[-1])["payload_digest"])
    start = now(-timedelta(minutes=1))
    access = share_access(request_id, consent_digest, "data-user", dataset=dataset)
    ids.append(put(user, "share.access", access))
    ids.append(put(user, "data.derived", derived(out, [{"dataset": dataset, "request_id": request_id}])))
    ids.append(put(user, "data.stored", stored(out)))
    time.sleep(1.1)  # the period ends after the access (whole seconds)
    proposal = {**settled(request_id, start, now(), 1), "dataset": dataset}
    ids.append(put(owner, "data.settled", proposal))
    digest = str(harness.record(ids[-1])["payload_digest"])
    ids.append(put(user, "data.countersigned", {**countersigned(proposal, digest), "dataset": dataset}))
    ids.append(put(owner, "data.opened", opened(dataset)))
    return Life(dataset=dataset, out=out, ids=ids, proposal=proposal, digest=digest)
