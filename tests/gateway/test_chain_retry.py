"""Chain calls retried after a crash lost their receipt (the row says pending/unanchored, the chain has it):
the anchor cites the original transaction, workflow calls are confirmed, not rejected."""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select
from web3 import Web3

from adapters.abc import RecordFacts
from adapters.sharing import WORKFLOW as SHARING
from gateway.core.db import Database
from gateway.core.security import mint_token
from gateway.models import CheckpointRow, Record
from gateway.services.caller import ChainCaller
from gateway.services.chain import ChainReads, ReadCache
from gateway.services.ledger import Ledger
from gateway.services.workers import Stats
from provenance.chain.contracts import ContractReverted, at, chain_key
from provenance.errors import LedgerError
from provenance.records import Envelope
from tests.kit.gateway import (
    Harness,
    OrgClient,
    error_code,
    hj212_packets,
    party_meeting,
    rx_dispense,
    rx_issue,
    rx_revoke,
    share_access,
    share_consent,
    share_request,
    share_revoke_consent,
    sign_submission,
    verify_bundle,
    workerless_gateway,
)


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
    verify_bundle(harness.client("station-1").get(f"/api/v1/records/{rid}/bundle").json(), harness)


def test_workflow_calls_retried_after_lost_receipt_are_confirmed(harness: Harness) -> None:
    hospital, pharmacy = harness.client("hospital-1"), harness.client("pharmacy-1")
    owner, user = harness.client("data-owner"), harness.client("data-user")
    rx1, rx2, req = "RX" + _rand(), "RX" + _rand(), "SR" + _rand()

    def submit(client: OrgClient, kind: str, payload: Any) -> str:
        r = client.submit(kind, payload)
        assert r.status_code == 202, (kind, r.text)
        rid: str = r.json()["id"]
        return rid

    ids = [
        submit(hospital, "rx.issue", rx_issue(rx1)),
        submit(hospital, "rx.issue", rx_issue(rx2)),
        submit(pharmacy, "rx.dispense", rx_dispense(rx1)),
        submit(hospital, "rx.revoke", rx_revoke(rx2)),
        submit(user, "share.request", share_request(req, "data-user")),
        submit(owner, "share.consent", share_consent(req)),
    ]
    consent_digest = harness.record(ids[-1])["payload_digest"]
    access = submit(user, "share.access", share_access(req, consent_digest, "data-user"))
    # Withdrawn after the access: the access's retry meets an ended consent and is still known as ours.
    ids += [access, submit(owner, "share.revoke_consent", share_revoke_consent(req))]
    for rid in ids:
        assert harness.wait_chain(rid)["chain_status"] == "confirmed", rid
    access_tx = harness.record(access)["chain_tx"]
    db = Database(harness.settings.database_url)
    try:
        with db.write() as s:  # as a kill -9 between each call's receipt and its commit leaves them
            for rec in s.exec(select(Record).where(col(Record.id).in_(ids))).all():
                rec.chain_status, rec.chain_tx, rec.chain_error = "pending", None, None
                s.add(rec)
    finally:
        db.dispose()
    for rid in ids:
        rec = harness.wait_chain(rid)
        assert (rec["chain_status"], rec["chain_error"]) == ("confirmed", None), rec
    # The access is on chain once, from its original transaction: the retry was refused, not mined again.
    w3 = Web3(Web3.HTTPProvider(harness.network.rpc_url))
    sharing = at(w3, "DataSharing", harness.network.contracts["DataSharing"])
    logged = sharing.events.AccessRecorded().get_logs(
        from_block=0, argument_filters={"requestId": chain_key("share-request", req)}
    )
    assert [(e.args.accessDigest.hex(), e.transactionHash.to_0x_hex()) for e in logged] == [
        (access, access_tx)
    ]


