"""Contract suite fixtures: one engine per session (every engine we have), one full deployment on each.

The same tests run on anvil and, once ``devnet.embedded`` exists, on our own node. Nothing here relies on
anvil-only RPC methods except ``Chain.advance`` (time travel), which skips where it is unsupported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from adapters import registry as domains
from devnet.anvil import start_anvil
from devnet.engines import EngineHandle, test_accounts
from devnet.solc import compile_contracts
from provenance.chain.contracts import ProposalKind, deploy_suite, encode_proposal, org_id
from tests.kit.contracts import (
    N_EXTRA,
    ORG_PLAN,
    PARTICIPATES_RATE,
    WEIGHTS,
    WIN_RATE,
    Chain,
    Deployment,
    Org,
    extra_account,
    pubkey,
)

ENGINES = ["anvil"]
if importlib.util.find_spec("devnet.embedded") is not None:
    ENGINES.append("embedded")

_BUILD = ThreadPoolExecutor(max_workers=1)
_build_future: Future[dict[str, dict[str, Any]]] | None = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Recompiling takes seconds of a node process (solcjs).
    # Started here and checked last, so that it overlaps the engine tests.
    global _build_future
    build = [i for i in items if i.name == "test_artifacts_match_sources"]
    if build and _build_future is None:
        _build_future = _BUILD.submit(compile_contracts)
        items[:] = [i for i in items if i not in build] + build


@pytest.fixture(scope="session")
def fresh_build() -> dict[str, dict[str, Any]]:
    """What the pinned compiler makes of contracts/*.sol right now."""
    return _build_future.result() if _build_future is not None else compile_contracts()


@pytest.fixture(scope="session", params=ENGINES)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EngineHandle]:
    if request.param == "anvil":
        handle = start_anvil()
    else:
        from devnet.embedded import start_embedded  # type: ignore[import-not-found,unused-ignore]

        # Our node refuses senders its genesis does not permit, so the extra accounts go in there too.
        accounts = test_accounts(10) + [extra_account(i) for i in range(N_EXTRA)]
        handle = start_embedded(data_dir=tmp_path_factory.mktemp("embedded"), accounts=accounts)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def chain(engine: EngineHandle) -> Chain:
    w3 = Web3(Web3.HTTPProvider(engine.rpc_url, request_kwargs={"timeout": 30}))
    assert w3.eth.chain_id == engine.chain_id
    return Chain(engine=engine, w3=w3)


@pytest.fixture(scope="session")
def deployment(chain: Chain) -> Deployment:
    """Every contract, with one org of each role registered through committee proposals and votes.

    Shared by the whole session (deploying costs seconds per engine): tests use fresh ids, never change
    the committee or the orgs of this registry, and deploy their own registry when they need to.
    """
    committee = [(a.address, w) for a, w in zip(chain.committee, WEIGHTS, strict=True)]
    suite = deploy_suite(
        chain.w3,
        sender=chain.accounts[0],
        committee=committee,
        participates_rate=PARTICIPATES_RATE,
        win_rate=WIN_RATE,
        contracts=domains.contracts(),
    )
    # The session's prescriptions skip the pharmacist's review (审方); test_contract_rx_chain.py deploys a
    # Prescriptions of its own with the default (review required).
    chain.tx(suite["Prescriptions"].functions.setReviewRequired(False), chain.accounts[0])
    orgs: dict[str, Org] = {}
    for name, role, who in ORG_PLAN:
        account: LocalAccount | None
        if who is None:
            account = None
        elif isinstance(who, int):
            account = chain.accounts[who]
        else:
            account = extra_account(int(who[1:]))
            if chain.w3.eth.get_balance(account.address) < 10**17:
                chain.fund(account)
        orgs[name] = Org(id=org_id(name), role=role, account=account, key=pubkey(name))
    # All proposals (A), then all votes (B), each batch pipelined: execution follows B's nonce order, so
    # every org exists before its key and account proposals execute.
    steps: list[tuple[ProposalKind, tuple[Any, ...]]] = []
    for name, org in orgs.items():
        steps.append((ProposalKind.ADD_ORG, (org.id, int(org.role), name)))
        steps.append((ProposalKind.ADD_KEY, (org.id, org.key, 0, 0)))
        if org.account is not None:
            steps.append((ProposalKind.ADD_ACCOUNT, (org.id, org.account.address)))
    reg = suite.registry
    a, b, _ = chain.committee
    first = reg.functions.proposalCount().call() + 1
    chain.send_all([(reg.functions.propose(int(k), encode_proposal(k, *args), 1000), a) for k, args in steps])
    chain.send_all([(reg.functions.vote(first + i, True), b) for i in range(len(steps))])
    assert reg.functions.orgCount().call() == len(orgs)
    return Deployment(suite=suite, orgs=orgs)


@pytest.fixture
def unique() -> Callable[[str], bytes]:
    """Fresh bytes32 ids, so tests sharing a module deployment never collide."""

    def make(prefix: str) -> bytes:
        return hashlib.sha256(prefix.encode() + secrets.token_bytes(16)).digest()

    return make
