"""The chain caller sends one organisation's consecutive calls without waiting for each receipt: a call in
the middle that the contract refuses is rejected with its error, the others are confirmed, in order."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select
from web3 import Web3

from gateway.core.db import Database
from gateway.models import Record
from gateway.services.caller import ChainCaller
from gateway.services.chain import ChainReads, ReadCache
from gateway.services.ledger import Ledger
from gateway.services.workers import Stats
from provenance.chain.contracts import at, chain_key, transact
from tests.kit.gateway import (
    Harness,
    env_batch,
    hj212_series,
    register_station,
    sign_submission,
    workerless_gateway,
)


def test_pipelined_calls_a_refused_one_in_the_middle(harness: Harness, tmp_path: Path) -> None:
    network = harness.network
    key = network.sm2_key("station-1")
    mns = [register_station(network) for _ in range(3)]
    start = (datetime.now(UTC) - timedelta(seconds=300)).replace(microsecond=0)
    end = start + timedelta(seconds=10)
    with workerless_gateway(harness, tmp_path, "station-1") as (settings, http):
        ids = []
        for mn in mns:  # three stations of one organisation: one run of three anchorBatch calls
            body = sign_submission(
                "station-1", key, "env.batch", env_batch(hj212_series(mn, start, 3), mn, start, end)
            )
            deadline = time.monotonic() + 20
            while (r := http.post("/api/v1/records", json=body)).status_code != 202:
                assert time.monotonic() < deadline, r.text  # until the gateway has seen the registration
                time.sleep(0.2)
            ids.append(r.json()["id"])
        # After acceptance, behind the gateway's back: the middle station's period moves past its batch's.
        w3 = Web3(Web3.HTTPProvider(network.rpc_url))
        env = at(w3, "EnvMonitoring", network.contracts["EnvMonitoring"])
        later = int(end.timestamp()) + 20
        rogue = env.functions.anchorBatch(chain_key("station", mns[1]), later, later + 5, b"\x11" * 32, 5)
        transact(w3, rogue, network.account("station-1"))

        db = Database(settings.database_url)
        try:
            ledger = Ledger(manifest_path=settings.manifest_path, rpc_url=network.rpc_url)
            chain = ChainReads(ledger, ReadCache(), db)
            caller = ChainCaller(db=db, ledger=ledger, chain=chain, stats=Stats(), idle=0.01, retry=30.0)
            assert caller.step()
            with db.session() as s:
                rows = {row.id: row for row in s.exec(select(Record)).all()}
        finally:
            db.dispose()
    first, middle, last = (rows[i] for i in ids)
    assert (middle.chain_status, middle.chain_error, middle.chain_tx) == ("rejected", "PeriodOverlap", None)
    assert first.chain_status == last.chain_status == "confirmed" and first.chain_error is None
    assert first.chain_tx and last.chain_tx
    # Both mined and succeeded, in acceptance order: consecutive nonces of the account (the refused call
    # took none), the first in an earlier block.
    txs = [w3.eth.get_transaction(row.chain_tx) for row in (first, last)]  # type: ignore[arg-type]
    receipts = [w3.eth.get_transaction_receipt(row.chain_tx) for row in (first, last)]  # type: ignore[arg-type]
    assert [r["status"] for r in receipts] == [1, 1]
    assert txs[1]["nonce"] == txs[0]["nonce"] + 1
    assert receipts[0]["blockNumber"] < receipts[1]["blockNumber"]

    # The chain holds the accepted batches' roots for the first and last stations, the rogue one for the
    # middle station (the gateway's was never applied).
    def first_root(mn: str) -> str:
        return bytes(env.functions.batchAt(chain_key("station", mn), 0).call()[2]).hex()

    assert [first_root(mn) for mn in mns] == [first.facts["root"], "11" * 32, last.facts["root"]]
