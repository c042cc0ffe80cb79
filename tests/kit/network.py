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
from pathlib import Path
from typing import Any

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
    """Contracts deployed and the demo organisations registered through the committee. Its prescriptions
    skip the pharmacist's review (审方): tests/gateway/test_rx_chain.py runs on a Prescriptions of its own
    deployed with the default, review required (``rx_chain_harness``)."""
    return deploy_network(engine, out_dir=tmp_path_factory.mktemp("network"), review_required=False)


@pytest.fixture(scope="session")
def network(deployed: Manifest, engine: EngineHandle, backend: str) -> Manifest:
    """The network as one backend's gateway sees it: each backend anchors into a ProvenanceLog of its own.

    The organisations stay those of the first OrgRegistry, which the embedded node consults for permissions.
    """
    if backend == BACKENDS[0]:
        return deployed
    return variant_network(deployed, engine, backend)


def variant_network(deployed: Manifest, engine: EngineHandle, name: str, *contracts: str) -> Manifest:
    """``deployed`` with a ProvenanceLog of its own and fresh copies of ``contracts`` (on the same
    OrgRegistry, deployed with their defaults), in ``manifest-<name>.json`` beside a trust file of its own."""
    w3 = Web3(Web3.HTTPProvider(engine.rpc_url, request_kwargs={"timeout": 30}))
    registry = deployed.contracts["OrgRegistry"]
    fresh = {
        c: deploy(w3, c, registry, sender=engine.accounts[0]).address for c in ("ProvenanceLog", *contracts)
    }
    assert deployed.path is not None
    path = deployed.path.with_name(f"manifest-{name}.json")
    variant = dataclasses.replace(deployed, contracts={**deployed.contracts, **fresh}, path=path)
    path.write_text(json.dumps(variant.to_dict(), ensure_ascii=False, indent=2), "utf-8")
    # Its own trust file too: verifiers pin the ProvenanceLog an anchor must name.
    trust = json.loads(trust_path(deployed).read_text("utf-8"))
    trust["chain"]["provenance_log"] = fresh["ProvenanceLog"]
    trust_path(variant).write_text(json.dumps(trust, ensure_ascii=False, indent=2), "utf-8")
    return variant


@pytest.fixture(scope="session")
def harness(
    network: Manifest, engine: EngineHandle, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    """The gateway of the session, tokens minted for every demo organisation and an unregistered one."""
    h = start_harness(network, engine, backend, tmp_path_factory.mktemp("gateway"))
    yield h
    h.server.stop()
    h.http.close()


def start_harness(
    network: Manifest,
    engine: EngineHandle,
    backend: str,
    tmp: Path,
    *,
    pg_suffix: str = "",
    **overrides: Any,
) -> Harness:
    """A gateway for ``network`` on ``backend`` (PostgreSQL: PROV_TEST_PG_URL, or beside it the database
    named with ``pg_suffix``, created if missing; emptied first), tokens minted for every organisation and
    an unregistered one, ``overrides`` over the test settings; the caller stops it."""
    relay = Relay(network.rpc_url)
    pg = os.environ.get("PROV_TEST_PG_URL") if backend == "postgresql" else None
    if pg and pg_suffix:
        pg = _pg_database(pg, pg_suffix)
    settings = gateway_settings(tmp, network, relay.url, **({"database_url": pg} if pg else {}) | overrides)
    db = Database(settings.database_url)
    if pg:
        SQLModel.metadata.drop_all(db.engine)  # a throwaway database: start from an empty schema
    db.create_all()
    tokens = {o.id: mint_token(db, o.id, label="test") for o in network.orgs}
    tokens["ghost-org"] = mint_token(db, "ghost-org", label="unregistered")
    db.dispose()
    server = Server(settings)
    return Harness(
        network=network, engine=engine, settings=settings, relay=relay, server=server, tokens=tokens
    )


def _pg_database(url: str, suffix: str) -> str:
    """The URL of the database named like ``url``'s plus ``_<suffix>``, created if missing (a second
    gateway beside the session's, never sharing its tables)."""
    from sqlalchemy import create_engine, make_url, text

    base = make_url(url)
    name = f"{base.database}_{suffix}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)
