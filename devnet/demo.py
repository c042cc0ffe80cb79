"""Demo records of a new devnet, so `make run` shows something to look up: one dataset's whole life
(issue #18) through the gateway, each record signed by the organisation that acts: the data owner collects
and stores a survey, the data user requests it, the owner consents, the user reads it and derives district
rates from it, which it stores (important, as its input; under the consent, so never opened); the period's
access is settled by the owner and countersigned by the user, and the owner opens the survey to the user.
Look it up on /verify as ``dataset:demo-census`` (its lineage shows ``demo-census-rates``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.sharing.lifecycle import content_root
from provenance.client import Client
from provenance.crypto.sm3 import sm3_hex
from provenance.errors import ProvenanceError

DATASET, DERIVED, REQUEST, SETTLEMENT = "demo-census", "demo-census-rates", "DEMO-REQ-1", "DEMO-SET-1"
OWNER, USER = "data-owner", "data-user"
PURPOSE = "城乡居民医保参保核查"
_ROWS = [f"{i},district-{i % 7},insured".encode() for i in range(20)]
_WAIT = 30.0  # seconds for a record's contract call to be mined


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


def seed_data_life(root: Path, gateway: str, on_step: Callable[[str], None]) -> None:
    """Record the demo dataset's life through ``gateway`` (the devnet's, just started, first run)."""
    on_step(f"recording the demo dataset's life (dataset:{DATASET})")
    with (
        Client.devnet(OWNER, root=root, gateway=gateway) as owner,
        Client.devnet(USER, root=root, gateway=gateway) as user,
    ):

        def put(client: Client, kind: str, payload: Mapping[str, Any], *, mined: bool = False) -> str:
            subject = f"dataset:{payload['dataset']}"
            receipt = client.submit(client.sign(kind=kind, subject=subject, payload=payload), payload)
            if mined:  # what a later record names must be on chain first (a request, its dataset)
                deadline = time.monotonic() + _WAIT
                while client.record(receipt.id)["chain_status"] not in ("confirmed", "rejected"):
                    if time.monotonic() > deadline:
                        raise ProvenanceError(f"{kind} {receipt.id} not on chain after {_WAIT:.0f} s")
                    time.sleep(0.2)
            return receipt.id

        collected = {
            "dataset": DATASET,
            "owner": OWNER,
            "source": "区县卫健委直报系统",
            "schema_digest": sm3_hex(b'{"columns":["person_id_hash","district","insured"]}'),
            "content_root": content_root(_ROWS),
            "leaf_count": len(_ROWS),
            "collected_at": _at(-timedelta(minutes=5)),
        }
        put(owner, "data.collected", collected, mined=True)
        put(owner, "data.stored", _stored(DATASET, "important"))
        fields = ["person_id_hash", "household_district", "insured_status"]
        request = {
            "request_id": REQUEST,
            "dataset": DATASET,
            "requester": USER,
            "fields": fields,
            "purpose": PURPOSE,
            "requested_at": _at(-timedelta(minutes=4)),
        }
        put(user, "share.request", request, mined=True)
        consent = {
            "request_id": REQUEST,
            "dataset": DATASET,
            "fields": fields[::2],
            "purpose": PURPOSE,
            "granted_at": _at(-timedelta(minutes=3)),
            "expires_at": _at(timedelta(days=180)),
        }
        consent_id = put(owner, "share.consent", consent, mined=True)
        start = _at(-timedelta(minutes=2))
        access = {
            "request_id": REQUEST,
            "consent_digest": owner.record(consent_id)["payload_digest"],
            "dataset": DATASET,
            "fields": ["person_id_hash"],
            "purpose": PURPOSE,
            "accessor": USER,
            "accessed_at": _at(-timedelta(seconds=1)),
        }
        put(user, "share.access", access, mined=True)  # metered on chain before it is settled
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
        put(user, "data.derived", derived, mined=True)
        put(user, "data.stored", _stored(DERIVED, "important"))  # no lower than its input's class
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
        proposal = put(owner, "data.settled", settled, mined=True)
        countersigned = {
            "settlement_id": SETTLEMENT,
            "dataset": DATASET,
            "settlement_digest": owner.record(proposal)["payload_digest"],
            "countersigned_at": _at(),
        }
        put(user, "data.countersigned", countersigned)
        opened = {
            "dataset": DATASET,
            "licence": "政务数据共享协议",
            "public": False,
            "to": [USER],
            "opened_at": _at(),
        }
        put(owner, "data.opened", opened)  # important data: to named organisations only
