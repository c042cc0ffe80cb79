"""The committed contract artifacts, their enums, and small web3.py helpers to deploy and call them.

Artifacts come from ``contracts/build/<Name>.json`` (built by ``python -m devnet.solc``). The enums here
mirror the Solidity ones number for number; the contract tests pin both sides together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_signature_to_4byte_selector
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import Nonce, TxParams, TxReceipt

from provenance.crypto import sm3
from provenance.errors import LedgerError
from provenance.types import Role as Role  # re-exported (the enum is in types.py, light to import)

BUILD_DIR = Path(__file__).resolve().parents[2] / "contracts" / "build"

# Deployment order: the registry first, then the log; every other contract takes the registry's address as
# its only argument. Which others a network has is the domains' to say (``adapters.registry.contracts``).
REGISTRY = "OrgRegistry"
LOG = "ProvenanceLog"


class ProposalKind(IntEnum):
    ADD_ORG = 1
    SET_ORG_ROLE = 2
    SET_ORG_STATUS = 3
    ADD_KEY = 4
    REVOKE_KEY = 5
    ADD_ACCOUNT = 6
    REMOVE_ACCOUNT = 7
    SET_MEMBER = 8
    REMOVE_MEMBER = 9
    SET_RATES = 10
    VOID_ANCHORS = 11
    SET_MAX_ANCHOR_GROWTH = 12


class ProposalStatus(IntEnum):
    NONE = 0
    OPEN = 1
    EXECUTED = 2
    REJECTED = 3
    CANCELLED = 4
    EXPIRED = 5


# ABI types of each proposal's `data`, as OrgRegistry._execute decodes them.
PROPOSAL_TYPES: dict[ProposalKind, tuple[str, ...]] = {
    ProposalKind.ADD_ORG: ("bytes32", "uint8", "string"),
    ProposalKind.SET_ORG_ROLE: ("bytes32", "uint8"),
    ProposalKind.SET_ORG_STATUS: ("bytes32", "bool"),
    ProposalKind.ADD_KEY: ("bytes32", "bytes", "uint64", "uint64"),
    ProposalKind.REVOKE_KEY: ("bytes32", "uint256", "uint64"),
    ProposalKind.ADD_ACCOUNT: ("bytes32", "address"),
    ProposalKind.REMOVE_ACCOUNT: ("address",),
    ProposalKind.SET_MEMBER: ("address", "uint32"),
    ProposalKind.REMOVE_MEMBER: ("address",),
    ProposalKind.SET_RATES: ("uint8", "uint8"),
    ProposalKind.VOID_ANCHORS: ("address", "uint64"),
    ProposalKind.SET_MAX_ANCHOR_GROWTH: ("address", "uint64"),
}


class ContractReverted(LedgerError, code="CONTRACT_REVERTED"):
    """A contract call reverted; ``error`` is the Solidity custom error name (``details`` has its args)."""

    def __init__(self, error: str, args: Sequence[Any] = ()) -> None:
        super().__init__(f"contract reverted: {error}", details={"error": error, "args": list(args)})
        self.error = error


@dataclass(frozen=True)
class Artifact:
    name: str
    source_name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    metadata: str


@cache
def load_artifact(name: str) -> Artifact:
    """The committed build artifact of contract ``name`` (e.g. ``"OrgRegistry"``)."""
    path = BUILD_DIR / f"{name}.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    return Artifact(
        name=raw["contractName"],
        source_name=raw["sourceName"],
        abi=raw["abi"],
        bytecode=raw["bytecode"],
        deployed_bytecode=raw["deployedBytecode"],
        metadata=raw["metadata"],
    )


def org_id(text: str) -> bytes:
    """An org (or station, dataset, …) id as bytes32: UTF-8, right-padded with zeros, at most 32 bytes."""
    raw = text.encode("utf-8")
    if not raw or len(raw) > 32:
        raise ValueError(f"id must be 1..32 UTF-8 bytes: {text!r}")
    return raw.ljust(32, b"\0")


def org_id_text(value: bytes) -> str:
    """Inverse of :func:`org_id`."""
    return value.rstrip(b"\0").decode("utf-8")


def chain_key(namespace: str, value: str) -> bytes:
    """The bytes32 id of a subject-like string on chain: SM3 of ``"<namespace>:<value>"``.

    rx ids (``rx:<id>``), datasets (``dataset:<id>``), share requests (``share-request:<id>``) and stations
    (``station:<MN>``) are hashed rather than padded, so any id length fits and none is readable on chain.
    """
    return sm3(f"{namespace}:{value}".encode())


def encode_proposal(kind: ProposalKind, *args: Any) -> bytes:
    """The ABI-encoded ``data`` of an OrgRegistry proposal of ``kind``."""
    return abi_encode(list(PROPOSAL_TYPES[kind]), list(args))


@cache
def _error_table() -> dict[bytes, tuple[str, tuple[str, ...]]]:
    table: dict[bytes, tuple[str, tuple[str, ...]]] = {}
    for path in sorted(BUILD_DIR.glob("*.json")):
        for item in load_artifact(path.stem).abi:
            if item["type"] == "error":
                types = tuple(i["type"] for i in item["inputs"])
                selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
                table[selector] = (item["name"], types)
    return table


def decode_revert(exc: ContractLogicError) -> ContractReverted:
    """Name the custom error of a web3 revert (or ``"Error"``, ``"Panic"``, ``"unknown"``)."""
    data = exc.data if isinstance(exc.data, str) else ""
    raw = bytes.fromhex(data.removeprefix("0x")) if data else b""
    builtin: dict[bytes, tuple[str, tuple[str, ...]]] = {
        bytes.fromhex("08c379a0"): ("Error", ("string",)),
        bytes.fromhex("4e487b71"): ("Panic", ("uint256",)),
    }
    name, types = {**builtin, **_error_table()}.get(raw[:4], ("unknown", ()))
    values = abi_decode(list(types), raw[4:]) if types else ()
    args = [Web3.to_checksum_address(v) if t == "address" else v for t, v in zip(types, values, strict=True)]
    return ContractReverted(name, args)


def transact(w3: Web3, fn: ContractFunction, sender: LocalAccount, *, gas: int | None = None) -> TxReceipt:
    """Sign ``fn`` with ``sender``'s key, send it, wait for the receipt; a revert raises ContractReverted."""
    nonce = w3.eth.get_transaction_count(sender.address, "pending")
    return confirm(w3, submit(w3, fn, sender, nonce, gas=gas))


