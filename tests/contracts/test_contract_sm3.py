"""The Solidity SM3 (contracts/SM3.sol) against provenance.crypto.sm3, on every engine: the GB/T 32905
examples, padding edges and random inputs; on our node also the precompile path against the Solidity one.

The harness is compiled here through devnet/bin/solc with its source given by path, so solc's import
callback (which serves files of this repository only) resolves ``contracts/SM3.sol``."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import solcx
from web3.contract import Contract

from devnet.solc import REPO_ROOT, SETTINGS, SOLC_BINARY
from provenance.crypto import sm3
from provenance.log.merkle import node_hash
from tests.kit.contracts import Chain

HARNESS = "tests/contracts/foundry/lib/SM3Harness.sol"

GBT32905 = [  # GB/T 32905-2016 Appendix A, and the empty string
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
    (b"", "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"),
]


@pytest.fixture(scope="module")
def harness_artifact() -> dict[str, Any]:
    standard_input = {
        "language": "Solidity",
        "sources": {HARNESS: {"urls": [HARNESS]}},
        "settings": {**SETTINGS, "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
    }
    out = solcx.compile_standard(standard_input, solc_binary=SOLC_BINARY, base_path=REPO_ROOT)
    assert "contracts/SM3.sol" in out["sources"]  # read through the import callback
    contract: dict[str, Any] = out["contracts"][HARNESS]["SM3Harness"]
    return contract


@pytest.fixture(scope="module")
def harness(chain: Chain, harness_artifact: dict[str, Any]) -> Contract:
    factory = chain.w3.eth.contract(
        abi=harness_artifact["abi"], bytecode=harness_artifact["evm"]["bytecode"]["object"]
    )
    deployer = chain.accounts[0]
    tx = factory.constructor().build_transaction(
        {"from": deployer.address, "nonce": chain.w3.eth.get_transaction_count(deployer.address, "pending")}
    )
    signed = deployer.sign_transaction(tx)
    receipt = chain.w3.eth.wait_for_transaction_receipt(
        chain.w3.eth.send_raw_transaction(signed.raw_transaction)
    )
    return chain.w3.eth.contract(address=receipt["contractAddress"], abi=harness_artifact["abi"])


def test_gbt32905_examples(harness: Contract) -> None:
    for message, digest in GBT32905:
        assert sm3(message).hex() == digest  # the reference itself, pinned to the standard
        assert harness.functions.hash(message).call().hex() == digest


def test_padding_edges_and_random_inputs_match_the_reference(harness: Contract) -> None:
    # Every length around the one- and two-block padding boundaries (55/56, 63/64/65, 119/120, 128), then
    # random lengths and contents.
    lengths = [*range(0, 10), *range(50, 70), *range(115, 132), 183, 184, 255, 256, 257, 1000]
    lengths += [secrets.randbelow(600) for _ in range(40)]
    for n in lengths:
        message = secrets.token_bytes(n)
        assert harness.functions.hash(message).call() == sm3(message), n


def test_node_hash_matches_the_log(chain: Chain, harness: Contract) -> None:
    precompiled = harness.functions.precompiled().call()
    assert precompiled is (chain.engine.name == "embedded")  # our node's 0x…5001 computes SM3, anvil has none
    for _ in range(25):
        left, right = secrets.token_bytes(32), secrets.token_bytes(32)
        expected = node_hash(left, right)
        assert harness.functions.node(left, right).call() == expected  # always Solidity
        assert harness.functions.nodeAnyway(left, right).call() == expected  # the precompile where it works
