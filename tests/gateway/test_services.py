"""The gateway's services one at a time, without HTTP: a ``Gateway`` built on the session's real network
(its node, its contracts, its organisations) and a database of its own, workers not started, each service
driven directly: the ledger's one chain-error mapping, the read cache and the chain view rules read, the
workflow states (compare-and-set, advisory locks by key), intake, the chain caller, the sequencer, reads."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from adapters import State
from devnet.engines import EngineHandle
from gateway.errors import OrgUnknown, StateConflict
from gateway.models import Record, WorkflowState
from gateway.services.chain import ChainReads, ReadCache, Recorded
from gateway.services.intake import Submission
from gateway.services.ledger import Ledger
from gateway.services.reads import find_record, payload_of, record_public
from gateway.services.runtime import Gateway
from gateway.services.states import TxStates, lock_id, read_states
from provenance.chain.contracts import ContractReverted, org_id
from provenance.errors import LedgerError, ProvenanceError, SignatureInvalid
from provenance.manifest import Manifest
from provenance.records import Envelope, b64decode
from tests.kit.gateway import Harness, gateway_settings, party_meeting, party_membership, sign_submission
from tests.kit.network import variant_network


@pytest.fixture
def gw(harness: Harness, engine: EngineHandle, tmp_path: Path) -> Iterator[Gateway]:
    """A gateway of its own on the session's network, on a SQLite database and a ProvenanceLog of its own
    (an empty log under the session's anchors would be a log behind the chain: a restore's), workers not
    started."""
    network = variant_network(harness.network, engine, "services-" + secrets.token_hex(3))
    settings = gateway_settings(tmp_path, network, network.rpc_url, start_workers=False)
    gateway = Gateway(settings)
    try:
        yield gateway
    finally:
        gateway.stop()


def _submission(network: Manifest, org: str, kind: str, payload: Any) -> Submission:
    body = sign_submission(org, network.sm2_key(org), kind, payload)
    return Submission(record=body["record"], signature=body["signature"], payload=body["payload"])


# --- ledger: one mapping of what web3.py raises ------------------------------------------------------


def test_ledger_maps_reverts_and_outages(gw: Gateway, harness: Harness) -> None:
    with pytest.raises(ContractReverted) as reverted:
        gw.ledger.call("OrgRegistry", "getOrg", org_id("nobody-" + secrets.token_hex(3)))
    assert reverted.value.error == "OrgNotFound"
    assert gw.ledger.org("nobody") is None  # the org read turns that revert into "not registered"
    with pytest.raises(LedgerError, match="names no contract"):
        gw.ledger.contract("NoSuchContract")
    assert harness.network.path is not None
    down = Ledger(manifest_path=harness.network.path, rpc_url="http://127.0.0.1:9")  # nothing listens
    with pytest.raises(LedgerError) as outage:
        down.call("OrgRegistry", "orgIds")
    assert type(outage.value) is LedgerError  # an outage, not a revert: CHAIN_UNAVAILABLE at the edge
    assert down.contract_clock().tzinfo is not None  # the gateway's clock stands in for the chain's


# --- the chain view rules read -----------------------------------------------------------------------


def test_read_cache_expires_on_invalidate_and_falls_back_while_the_chain_is_down() -> None:
    cache, reads = ReadCache(), []

    def read(value: int) -> Callable[[], int]:
        def go() -> int:
            reads.append(value)
            return value

        return go

    def down() -> int:
        raise LedgerError("chain unavailable")

    assert cache.get("k", read(1)) == 1
    assert cache.get("k", read(2)) == 1 and reads == [1]  # cached
    cache.invalidate()
    assert cache.get("k", down) == 1  # expired, but the last known value while the chain is down
    assert cache.get("k", read(3)) == 3 and reads == [1, 3]
    with pytest.raises(LedgerError):
        cache.get("never-read", down)  # nothing known: the read fails


class _Counting(ChainReads):
    def __init__(self, base: ChainReads) -> None:
        self.__dict__.update(base.__dict__)
        self.calls = 0

    def call(self, contract: str, function: str, *args: Any) -> Any:
        self.calls += 1
        return super().call(contract, function, *args)


def test_recorded_view_replays_a_record_s_chain_reads(gw: Gateway) -> None:
    counting = _Counting(gw.chain)
    view = Recorded(counting)
    first = view.call("OrgRegistry", "orgIds")
    assert view.call("OrgRegistry", "orgIds") == first and counting.calls == 1
    assert view.clock() == view.clock()
    assert view.refused("00" * 32) is False  # a record this gateway does not hold was not refused
    with pytest.raises(ContractReverted):
        view.call("OrgRegistry", "getOrg", org_id("nobody"))
    with pytest.raises(ContractReverted):
        view.call("OrgRegistry", "getOrg", org_id("nobody"))
    assert counting.calls == 3  # a failed read is asked again, never remembered


# --- workflow states --------------------------------------------------------------------------------


def test_states_compare_and_set(gw: Gateway) -> None:
    key = "member:" + secrets.token_hex(4)
    postgres = not gw.db.is_sqlite
    with gw.db.write() as s:
        tx = TxStates(s, postgres=postgres)
        assert tx.read("party", [key]) == {key: read_states(s, "party", [key])[key]}
        tx.write("party", {key: State("入党申请人", {"branch_id": "zb-1"})})
        tx.write("party", {key: State("入党积极分子", {"branch_id": "zb-1"})})  # its own write, seen
        tx.flush()  # the insert, then the update of the version it inserted
    with gw.db.session() as s:
        stored = read_states(s, "party", [key])[key]
    assert (stored.state, stored.version) == (State("入党积极分子", {"branch_id": "zb-1"}), 2)
    # A writer whose read went stale (another transaction changed the state since) changes nothing.
    with pytest.raises(StateConflict), gw.db.write() as s:
        tx = TxStates(s, postgres=postgres)
        tx.read("party", [key])
        s.connection().execute(
            text("UPDATE workflow_state SET version = version + 1 WHERE domain = 'party' AND key = :k"),
            {"k": key},
        )
        tx.write("party", {key: State("发展对象", {"branch_id": "zb-1"})})
        tx.flush()
    with gw.db.session() as s:
        row = s.get(WorkflowState, ("party", key))
    assert row is not None and (row.status, row.version) == ("入党积极分子", 2)  # rolled back whole
    assert lock_id("party", key) == lock_id("party", key) != lock_id("rx", key)


@pytest.mark.skipif(not os.environ.get("PROV_TEST_PG_URL"), reason="advisory locks are PostgreSQL's")
def test_advisory_locks_serialise_writers_of_one_key(harness: Harness, tmp_path: Path) -> None:
    url = os.environ["PROV_TEST_PG_URL"]
    settings = gateway_settings(tmp_path, harness.network, harness.network.rpc_url, database_url=url)
    from gateway.core.db import Database

    db = Database(settings.database_url)
    key, order = ("party", "member:" + secrets.token_hex(4)), []
    held, release = threading.Event(), threading.Event()

    def first() -> None:
        with db.write() as s:
            TxStates(s, postgres=True).lock([key])
            held.set()
            release.wait(10)
            order.append("first")

    def second() -> None:
        held.wait(10)
        with db.write() as s:
            TxStates(s, postgres=True).lock([key])
            order.append("second")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for t in threads:
            t.start()
        held.wait(10)
        time.sleep(0.5)
        assert order == []  # the second writer waits on the key's lock
        release.set()
        for t in threads:
            t.join(10)
        assert order == ["first", "second"]
    finally:
        release.set()
        db.dispose()


# --- intake, chain caller, sequencer, reads ----------------------------------------------------------


def test_intake_runs_the_domain_s_rules_before_and_inside_the_write(gw: Gateway, harness: Harness) -> None:
    network, branch = harness.network, "zb-" + secrets.token_hex(3)
    member = f"{branch}.S1"

    def membership(stage: str, previous: str | None) -> Submission:
        return _submission(
            network, "party-branch", "party.record", party_membership(branch, stage, previous, member=member)
        )

    first = gw.intake.submit("party-branch", membership("入党申请人", None))
    assert first.created
    # One bulk request: the second step follows the first (decided in order, the first written first);
    # the third repeats a step and meets the state the second left.
    results = gw.intake.submit_many(
        "party-branch",
        [
            membership("入党积极分子", "入党申请人"),
            membership("发展对象", "入党积极分子"),
            membership("发展对象", "入党积极分子"),
        ],
    )
    assert [getattr(r, "created", None) for r in results[:2]] == [True, True]
    assert isinstance(results[2], ProvenanceError) and results[2].code == "PARTY_STAGE_TRANSITION_INVALID"
    # The member's state, under the keyed digest of their id (never the id itself).
    with gw.db.session() as s:
        rows = s.exec(select(WorkflowState).where(col(WorkflowState.domain) == "party")).all()
    (row,) = [r for r in rows if r.data.get("branch_id") == branch]
    assert row.key.startswith("member:") and member not in row.key
    assert (row.status, row.version) == ("发展对象", 3)
    # Signed by another org's key: the signature check refuses it before any rule runs.
    forged = sign_submission(
        "party-branch", network.sm2_key("hospital-1"), "party.record", party_meeting(branch, "M-9")
    )
    with pytest.raises(SignatureInvalid):
        gw.intake.submit("party-branch", Submission(forged["record"], forged["signature"], forged["payload"]))
    with pytest.raises(OrgUnknown):
        gw.orgs.require("ghost-org")


def test_chain_caller_sequencer_and_reads(gw: Gateway, harness: Harness) -> None:
    branch = "zb-" + secrets.token_hex(3)
    meeting = party_meeting(branch, "M-1")
    sub = _submission(harness.network, "party-branch", "party.record", meeting)
    accepted = gw.intake.submit("party-branch", sub)
    with gw.db.session() as s:
        row = find_record(s, accepted.id)
        assert row is not None
        assert record_public(row, 0).status == "accepted" and row.chain_status == "pending"
        assert payload_of(s, row, gw.kek) == meeting  # decrypted with its data key, as canonicalised
    # The chain caller sends the domain's call (PartyRecords.addRecord) with the branch's account.
    assert gw.chain_caller.step()
    with gw.db.session() as s:
        row = find_record(s, accepted.id)
        assert row is not None and (row.chain_status, row.chain_error) == ("confirmed", None)
        assert row.chain_tx is not None and row.chain_tx.startswith("0x")
    # Sent again after a crash lost the receipt: the contract refuses the repeat, the domain tells it is
    # ours, the record stays confirmed.
    with gw.db.write() as s:
        fresh = s.exec(select(Record).where(Record.id == accepted.id)).one()
        fresh.chain_status, fresh.chain_tx = "pending", None
        s.add(fresh)
    assert gw.chain_caller.step()
    with gw.db.session() as s:
        row = find_record(s, accepted.id)
        assert row is not None and (row.chain_status, row.chain_error) == ("confirmed", None)
    # The sequencer puts it in the log: leaf 0 of this gateway's log, its envelope as signed.
    gw.sequencer.step()
    with gw.db.session() as s:
        row = find_record(s, accepted.id)
        assert row is not None and row.leaf_index == 0
        assert record_public(row, 0).status == "sequenced" and record_public(row, 1).status == "anchored"
    assert Envelope.from_dict(sub.record).digest == accepted.id
    assert b64decode(row.signature) == b64decode(sub.signature)