@dataclass(frozen=True, slots=True)
class Sent:
    """A transaction sent and not yet confirmed: what :func:`confirm` needs to wait for it and, if it
    reverted when mined, to replay it for the reason."""

    tx: TxParams
    tx_hash: bytes


def submit(
    w3: Web3, fn: ContractFunction, sender: LocalAccount, nonce: int, *, gas: int | None = None
) -> Sent:
    """Sign ``fn`` with ``sender``'s key at ``nonce`` and send it, without waiting for its receipt (several
    can be in flight, consecutive nonces keep their order); a revert of the gas estimate raises
    ContractReverted, and then nothing was sent (the nonce is still free)."""
    params: TxParams = {"from": sender.address, "nonce": Nonce(nonce), "chainId": w3.eth.chain_id}
    if gas is not None:
        params["gas"] = gas
    try:
        tx = fn.build_transaction(params)  # estimates gas: a revert surfaces here, with its reason
    except ContractLogicError as exc:
        raise decode_revert(exc) from exc
    signed = sender.sign_transaction(tx)  # type: ignore[arg-type]  # TxParams is a TypedDict
    return Sent(tx, bytes(w3.eth.send_raw_transaction(signed.raw_transaction)))


def confirm(w3: Web3, sent: Sent) -> TxReceipt:
    """The receipt of a sent transaction (waiting for it); one that reverted when mined raises
    ContractReverted with the reason its replay gives."""
    receipt = w3.eth.wait_for_transaction_receipt(sent.tx_hash, timeout=60, poll_latency=0.05)  # type: ignore[arg-type]
    if receipt["status"] != 1:
        raise _reason_of_mined_revert(w3, sent.tx, receipt)
    return receipt


