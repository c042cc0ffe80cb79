"""GasNetwork: a gas utility registers, suspends and anchors the batches of its own data loggers; no other
role, and no other utility, may (the anchoring rules are SensorStations', tested with EnvMonitoring)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from web3.contract import Contract
from web3.logs import DISCARD

from provenance.chain.contracts import Role
from tests.kit.contract_roles import unauthorized
from tests.kit.contracts import Chain, Deployment


@pytest.fixture
def gas(deployment: Deployment) -> Contract:
    return deployment.suite["GasNetwork"]


def test_a_utility_registers_and_anchors_its_loggers(
    chain: Chain, deployment: Deployment, gas: Contract, unique: Callable[[str], bytes]
) -> None:
    utility, acct = deployment.orgs["gas-utility-1"], deployment.account("gas-utility-1")
    lid = unique("logger")
    receipt = chain.tx(gas.functions.registerLogger(lid, b"m" * 32), acct)
    (event,) = gas.events.StationRegistered().process_receipt(receipt, errors=DISCARD)
    assert (event.args.stationId, event.args.operatorOrg) == (lid, utility.id)
    assert gas.functions.operatorRole().call() == Role.GAS_UTILITY
    receipt = chain.tx(gas.functions.anchorBatch(lid, 0, 3600, b"\x07" * 32, 12), acct)
    (event,) = gas.events.BatchAnchored().process_receipt(receipt, errors=DISCARD)
    assert (event.args.batchIndex, event.args.merkleRoot, event.args.count) == (0, b"\x07" * 32, 12)
    assert gas.functions.batchAt(lid, 0).call()[:5] == (0, 3600, b"\x07" * 32, 12, acct.address)
    with chain.reverts("PeriodOverlap"):
        chain.tx(gas.functions.anchorBatch(lid, 3599, 7200, b"\x08" * 32, 1), acct)
    with chain.reverts("StationExists"):
        chain.tx(gas.functions.registerLogger(lid, b"m" * 32), deployment.account("gas-utility-2"))

    # Another utility neither anchors nor suspends it; its own utility suspends and resumes it.
    other = deployment.account("gas-utility-2")
    with chain.reverts("NotStationOperator") as info:
        chain.tx(gas.functions.anchorBatch(lid, 3600, 7200, b"\x08" * 32, 1), other)
    assert info.value.details["args"] == [lid, deployment.orgs["gas-utility-2"].id]
    with chain.reverts("NotStationOperator"):
        chain.tx(gas.functions.setLoggerActive(lid, False), other)
    chain.tx(gas.functions.setLoggerActive(lid, False), acct)
    with chain.reverts("StationInactive"):
        chain.tx(gas.functions.anchorBatch(lid, 3600, 7200, b"\x08" * 32, 1), acct)
    chain.tx(gas.functions.setLoggerActive(lid, True), acct)
    chain.tx(gas.functions.anchorBatch(lid, 3600, 7200, b"\x08" * 32, 1), acct)
    with chain.reverts("StationNotFound"):
        chain.tx(gas.functions.setLoggerActive(unique("logger"), False), acct)


def test_only_gas_utilities(
    chain: Chain, deployment: Deployment, gas: Contract, unique: Callable[[str], bytes]
) -> None:
    lid = unique("logger")
    chain.tx(gas.functions.registerLogger(lid, b"m" * 32), deployment.account("gas-utility-1"))
    cases = [
        gas.functions.registerLogger(unique("logger"), b"m" * 32),
        gas.functions.setLoggerActive(lid, False),
        gas.functions.anchorBatch(lid, 0, 1, b"r" * 32, 1),
    ]
    for fn in cases:
        for who in ("station-1", "env-bureau-1"):
            unauthorized(chain, fn, deployment.account(who), Role.GAS_UTILITY)
