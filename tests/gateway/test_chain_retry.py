"""Chain calls retried after a crash lost their receipt (the row says pending/unanchored, the chain has it):
the anchor cites the original transaction, workflow calls are confirmed, not rejected."""

from __future__ import annotations

import secrets

from gateway_kit import (
    Harness,
    hj212_packets,
    rx_dispense,
    rx_issue,
    rx_revoke,
    share_consent,
    share_request,
    share_revoke_consent,
    verify_bundle,
)
from sqlmodel import col, select

from gateway.core.db import Database
from gateway.models import CheckpointRow, Record


def _rand() -> str:
    return secrets.token_hex(5).upper()


def test_anchor_retried_after_lost_receipt_cites_the_original_tx(harness: Harness) -> None:
    r = harness.client("station-1").submit("env.reading", hj212_packets(1)[0])
    rid = r.json()["id"]
    harness.wait_status(rid, "anchored")
    db = Database(harness.settings.database_url)
    try:
        with db.write() as s:  # as a kill -9 between the anchor's receipt and its commit leaves it
            top = s.exec(select(CheckpointRow).order_by(col(CheckpointRow.size).desc())).first()
            assert top is not None and top.anchor_tx is not None
            size, tx, block = top.size, top.anchor_tx, top.anchor_block_number
            top.anchor_tx = top.anchor_block_hash = None
            top.anchor_block_number = None
            s.add(top)

        def anchored_again() -> CheckpointRow | None:
            with db.session() as s:
                row = s.get(CheckpointRow, size)
                return row if row is not None and row.anchor_tx is not None else None

        again = harness.wait(anchored_again, what="checkpoint anchored again")
    finally:
        db.dispose()
    assert (again.anchor_tx, again.anchor_block_number) == (tx, block)
    verify_bundle(harness.client("station-1").get(f"/api/v1/records/{rid}/bundle").json(), harness.network)


def test_workflow_calls_retried_after_lost_receipt_are_confirmed(harness: Harness) -> None:
    hospital, pharmacy = harness.client("hospital-1"), harness.client("pharmacy-1")
    owner, user = harness.client("data-owner"), harness.client("data-user")
    rx1, rx2, req = "RX" + _rand(), "RX" + _rand(), "SR" + _rand()
    ids = []
    for client, kind, payload in (
        (hospital, "rx.issue", rx_issue(rx1)),
        (hospital, "rx.issue", rx_issue(rx2)),
        (pharmacy, "rx.dispense", rx_dispense(rx1)),
        (hospital, "rx.revoke", rx_revoke(rx2)),
        (user, "share.request", share_request(req, "data-user")),
        (owner, "share.consent", share_consent(req)),
        (owner, "share.revoke_consent", share_revoke_consent(req)),
    ):
        r = client.submit(kind, payload)
        assert r.status_code == 202, (kind, r.text)
        ids.append(r.json()["id"])
    for rid in ids:
        assert harness.wait_chain(rid)["chain_status"] == "confirmed", rid
    db = Database(harness.settings.database_url)
    try:
        with db.write() as s:
            for rec in s.exec(select(Record).where(col(Record.id).in_(ids))).all():
                rec.chain_status, rec.chain_tx, rec.chain_error = "pending", None, None
                s.add(rec)
    finally:
        db.dispose()
    for rid in ids:
        rec = harness.wait_chain(rid)
        assert (rec["chain_status"], rec["chain_error"]) == ("confirmed", None), rec