def deploy(w3: Web3, name: str, *args: Any, sender: LocalAccount) -> Contract:
    """Deploy contract ``name`` from its committed artifact; return the bound contract object."""
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    params: TxParams = {
        "from": sender.address,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    try:
        tx = factory.constructor(*args).build_transaction(params)
    except ContractLogicError as exc:
        raise decode_revert(exc) from exc
    receipt = _send(w3, tx, sender)
    address = receipt["contractAddress"]
    assert address is not None
    return w3.eth.contract(address=address, abi=artifact.abi)


def at(w3: Web3, name: str, address: str) -> Contract:
    """Contract ``name`` bound to an existing deployment."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact(name).abi)


def _send(w3: Web3, tx: TxParams, sender: LocalAccount) -> TxReceipt:
    signed = sender.sign_transaction(tx)  # type: ignore[arg-type]  # TxParams is a TypedDict
    return confirm(w3, Sent(tx, bytes(w3.eth.send_raw_transaction(signed.raw_transaction))))


def _reason_of_mined_revert(w3: Web3, tx: TxParams, receipt: TxReceipt) -> ContractReverted:
    # The gas estimate passed but the mined transaction reverted: another transaction got there first
    # (a race, e.g. two pharmacies dispensing) or a block-number/time condition changed in between.
    # Replaying it as a call on top of its block recovers the reason in practice.
    replay: TxParams = {k: v for k, v in tx.items() if k in ("from", "to", "data", "value", "gas")}  # type: ignore[assignment]
    try:
        w3.eth.call(replay, block_identifier=receipt["blockNumber"])
    except ContractLogicError as exc:
        return decode_revert(exc)
    return ContractReverted("unknown", [receipt["transactionHash"].to_0x_hex()])


@dataclass(frozen=True)
class Suite:
    """One deployment: the registry, and the log and every domain contract by name."""

    registry: Contract
    contracts: Mapping[str, Contract]

    @property
    def log(self) -> Contract:
        return self.contracts[LOG]

    def __getitem__(self, name: str) -> Contract:
        return self.contracts[name]

    def addresses(self) -> dict[str, str]:
        return {REGISTRY: self.registry.address, **{n: c.address for n, c in self.contracts.items()}}


def deploy_suite(
    w3: Web3,
    *,
    sender: LocalAccount,
    committee: Sequence[tuple[str, int]],
    participates_rate: int,
    win_rate: int,
    contracts: Sequence[str],
) -> Suite:
    """Deploy the registry with its first committee ``[(address, weight), ...]``, then the log and the
    ``contracts`` named (the domains')."""
    registry = deploy(
        w3,
        REGISTRY,
        [Web3.to_checksum_address(a) for a, _ in committee],
        [w for _, w in committee],
        participates_rate,
        win_rate,
        sender=sender,
    )
    names = dict.fromkeys((LOG, *contracts))  # in order, once each
    return Suite(registry, {n: deploy(w3, n, registry.address, sender=sender) for n in names})


def propose(
    w3: Web3, registry: Contract, kind: ProposalKind, *args: Any, sender: LocalAccount, ttl_blocks: int = 1000
) -> int:
    """Create an OrgRegistry proposal (the proposer's vote for included); return its id."""
    data = encode_proposal(kind, *args)
    receipt = transact(w3, registry.functions.propose(int(kind), data, ttl_blocks), sender)
    (event,) = registry.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
    proposal_id: int = event["args"]["id"]
    return proposal_id
