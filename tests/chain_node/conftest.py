"""Fixtures: one embedded node (a real subprocess) for the whole session, and the probe contract on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web3 import Web3
from web3.contract import Contract

from devnet.embedded import start_embedded
from devnet.engines import EngineHandle
from tests.kit.node_probe import deploy_probe


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineHandle]:
    handle = start_embedded(data_dir=tmp_path_factory.mktemp("node"))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def w3(node: EngineHandle) -> Web3:
    return Web3(Web3.HTTPProvider(node.rpc_url))


@pytest.fixture(scope="session")
def probe(w3: Web3, node: EngineHandle) -> Contract:
    return deploy_probe(w3, node)
