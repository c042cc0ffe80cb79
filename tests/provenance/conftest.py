"""A real devnet (`provenance devnet up`: embedded node, contracts, demo organisations, gateway), shared by
the SDK and auditors' tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.devnet import running_devnet


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """(state folder, gateway URL, RPC URL) of a devnet running in the background."""
    with running_devnet(tmp_path_factory.mktemp("devnet") / "state") as net:
        yield net
