"""A real network for the gateway tests: an engine, contracts and demo orgs (devnet.deploy), a gateway.

The engine is our embedded node when ``devnet.embedded`` exists, else anvil;
``PROV_TEST_ENGINE=anvil|embedded`` forces one. The gateway runs under uvicorn in a thread and is
driven over HTTP with httpx; its JSON-RPC goes through a TCP relay the tests can cut (a chain outage).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from gateway_kit import Harness, Relay, Server, gateway_settings

from devnet.deploy import Manifest, deploy_network
from devnet.engines import EngineHandle
from gateway.core.db import Database
from gateway.core.security import mint_token


def _engine_name() -> str:
    forced = os.environ.get("PROV_TEST_ENGINE")
    if forced:
        return forced
    return "embedded" if importlib.util.find_spec("devnet.embedded") else "anvil"


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineHandle]:
    """A fresh chain for the session."""
    name = _engine_name()
    if name == "embedded":
        from devnet.embedded import start_embedded
        from devnet.engines import test_accounts
        from devnet.network import create_address

        data_dir = tmp_path_factory.mktemp("chain")
        accounts = test_accounts(10)
        # Org accounts are created by deploy_network: the node consults OrgRegistry (the deployer's first
        # contract, so its address is known in advance) for senders its genesis does not list.
        cmd = [sys.executable, "-m", "chain_node", "init", "--out", str(data_dir / "genesis.json")]
        cmd += ["--data-dir", str(data_dir), "--admin", accounts[0].address]
        cmd += ["--permission-contract", create_address(accounts[0].address, 0)]
        for a in accounts[1:]:
            cmd += ["--alloc", a.address]
        subprocess.run(cmd, check=True, capture_output=True)
        handle = start_embedded(data_dir=data_dir, accounts=accounts)
    else:
        from devnet.anvil import start_anvil

        handle = start_anvil()
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def network(engine: EngineHandle, tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """Contracts deployed and the demo organisations registered through the committee."""
    return deploy_network(engine, out_dir=tmp_path_factory.mktemp("network"))


@pytest.fixture(scope="session")
def harness(
    network: Manifest, engine: EngineHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    """The gateway of the session, tokens minted for every demo organisation and an unregistered one."""
    tmp = tmp_path_factory.mktemp("gateway")
    relay = Relay(network.rpc_url)
    pg = os.environ.get("PROV_TEST_PG_URL")
    settings = gateway_settings(tmp, network, relay.url, **({"database_url": pg} if pg else {}))
    db = Database(settings.database_url)
    db.create_all()
    tokens = {o.id: mint_token(db, o.id, label="test") for o in network.orgs}
    tokens["ghost-org"] = mint_token(db, "ghost-org", label="unregistered")
    db.dispose()
    server = Server(settings)
    h = Harness(network=network, engine=engine, settings=settings, relay=relay, server=server, tokens=tokens)
    yield h
    h.server.stop()
    h.http.close()
