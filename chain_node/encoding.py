"""JSON-RPC encodings of chain objects: transactions, headers, receipts and logs as ``eth_`` methods return
them. The producer stores these records at commit (``chain_node/index.py``) and the RPC splices them into
answers as stored, so each shape is built here once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth._utils.address import generate_contract_address
from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth_typing import Address
from eth_utils.address import to_checksum_address


@dataclass(frozen=True, slots=True)
class Raw:
    """A result that is already JSON bytes (stored records are spliced in without re-encoding)."""

    data: bytes


def hx(b: bytes) -> str:
    """0x-hex of bytes."""
    return "0x" + b.hex()


def qty(n: int) -> str:
    """JSON-RPC quantity."""
    return hex(n)


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes, as records are stored."""
    return json.dumps(obj, separators=(",", ":")).encode()


_CHECKSUMMED: dict[bytes, str] = {}


def checksum(address: bytes) -> str:
    """EIP-55 form of an address, cached: the same few senders and contracts recur in every block, and
    each ``to_checksum_address`` costs a keccak and hex work (~25 µs, several per transaction)."""
    s = _CHECKSUMMED.get(address)
    if s is None:
        if len(_CHECKSUMMED) >= 65_536:
            _CHECKSUMMED.clear()
        s = _CHECKSUMMED[bytes(address)] = to_checksum_address(address)
    return s


def effective_gas_price(tx: SignedTransactionAPI, base_fee: int) -> int:
    """What the sender pays per gas in a block with ``base_fee`` (EIP-1559)."""
    return min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)


def tx_json(
    tx: SignedTransactionAPI,
    sender: bytes,
    *,
    block_hash: bytes | None,
    number: int | None,
    index: int | None,
    base_fee: int | None,
) -> dict[str, Any]:
    """A transaction as eth_getTransactionByHash returns it."""
    type_id = getattr(tx, "type_id", None) or 0
    d: dict[str, Any] = {
        "hash": hx(tx.hash),
        "type": qty(type_id),
        "nonce": qty(tx.nonce),
        "from": checksum(sender),
        "to": checksum(tx.to) if tx.to else None,
        "value": qty(tx.value),
        "gas": qty(tx.gas),
        "input": hx(tx.data),
        "r": qty(tx.r),
        "s": qty(tx.s),
        "blockHash": hx(block_hash) if block_hash is not None else None,
        "blockNumber": qty(number) if number is not None else None,
        "transactionIndex": qty(index) if index is not None else None,
    }
    if tx.chain_id is not None:
        d["chainId"] = qty(tx.chain_id)
    if type_id == 0:
        d["gasPrice"] = qty(tx.gas_price)
        d["v"] = qty(tx.v)  # type: ignore[attr-defined]  # legacy transactions only, per type_id
    else:
        d["v"] = qty(tx.y_parity)
        d["yParity"] = qty(tx.y_parity)
        d["accessList"] = [
            {"address": checksum(a), "storageKeys": [hx(k.to_bytes(32, "big")) for k in keys]}
            for a, keys in tx.access_list
        ]
        if type_id == 2:
            d["maxFeePerGas"] = qty(tx.max_fee_per_gas)
            d["maxPriorityFeePerGas"] = qty(tx.max_priority_fee_per_gas)
            price = tx.max_fee_per_gas if base_fee is None else effective_gas_price(tx, base_fee)
            d["gasPrice"] = qty(price)
        else:
            d["gasPrice"] = qty(tx.gas_price)
    return d


def header_json(header: Any, size: int, tx_hashes: list[str]) -> dict[str, Any]:
    """A block as eth_getBlockByNumber(..., false) returns it (``header``: a Cancun header).

    "transactions" comes last: the RPC splices full transactions in at that key (``Rpc._block``).
    """
    return {
        "number": qty(header.block_number),
        "hash": hx(header.hash),
        "parentHash": hx(header.parent_hash),
        "sha3Uncles": hx(header.uncles_hash),
        "miner": checksum(header.coinbase),
        "stateRoot": hx(header.state_root),
        "transactionsRoot": hx(header.transaction_root),
        "receiptsRoot": hx(header.receipt_root),
        "logsBloom": hx(header.bloom.to_bytes(256, "big")),
        "difficulty": qty(header.difficulty),
        "totalDifficulty": "0x0",
        "gasLimit": qty(header.gas_limit),
        "gasUsed": qty(header.gas_used),
        "timestamp": qty(header.timestamp),
        "extraData": hx(header.extra_data),
        "mixHash": hx(header.mix_hash),
        "nonce": hx(header.nonce),
        "baseFeePerGas": qty(header.base_fee_per_gas),
        "withdrawalsRoot": hx(header.withdrawals_root),
        "withdrawals": [],
        "blobGasUsed": qty(header.blob_gas_used),
        "excessBlobGas": qty(header.excess_blob_gas),
        "parentBeaconBlockRoot": hx(header.parent_beacon_block_root),
        "size": qty(size),
        "uncles": [],
        "transactions": tx_hashes,
    }


def log_json(
    address: bytes,
    topics: list[bytes],
    data: bytes,
    *,
    header: BlockHeaderAPI,
    tx_hash: bytes,
    index: int,
    log_index: int,
) -> dict[str, Any]:
    """One log as eth_getLogs and receipts return it."""
    return {
        "address": checksum(address),
        "topics": [hx(t) for t in topics],
        "data": hx(data),
        "blockNumber": qty(header.block_number),
        "blockHash": hx(header.hash),
        "transactionHash": hx(tx_hash),
        "transactionIndex": qty(index),
        "logIndex": qty(log_index),
        "removed": False,
    }


def receipt_json(
    tx: SignedTransactionAPI,
    tx_hash: bytes,
    sender: bytes,
    receipt: ReceiptAPI,
    *,
    header: BlockHeaderAPI,
    index: int,
    gas_used: int,
    logs: list[dict[str, Any]],
) -> dict[str, Any]:
    """A receipt as eth_getTransactionReceipt returns it (``gas_used``: this transaction's own)."""
    base_fee = header.base_fee_per_gas
    assert base_fee is not None, "Cancun headers carry a base fee"
    return {
        "transactionHash": hx(tx_hash),
        "transactionIndex": qty(index),
        "blockHash": hx(header.hash),
        "blockNumber": qty(header.block_number),
        "from": checksum(sender),
        "to": checksum(tx.to) if tx.to else None,
        "cumulativeGasUsed": qty(receipt.gas_used),
        "gasUsed": qty(gas_used),
        "effectiveGasPrice": qty(effective_gas_price(tx, base_fee)),
        "contractAddress": (
            checksum(generate_contract_address(Address(sender), tx.nonce)) if not tx.to else None
        ),
        "logs": logs,
        "logsBloom": hx(receipt.bloom.to_bytes(256, "big")),
        "status": "0x1" if receipt.state_root == b"\x01" else "0x0",
        "type": qty(getattr(tx, "type_id", None) or 0),
    }
