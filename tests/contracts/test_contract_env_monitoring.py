"""EnvMonitoring: stations registered by the bureau, batch anchors by the station's operator only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from web3.contract import Contract
from web3.logs import DISCARD

from provenance.chain.contracts import Role
from tests.kit.contract_roles import unauthorized
from tests.kit.contracts import Chain, Deployment


@pytest.fixture
def env(deployment: Deployment) -> Contract:
    return deployment.suite["EnvMonitoring"]


def station(
    chain: Chain, dep: Deployment, unique: Callable[[str], bytes], operator: str = "station-1"
) -> bytes:
    sid = unique("station")
    fn = dep.suite["EnvMonitoring"].functions.registerStation(sid, dep.orgs[operator].id, b"m" * 32)
    chain.tx(fn, dep.account("env-bureau-1"))
    return sid


def test_register_and_anchor_batches(
    chain: Chain, deployment: Deployment, env: Contract, unique: Callable[[str], bytes]
) -> None:
    operator = deployment.orgs["station-1"]
    sid = unique("station")
    receipt = chain.tx(
        env.functions.registerStation(sid, operator.id, b"m" * 32), deployment.account("env-bureau-1")
    )
    (event,) = env.events.StationRegistered().process_receipt(receipt, errors=DISCARD)
    assert (event.args.stationId, event.args.operatorOrg) == (sid, operator.id)
    assert sid in env.functions.stationIds().call()
    acct = deployment.account("station-1")
    for i, (start, end) in enumerate([(0, 3600), (3600, 7200), (9000, 9600)]):
        receipt = chain.tx(env.functions.anchorBatch(sid, start, end, bytes([i + 1]) * 32, 60), acct)
        (event,) = env.events.BatchAnchored().process_receipt(receipt, errors=DISCARD)
        assert (event.args.batchIndex, event.args.periodStart, event.args.periodEnd) == (i, start, end)
    assert env.functions.batchCount(sid).call() == 3
    batch = env.functions.batchAt(sid, 1).call()
    assert batch[:5] == (3600, 7200, b"\x02" * 32, 60, acct.address)
    s = env.functions.stationOf(sid).call()
    assert (s[0], s[2], s[4], s[5]) == (operator.id, True, 9600, 3)
    with chain.reverts("IndexOutOfRange"):
        chain.call(env.functions.batchAt(sid, 3))


def test_batch_errors(
    chain: Chain, deployment: Deployment, env: Contract, unique: Callable[[str], bytes]
) -> None:
    sid = station(chain, deployment, unique)
    acct = deployment.account("station-1")
    chain.tx(env.functions.anchorBatch(sid, 100, 200, b"r" * 32, 1), acct)
    with chain.reverts("PeriodOverlap") as info:
        chain.tx(env.functions.anchorBatch(sid, 199, 300, b"r" * 32, 1), acct)
    assert info.value.details["args"] == [199, 200]
    with chain.reverts("InvalidPeriod"):
        chain.tx(env.functions.anchorBatch(sid, 300, 300, b"r" * 32, 1), acct)
    with chain.reverts("EmptyBatch"):
        chain.tx(env.functions.anchorBatch(sid, 300, 400, b"r" * 32, 0), acct)
    with chain.reverts("NotStationOperator") as info:
        chain.tx(env.functions.anchorBatch(sid, 300, 400, b"r" * 32, 1), deployment.account("station-2"))
    assert info.value.details["args"] == [sid, deployment.orgs["station-2"].id]
    with chain.reverts("StationNotFound"):
        chain.tx(env.functions.anchorBatch(unique("station"), 300, 400, b"r" * 32, 1), acct)

    bureau = deployment.account("env-bureau-1")
    receipt = chain.tx(env.functions.setStationActive(sid, False), bureau)
    assert len(env.events.StationStatusChanged().process_receipt(receipt, errors=DISCARD)) == 1
    with chain.reverts("StationInactive"):
        chain.tx(env.functions.anchorBatch(sid, 300, 400, b"r" * 32, 1), acct)
    chain.tx(env.functions.setStationActive(sid, True), bureau)
    chain.tx(env.functions.anchorBatch(sid, 300, 400, b"r" * 32, 1), acct)


def test_registration_errors(
    chain: Chain, deployment: Deployment, env: Contract, unique: Callable[[str], bytes]
) -> None:
    sid = station(chain, deployment, unique)
    bureau = deployment.account("env-bureau-1")
    with chain.reverts("StationExists"):
        chain.tx(env.functions.registerStation(sid, deployment.orgs["station-2"].id, b"m" * 32), bureau)
    for org in (deployment.orgs["hospital-1"].id, b"\x01" * 32):  # wrong role; no such org
        with chain.reverts("OperatorNotStation") as info:
            chain.tx(env.functions.registerStation(unique("station"), org, b"m" * 32), bureau)
        assert info.value.details["args"] == [org]
    with chain.reverts("StationNotFound"):
        chain.tx(env.functions.setStationActive(unique("station"), False), bureau)


def test_roles(chain: Chain, deployment: Deployment, env: Contract, unique: Callable[[str], bytes]) -> None:
    sid = station(chain, deployment, unique)
    operator = deployment.orgs["station-1"].id
    cases = [
        (env.functions.registerStation(unique("s"), operator, b"m" * 32), "station-1", Role.ENV_BUREAU),
        (env.functions.setStationActive(sid, False), "station-1", Role.ENV_BUREAU),
        (env.functions.anchorBatch(sid, 0, 1, b"r" * 32, 1), "env-bureau-1", Role.MONITORING_STATION),
    ]  # fmt: skip
    for fn, who, role in cases:
        unauthorized(chain, fn, deployment.account(who), role)
