"""The sharing domain's demo records on a new devnet: one dataset's whole life (issue #18), each record
signed by the organisation that acts: the data owner collects and stores a survey, the data user requests it,
the owner consents, the user reads it and derives district rates from it, which it stores (important, as its
input; under the consent, so never opened); the period's access is settled by the owner and countersigned by
the user, and the owner opens the survey to the user. Look it up on /verify as ``dataset:demo-census`` (its
lineage shows ``demo-census-rates``). ``devnet/demo.py`` hands each registered domain its writer."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.abc import DemoWriter
from adapters.sharing.lifecycle import content_root
from provenance.crypto.sm3 import sm3_hex

DATASET, DERIVED, REQUEST, SETTLEMENT = "demo-census", "demo-census-rates", "DEMO-REQ-1", "DEMO-SET-1"
OWNER, USER = "data-owner", "data-user"
PURPOSE = "城乡居民医保参保核查"
_ROWS = [f"{i},district-{i % 7},insured".encode() for i in range(20)]


def _at(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stored(dataset: str, classification: str) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "location": "政务云 渝北节点 /lake/health",
        "retention_days": 3650,
        "classification": classification,
        "stored_at": _at(),
    }


def data_life(w: DemoWriter) -> None:
    """The demo dataset's life, record by record (the module's story)."""

    def put(org: str, kind: str, payload: Mapping[str, Any], *, mined: bool = False) -> str:
        return w.put(org, kind, f"dataset:{payload['dataset']}", payload, mined=mined)

    collected = {
        "dataset": DATASET,
        "owner": OWNER,
        "source": "区县卫健委直报系统",
        "schema_digest": sm3_hex(b'{"columns":["person_id_hash","district","insured"]}'),
        "content_root": content_root(_ROWS),
        "leaf_count": len(_ROWS),
        "collected_at": _at(-timedelta(minutes=5)),
    }
    put(OWNER, "data.collected", collected, mined=True)
    put(OWNER, "data.stored", _stored(DATASET, "important"))
    fields = ["person_id_hash", "household_district", "insured_status"]
    request = {
        "request_id": REQUEST,
        "dataset": DATASET,
        "requester": USER,
        "fields": fields,
        "purpose": PURPOSE,
        "requested_at": _at(-timedelta(minutes=4)),
    }
    put(USER, "share.request", request, mined=True)
    consent = {
        "request_id": REQUEST,
        "dataset": DATASET,
        "fields": fields[::2],
        "purpose": PURPOSE,
        "granted_at": _at(-timedelta(minutes=3)),
        "expires_at": _at(timedelta(days=180)),
    }
    consent_id = put(OWNER, "share.consent", consent, mined=True)
    start = _at(-timedelta(minutes=2))
    access = {
        "request_id": REQUEST,
        "consent_digest": w.payload_digest(consent_id),
        "dataset": DATASET,
        "fields": ["person_id_hash"],
        "purpose": PURPOSE,
        "accessor": USER,
        "accessed_at": _at(-timedelta(seconds=1)),
    }
    put(USER, "share.access", access, mined=True)  # metered on chain before it is settled
    derived = {
        "dataset": DERIVED,
        "analyst": USER,
        "inputs": [{"dataset": DATASET, "request_id": REQUEST}],
        "purpose": PURPOSE,
        "method": "按区县汇总参保率",
        "schema_digest": sm3_hex(b'{"columns":["district","rate"]}'),
        "content_root": content_root([f"district-{d},0.9{d}".encode() for d in range(7)]),
        "leaf_count": 7,
        "derived_at": _at(),
    }
    put(USER, "data.derived", derived, mined=True)
    put(USER, "data.stored", _stored(DERIVED, "important"))  # no lower than its input's class
    time.sleep(1.0)  # the period ends after the access (whole seconds)
    end = _at()
    settled = {
        "settlement_id": SETTLEMENT,
        "request_id": REQUEST,
        "dataset": DATASET,
        "provider": OWNER,
        "consumer": USER,
        "period_start": start,
        "period_end": end,
        "access_count": 1,
        "unit_price": 150,
        "amount": 150,
        "currency": "CNY",
        "settled_at": end,
    }
    proposal = put(OWNER, "data.settled", settled, mined=True)
    countersigned = {
        "settlement_id": SETTLEMENT,
        "dataset": DATASET,
        "settlement_digest": w.payload_digest(proposal),
        "countersigned_at": _at(),
    }
    put(USER, "data.countersigned", countersigned)
    opened = {
        "dataset": DATASET,
        "licence": "政务数据共享协议",
        "public": False,
        "to": [USER],
        "opened_at": _at(),
    }
    put(OWNER, "data.opened", opened)  # important data: to named organisations only
