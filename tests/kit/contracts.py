"""The contract suite's chain verbs and deployment plan (its fixtures: tests/contracts/conftest.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from devnet.engines import EngineHandle
from provenance.chain.contracts import (
    ContractReverted,
    ProposalKind,
    Role,
    Suite,
    decode_revert,
    deploy,
    org_id,
    propose,
    transact,
)

# Committee of the shared deployment: weights 1, 1, 2 out of 4; participation 50 %, win 60 %.
# So A+B together pass a proposal, C (weight 2) passes one alone, and C against A fails it.
WEIGHTS = (1, 1, 2)
PARTICIPATES_RATE = 50
WIN_RATE = 60


def pubkey(label: str) -> bytes:
    """A stand-in 64-byte SM2 public key (the contracts store keys; they never do curve arithmetic)."""
    return hashlib.sha512(label.encode()).digest()


N_EXTRA = 10


def extra_account(i: int) -> LocalAccount:
    """Accounts beyond the engine's ten funded ones (funded by the fixture); test-only keys."""
    key = hashlib.sha256(f"shancheng-contract-tests-{i}".encode()).digest()
    acct: LocalAccount = Account.from_key(key)
    return acct


@dataclass
class Chain:
    """An engine plus the few verbs the tests need."""

    engine: EngineHandle
    w3: Web3
    _can_travel: bool | None = field(default=None)

    @property
    def accounts(self) -> list[LocalAccount]:
        return self.engine.accounts

    @property
    def committee(self) -> list[LocalAccount]:
        return self.engine.accounts[:3]

    def tx(self, fn: Any, sender: LocalAccount) -> Any:
        return transact(self.w3, fn, sender)

    @contextmanager
    def reverts(self, error: str) -> Iterator[pytest.ExceptionInfo[ContractReverted]]:
        """Expect a revert with the custom error ``error``; the yielded info holds its decoded args."""
        with pytest.raises(ContractReverted) as info:
            yield info
        assert info.value.error == error, info.value.details

    def call(self, fn: Any) -> Any:
        """A view call; a revert raises ContractReverted like a transaction does."""
        try:
            return fn.call()
        except ContractLogicError as exc:
            raise decode_revert(exc) from exc

    def now(self) -> int:
        ts: int = self.w3.eth.get_block("latest")["timestamp"]
        return ts

    def block_number(self) -> int:
        return self.w3.eth.block_number

    def advance(self, seconds: int) -> None:
        """Move chain time forward (anvil's evm_increaseTime); skip the test on engines without it."""
        try:
            resp = self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
            ok = "error" not in resp
        except Exception:
            ok = False
        if not ok:
            pytest.skip(f"{self.engine.name} cannot move time forward")
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def send_all(self, calls: list[tuple[Any, LocalAccount]], gas: int = 1_000_000) -> None:
        """Send many transactions back to back, then wait for all; every one must succeed.

        Explicit gas: an estimate would run against state that lacks the still-pending ones before it.
        """
        nonces: dict[str, int] = {}
        gas_price, chain_id = self.w3.eth.gas_price, self.w3.eth.chain_id
        hashes = []
        for fn, sender in calls:
            nonce = nonces.get(sender.address)
            if nonce is None:
                nonce = self.w3.eth.get_transaction_count(sender.address, "pending")
            nonces[sender.address] = nonce + 1
            params = {"from": sender.address, "nonce": nonce, "gas": gas, "gasPrice": gas_price}
            tx = fn.build_transaction({**params, "chainId": chain_id})
            hashes.append(self.w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction))
        for i, h in enumerate(hashes):
            receipt = self.w3.eth.wait_for_transaction_receipt(h, timeout=60, poll_latency=0.05)
            assert receipt["status"] == 1, f"transaction {i} of the batch reverted"

    def mine_until(self, block_number: int) -> None:
        """Send filler transfers until the chain's head is at least ``block_number`` (no time travel)."""
        while self.w3.eth.block_number < block_number:
            self.fund(self.accounts[9], 1)

    def fund(self, account: LocalAccount, wei: int = 10**18) -> None:
        sender = self.accounts[0]
        tx = {
            "to": account.address,
            "value": wei,
            "gas": 21000,
            "gasPrice": self.w3.eth.gas_price,
            "nonce": self.w3.eth.get_transaction_count(sender.address, "pending"),
            "chainId": self.w3.eth.chain_id,
        }
        signed = sender.sign_transaction(tx)
        self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_raw_transaction(signed.raw_transaction))

    def new_registry(self, weights: tuple[int, ...] = WEIGHTS, rates: tuple[int, int] = (50, 60)) -> Contract:
        members = [a.address for a in self.accounts[: len(weights)]]
        return deploy(self.w3, "OrgRegistry", members, list(weights), *rates, sender=self.accounts[0])

    def enact(self, registry: Contract, kind: ProposalKind, *args: Any) -> int:
        """C alone (weight 2 of 4, 50 % participation) passes a proposal in the proposing transaction."""
        return propose(self.w3, registry, kind, *args, sender=self.committee[2])

    def new_org(self, registry: Contract, name: str, role: Role, *accounts: LocalAccount) -> bytes:
        """An org with its accounts on a registry of the default committee (see ``new_registry``)."""
        oid = org_id(name)
        self.enact(registry, ProposalKind.ADD_ORG, oid, int(role), name)
        for account in accounts:
            self.enact(registry, ProposalKind.ADD_ACCOUNT, oid, account.address)
        return oid

    def pass_proposal(self, registry: Contract, kind: ProposalKind, *args: Any) -> int:
        """A proposes, B votes for: together they reach 50 % participation and 100 % for."""
        a, b, _ = self.committee
        pid = propose(self.w3, registry, kind, *args, sender=a)
        self.tx(registry.functions.vote(pid, True), b)
        return pid


@dataclass
class Org:
    id: bytes
    role: Role
    account: LocalAccount | None
    key: bytes


@dataclass
class Deployment:
    suite: Suite
    orgs: dict[str, Org]

    def account(self, name: str) -> LocalAccount:
        acct = self.orgs[name].account
        assert acct is not None
        return acct


# name -> role, and which account (engine index, or "x<n>" for an extra funded account, or None)
ORG_PLAN: list[tuple[str, Role, int | str | None]] = [
    ("hospital-1", Role.HOSPITAL, 3),
    ("hospital-2", Role.HOSPITAL, 4),
    ("pharmacy-1", Role.PHARMACY, 5),
    ("data-owner-1", Role.DATA_OWNER, 6),
    ("data-user-1", Role.DATA_USER, 7),
    ("log-operator-1", Role.LOG_OPERATOR, 8),
    ("env-bureau-1", Role.ENV_BUREAU, 9),
    ("station-1", Role.MONITORING_STATION, "x0"),
    ("station-2", Role.MONITORING_STATION, "x1"),
    ("party-branch-1", Role.PARTY_BRANCH, "x2"),
    ("data-user-2", Role.DATA_USER, "x3"),
    ("party-branch-2", Role.PARTY_BRANCH, "x4"),
    ("auditor-1", Role.AUDITOR, None),
    ("regulator-1", Role.REGULATOR, None),
    ("pharmacist-1", Role.PHARMACIST, "x5"),
    ("insurer-1", Role.INSURER, "x6"),
    ("pharmacy-2", Role.PHARMACY, "x7"),
    ("gas-utility-1", Role.GAS_UTILITY, "x8"),
    ("gas-utility-2", Role.GAS_UTILITY, "x9"),
]
