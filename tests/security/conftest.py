"""Security suite: crash safety (real processes, SIGKILL), fuzzing (hypothesis, schemathesis), attacks.

Settings are pytest options (``pytest tests/security --crash-rounds 10 --crash-seed 7``) or, per test, the
``crash_rounds(n)`` marker that sets the default. The attack and API-fuzz tests reuse the gateway suite's
network (``tests.kit.network``: embedded node, contracts, demo orgs, in-thread gateway).
"""

from __future__ import annotations

import pytest

from tests.kit.network import deployed, engine, harness, network  # noqa: F401


@pytest.fixture(scope="session")
def backend() -> str:
    """SQLite only here: the gateway suite owns the PostgreSQL test database (it drops its schema)."""
    return "sqlite"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("security", "security suite (tests/security)")
    group.addoption(
        "--crash-rounds",
        type=int,
        default=None,
        help="kill -9 rounds per crash test (default: the test's crash_rounds marker)",
    )
    group.addoption("--crash-seed", type=int, default=None, help="seed of the random kill points")
    group.addoption(
        "--fuzz-examples", type=int, default=None, help="examples per node JSON-RPC fuzz test (default 60)"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "crash_rounds(n): default number of kill -9 rounds of a crash test")


@pytest.fixture
def crash_rounds(request: pytest.FixtureRequest) -> int:
    """Rounds for this crash test: --crash-rounds, else the test's crash_rounds marker, else 3."""
    opt = request.config.getoption("--crash-rounds", default=None)
    if opt is not None:
        return int(opt)
    marker = request.node.get_closest_marker("crash_rounds")
    return int(marker.args[0]) if marker else 3


@pytest.fixture
def crash_seed(request: pytest.FixtureRequest) -> int:
    """Seed of the random kill points: --crash-seed, else a fixed one (reproducible runs)."""
    opt = request.config.getoption("--crash-seed", default=None)
    return 20261125 if opt is None else int(opt)
