"""Prove that a block is the chain's and that a transaction receipt is in it, from an untrusted endpoint.

Given the chain's sealing keys (our node: the genesis validators' SM2 keys, ``provenance/chain/seal.py``),
a JSON-RPC endpoint proves nothing by its word; what it serves is checked:

1. the block's seal (``gm_getSeal``): its header RLP hashes (keccak) to the block hash asked for, the header
   carries the block number asked for, and the seal verifies (SM3 digest, SM2 signature) under a pinned key;
2. the block's receipts: each receipt is encoded as the chain hashed it (EIP-2718 type byte, then
   ``rlp([status, cumulativeGasUsed, logsBloom, logs])``) and the trie of them (``provenance/chain/trie.py``,
   the node's own) must have the header's ``receiptsRoot``.

A receipt that passes is in a block the validators sealed, with exactly the logs it shows (the emitting
contract's address is in each log). ``docs/design/verify-cli.md`` says what this proves and what it does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import rlp
from eth_utils.crypto import keccak

from provenance.chain.chain_verify import HEADER_FIELDS
from provenance.chain.seal import Seal, validator_id
from provenance.chain.trie import trie_root_and_nodes
from provenance.crypto import SM2PublicKey
from provenance.errors import FormatError

_FIELD = {name: i for i, (name, _) in enumerate(HEADER_FIELDS)}


def _raw(value: Any, what: str) -> bytes:
    """Bytes of a JSON-RPC hex value as web3.py returns it (HexBytes, or a 0x string for addresses)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raise FormatError(f"receipt field {what} is not hex")


def _quantity(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FormatError(f"receipt field {what} is not a quantity")
    return value


def encode_receipt(receipt: Mapping[str, Any]) -> bytes:
    """The consensus encoding of a (web3.py) transaction receipt: what the block's receipts trie holds."""
    try:
        logs = [
            [
                _raw(log["address"], "address"),
                [_raw(t, "topic") for t in log["topics"]],
                _raw(log["data"], "data"),
            ]
            for log in receipt["logs"]
        ]
        status = _quantity(receipt["status"], "status")
        if status not in (0, 1):
            raise FormatError(f"receipt status {status} is neither 0 nor 1")
        body = rlp.encode(
            [
                b"\x01" if status else b"",
                _quantity(receipt["cumulativeGasUsed"], "cumulativeGasUsed"),
                _raw(receipt["logsBloom"], "logsBloom"),
                logs,
            ]
        )
        kind = _quantity(receipt.get("type", 0), "type")
    except (KeyError, TypeError) as exc:
        raise FormatError(f"receipt lacks a field or has one of the wrong type: {exc}") from exc
    encoded: bytes = body
    if kind >= 0x80:
        raise FormatError(f"receipt type {kind} is not an EIP-2718 type")
    return encoded if kind == 0 else bytes([kind]) + encoded


def receipts_root(receipts: Sequence[Mapping[str, Any]]) -> bytes:
    """The receipts root of a block holding ``receipts`` (in transaction order)."""
    root, _ = trie_root_and_nodes([encode_receipt(r) for r in receipts])
    return bytes(root)


def sealed_header(
    seal_json: Any, *, block_hash: bytes, number: int, keys: Sequence[SM2PublicKey]
) -> dict[str, bytes]:
    """The header fields of block ``number`` once its seal proves it is ``block_hash``, sealed by one of
    ``keys``; raises FormatError saying what does not hold."""
    seal = Seal.from_json(seal_json)
    if keccak(seal.header_rlp) != block_hash:
        raise FormatError(
            f"the sealed header of block {number} hashes to 0x{keccak(seal.header_rlp).hex()}, "
            f"not 0x{block_hash.hex()}"
        )
    try:
        fields = rlp.decode(seal.header_rlp)
    except rlp.DecodingError as exc:
        raise FormatError(f"the sealed header of block {number} is not RLP") from exc
    if not isinstance(fields, list) or len(fields) != len(HEADER_FIELDS):
        raise FormatError(f"the sealed header of block {number} does not have {len(HEADER_FIELDS)} fields")
    header = {name: bytes(fields[i]) for name, i in _FIELD.items()}
    if int.from_bytes(header["number"], "big") != number or seal.number != number:
        raise FormatError(f"the sealed header is not of block {number}")
    pinned = {validator_id(k): k for k in keys}
    key = pinned.get(seal.validator)
    if key is None:
        raise FormatError(f"block {number} is sealed by validator {seal.validator}, not by a pinned key")
    # The link to the previous seal is the validator's to keep; its signature over it is what counts here.
    why = seal.check(key, seal.prev_seal_digest)
    if why:
        raise FormatError(f"the seal of block {number} does not verify: {why}")
    return header
