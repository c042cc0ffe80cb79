"""The gateway suite runs on a real network (``tests.kit.network``): an engine, contracts and demo orgs, one
gateway per database backend."""

from tests.kit.network import backend, deployed, engine, harness, network  # noqa: F401
