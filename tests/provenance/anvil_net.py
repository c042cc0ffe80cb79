"""A fresh anvil with the project's contracts deployed, for the tests of this folder that need a real chain
of their own (a module's anchors must not meet another module's)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devnet.anvil import start_anvil
from devnet.deploy import deploy_network
from devnet.engines import EngineHandle
from devnet.governance import OrgSpec
from provenance.chain.contracts import Role
from provenance.manifest import Manifest


@contextmanager
def anvil_network(out_dir: Path, *, hospital_name: str = "") -> Iterator[tuple[EngineHandle, Manifest]]:
    """Anvil and a network of a hospital ``hosp-1`` and a log operator ``logop`` (the manifest and keys in
    ``out_dir``); anvil stops on the way out."""
    engine = start_anvil()
    try:
        orgs = [
            OrgSpec(id="hosp-1", role=Role.HOSPITAL, name=hospital_name),
            OrgSpec(id="logop", role=Role.LOG_OPERATOR),
        ]
        yield engine, deploy_network(engine, orgs, out_dir=out_dir)
    finally:
        engine.stop()