def test_access_check_on_a_data_sharing_without_the_view(harness: Harness, tmp_path: Path) -> None:
    """A network deployed before DataSharing.accessRecorded existed (resumed from an older checkout): its
    contract never refused a repeat, so a reverted access is a real refusal, not a chain outage."""
    network = harness.network
    assert network.path is not None
    # A stand-in without the view: any other contract answers the unknown selector with an empty revert.
    old = dataclasses.replace(
        network, contracts={**network.contracts, "DataSharing": network.contracts["PartyRecords"]}
    )
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(old.to_dict(), ensure_ascii=False), "utf-8")
    ledger = Ledger(manifest_path=path, rpc_url=network.rpc_url)
    db = Database(harness.settings.database_url)
    try:
        access = RecordFacts(
            kind="share.access",
            org="data-user",
            subject="dataset:x",
            record_id=secrets.token_hex(32),
            payload_digest=secrets.token_hex(32),
            facts={"request_id": "SR" + _rand()},
        )
        revert = ContractReverted("ConsentNotLive")
        assert not SHARING.already_applied(access, revert, ChainReads(ledger, ReadCache(), db))
    finally:
        db.dispose()


def test_workflow_record_without_a_transaction_account(harness: Harness, tmp_path: Path) -> None:
    """The gateway holds transaction accounts for the organisations of its manifest. A workflow record of an
    organisation without one is refused at intake (TX_ACCOUNT_MISSING, 403: its contract call could never be
    sent); one accepted before its account left the manifest is marked rejected by the chain caller, which
    goes on with the next record instead of retrying it forever in front of every later call."""
    network = harness.network
    with workerless_gateway(harness, tmp_path, "party-branch") as (settings, http):
        db = Database(settings.database_url)
        try:
            hospital_token = mint_token(db, "hospital-1", label="test")
            branch_id = "zb-" + secrets.token_hex(3)
            party = sign_submission(
                "party-branch",
                network.sm2_key("party-branch"),
                "party.record",
                party_meeting(branch_id, "M-1"),
            )
            rx = sign_submission(
                "hospital-1", network.sm2_key("hospital-1"), "rx.issue", rx_issue("RX" + _rand())
            )
            assert http.post("/api/v1/records", json=party).status_code == 202
            r = http.post("/api/v1/records", json=rx, headers={"Authorization": f"Bearer {hospital_token}"})
            assert r.status_code == 202, r.text
            party_id, rx_id = Envelope.from_dict(party["record"]).digest, r.json()["id"]

            # The same network without the party branch's account: as if removed after acceptance.
            assert network.path is not None
            manifest = json.loads(network.path.read_text("utf-8"))
            manifest["orgs"] = [o for o in manifest["orgs"] if o["id"] != "party-branch"]
            for o in manifest["orgs"]:
                if o["id"] == "hospital-2":  # and one whose key file is gone: a configuration fault, named
                    o["account_key_file"] = "keys/gone.tx.key"
            # Beside the original: the key files it names are relative to the manifest.
            path = network.path.with_name(f"manifest-{secrets.token_hex(4)}.json")
            path.write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
            ledger = Ledger(manifest_path=path, rpc_url=network.rpc_url)
            with pytest.raises(LedgerError, match=r"cannot read the transaction key of 'hospital-2'"):
                ledger.account("hospital-2")
            chain = ChainReads(ledger, ReadCache(), db)
            caller = ChainCaller(db=db, ledger=ledger, chain=chain, stats=Stats(), idle=0.01, retry=30.0)
            started = time.monotonic()
            assert caller.step()
            assert time.monotonic() - started < 25  # no retry wait: the missing account is not an outage
            with db.session() as s:
                rows = {row.id: row for row in s.exec(select(Record)).all()}
            assert (rows[party_id].chain_status, rows[party_id].chain_error) == (
                "rejected",
                "TX_ACCOUNT_MISSING",
            )
            assert rows[rx_id].chain_status == "confirmed" and rows[rx_id].chain_tx
        finally:
            db.dispose()
    # At intake, a gateway on that manifest refuses the branch's workflow records before accepting them.
    (tmp_path / "second").mkdir()
    with workerless_gateway(harness, tmp_path / "second", "party-branch", manifest_path=path) as (_, http2):
        r = http2.post(
            "/api/v1/records",
            json=sign_submission(
                "party-branch",
                network.sm2_key("party-branch"),
                "party.record",
                party_meeting(branch_id, "M-2"),
            ),
        )
        assert r.status_code == 403 and error_code(r) == "TX_ACCOUNT_MISSING", r.text
        assert r.json()["error"]["details"] == {"org": "party-branch", "kind": "party.record"}
    path.unlink()
