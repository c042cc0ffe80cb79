"""Chain re-verification from genesis over JSON-RPC, and the tampering it must catch (named block)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner
from web3 import Web3

from chain_node.store import Store, u64
from devnet.embedded import start_embedded
from devnet.engines import EngineHandle
from provenance.chain.chain_verify import ChainInvalid, verify_chain
from provenance.cli.chain import app
from provenance.crypto import SM2PrivateKey

pytestmark = pytest.mark.embedded_only

BLOCKS = 6


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped node's data dir holding BLOCKS blocks after genesis."""
    d = tmp_path_factory.mktemp("chain")
    h = start_embedded(data_dir=d)
    w3 = Web3(Web3.HTTPProvider(h.rpc_url))
    a, b = h.accounts[1], h.accounts[2]
    for i in range(BLOCKS):
        tx = {
            "to": b.address,
            "value": i + 1,
            "gas": 21000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 1,
            "nonce": i,
            "chainId": h.chain_id,
        }
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(a.sign_transaction(tx).raw_transaction)
        )
    h.stop()
    return d


@pytest.fixture()
def copy(chain_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(chain_dir, dst)
    return dst


@contextmanager
def serving(d: Path) -> Iterator[EngineHandle]:
    h = start_embedded(data_dir=d)
    try:
        yield h
    finally:
        h.stop()


def _edit_json(d: Path, table: str, number: int, field: str, value: str) -> None:
    store = Store(d)
    try:
        rec = json.loads(store.get(table, u64(number)) or b"{}")
        rec[field] = value
        store.put(table, u64(number), json.dumps(rec).encode())
    finally:
        store.close()


def test_untampered_chain_verifies(copy: Path) -> None:
    key_pem = (copy / "validator.pem").read_bytes()
    pinned = SM2PrivateKey.from_pem(key_pem).public_key()
    with serving(copy) as h:
        seen: list[int] = []
        report = verify_chain(h.rpc_url, progress=lambda done, total: seen.append(done))
        assert report.blocks == BLOCKS + 1 and report.head_number == BLOCKS
        assert report.validator_source == "node"
        assert seen[-1] == BLOCKS + 1
        assert verify_chain(h.rpc_url, validator_keys=[pinned]).validator_source == "pinned"
        result = CliRunner().invoke(app, ["verify", "--rpc", h.rpc_url])
        assert result.exit_code == 0, result.output
        assert "chain valid" in result.output


def test_tampered_seal_signature_named(copy: Path) -> None:
    store = Store(copy)
    try:
        seal = json.loads(store.get("seals", u64(3)) or b"{}")
        sig = bytearray(bytes.fromhex(seal["signature"][2:]))
        sig[-1] ^= 0x01
        seal["signature"] = "0x" + sig.hex()
        store.put("seals", u64(3), json.dumps(seal).encode())
    finally:
        store.close()
    with serving(copy) as h:
        with pytest.raises(ChainInvalid) as exc:
            verify_chain(h.rpc_url)
        assert exc.value.block == 3 and "signature" in exc.value.reason
        assert exc.value.step == "chain"
        result = CliRunner().invoke(app, ["verify", "--rpc", h.rpc_url])
        assert result.exit_code == 1
        assert "block 3" in result.output


def test_tampered_block_named(copy: Path) -> None:
    _edit_json(copy, "blocks", 4, "timestamp", hex(1))  # what eth_getBlockByNumber serves for block 4
    with serving(copy) as h, pytest.raises(ChainInvalid) as exc:
        verify_chain(h.rpc_url)
    assert exc.value.block == 4 and "timestamp" in exc.value.reason


def test_rewritten_history_breaks_the_sm3_link(copy: Path) -> None:
    # Replace block 2's seal by a validly signed seal of the same header with a different predecessor:
    # the signature holds, the link does not.
    from provenance.chain.seal import Seal

    key = SM2PrivateKey.from_pem((copy / "validator.pem").read_bytes())
    store = Store(copy)
    try:
        old = Seal.from_json(json.loads(store.get("seals", u64(2)) or b"{}"))
        forged = Seal.make(
            key=key,
            number=2,
            block_hash=old.block_hash,
            header_rlp=old.header_rlp,
            prev_seal_digest=b"\x11" * 32,
        )
        store.put("seals", u64(2), json.dumps(forged.to_json()).encode())
    finally:
        store.close()
    with serving(copy) as h, pytest.raises(ChainInvalid) as exc:
        verify_chain(h.rpc_url)
    assert exc.value.block == 2 and "link" in exc.value.reason


def test_wrong_pinned_validator(copy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(SM2PrivateKey.generate().public_key().to_pem())
    with serving(copy) as h:
        result = CliRunner().invoke(app, ["verify", "--rpc", h.rpc_url, "--validator-pub", str(other)])
    assert result.exit_code == 1
    assert "block 0" in result.output and "unknown validator" in result.output
