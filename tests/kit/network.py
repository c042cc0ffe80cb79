"""A real network for the gateway and security suites: an engine, contracts, demo orgs, a gateway.

The engine is our embedded node when ``devnet.embedded`` exists, else anvil;
``PROV_TEST_ENGINE=anvil|embedded`` forces one. The gateway runs under uvicorn in a thread and is
driven over HTTP with httpx; its JSON-RPC goes through a TCP relay the tests can cut (a chain outage).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from collections.abc import Iterator

import pytest
from sqlmodel import SQLModel
from web3 import Web3

from devnet.deploy import deploy_network
from devnet.engines import EngineHandle
from gateway.core.db import Database
from gateway.core.security import mint_token
from provenance.chain.contracts import deploy
from provenance.manifest import Manifest
from tests.kit.gateway import Harness, Relay, Server, gateway_settings, trust_path


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

        # Org accounts are created by deploy_network: the node consults OrgRegistry for them.
        handle = start_embedded(data_dir=tmp_path_factory.mktemp("chain"), registry_permits=True)
    else:
        from devnet.anvil import start_anvil

        handle = start_anvil()
    yield handle
    handle.stop()


# Every gateway test runs on SQLite; on PostgreSQL too when PROV_TEST_PG_URL names a (throwaway) database.
BACKENDS = ["sqlite", *(["postgresql"] if os.environ.get("PROV_TEST_PG_URL") else [])]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The gateway's database engine for this run of the suite."""
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def deployed(engine: EngineHandle, tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """Contracts deployed and the demo organisations registered through the committee."""
    return deploy_network(engine, out_dir=tmp_path_factory.mktemp("network"))


@pytest.fixture(scope="session")
def network(deployed: Manifest, engine: EngineHandle, backend: str) -> Manifest:
    """The network as one backend's gateway sees it: each backend anchors into a ProvenanceLog of its own.

    The organisations stay those of the first OrgRegistry, which the embedded node consults for permissions.
    """
    if backend == BACKENDS[0]:
        return deployed
    w3 = Web3(Web3.HTTPProvider(engine.rpc_url))
    log = deploy(w3, "ProvenanceLog", deployed.contracts["OrgRegistry"], sender=engine.accounts[0])
    assert deployed.path is not None
    path = deployed.path.with_name(f"manifest-{backend}.json")
    variant = dataclasses.replace(
        deployed, contracts={**deployed.contracts, "ProvenanceLog": log.address}, path=path
    )
    path.write_text(json.dumps(variant.to_dict(), ensure_ascii=False, indent=2), "utf-8")
    # Its own trust file too: verifiers pin the ProvenanceLog an anchor must name.
    trust = json.loads(trust_path(deployed).read_text("utf-8"))
    trust["chain"]["provenance_log"] = log.address
    trust_path(variant).write_text(json.dumps(trust, ensure_ascii=False, indent=2), "utf-8")
    return variant


@pytest.fixture(scope="session")
def harness(
    network: Manifest, engine: EngineHandle, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    """The gateway of the session, tokens minted for every demo organisation and an unregistered one."""
    tmp = tmp_path_factory.mktemp("gateway")
    relay = Relay(network.rpc_url)
    pg = os.environ.get("PROV_TEST_PG_URL") if backend == "postgresql" else None
    settings = gateway_settings(tmp, network, relay.url, **({"database_url": pg} if pg else {}))
    db = Database(settings.database_url)
    if pg:
        SQLModel.metadata.drop_all(db.engine)  # a throwaway database: start from an empty schema
    db.create_all()
    tokens = {o.id: mint_token(db, o.id, label="test") for o in network.orgs}
    tokens["ghost-org"] = mint_token(db, "ghost-org", label="unregistered")
    db.dispose()
    server = Server(settings)
    h = Harness(network=network, engine=engine, settings=settings, relay=relay, server=server, tokens=tokens)
    yield h
    h.server.stop()
    h.http.close()
