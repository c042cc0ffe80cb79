"""The RPC's records of the chain in LMDB: blocks, transactions, receipts, logs and their indexes, seals.

The producer asks for a block's records (:meth:`ChainIndex.block_writes`) and commits them with the block
itself; reads are plain LMDB reads from any thread (tables in ``docs/design/node-storage.md``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import rlp
from eth.abc import BlockAPI, ReceiptAPI, SignedTransactionAPI

from chain_node.encoding import dumps, header_json, hx, log_json, receipt_json, tx_json
from chain_node.errors import Code, RpcError
from chain_node.store import Store, Write, log_key, u64

MAX_PAIR_PREFIXES = 10_000  # eth_getLogs: address x topic0 index seeks, beyond which the address index serves
_EMPTY: bytes = b""


class ChainIndex:
    """Reads and writes of the node's own tables (everything the RPC serves beyond execution)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- writes (the producer commits them with the block) -----------------------------------------------

    def block_writes(
        self,
        block: BlockAPI,
        txs: Sequence[tuple[bytes, SignedTransactionAPI, bytes]],
        receipts: Sequence[ReceiptAPI],
    ) -> list[Write]:
        """The records of ``block`` (``txs``: hash, transaction, sender of each, in block order)."""
        header = block.header
        number = header.block_number
        bhash = header.hash
        base_fee = header.base_fee_per_gas
        writes: list[Write] = []
        tx_hashes = []
        log_index = 0
        prev_cumulative = 0
        for i, ((h, tx, sender), receipt) in enumerate(zip(txs, receipts, strict=True)):
            tx_hashes.append(hx(h))
            tj = tx_json(tx, sender, block_hash=bhash, number=number, index=i, base_fee=base_fee)
            writes.append(("txs", h, dumps(tj)))
            logs_json = []
            for lg in receipt.logs:
                topics = [t.to_bytes(32, "big") for t in lg.topics]
                lj = log_json(
                    lg.address, topics, lg.data, header=header, tx_hash=h, index=i, log_index=log_index
                )
                logs_json.append(lj)
                lk = log_key(number, log_index)
                writes.append(("logs", lk, dumps(lj)))
                writes.append(("ix_addr", bytes(lg.address) + lk, _EMPTY))
                for pos, t in enumerate(topics):
                    writes.append(("ix_topic", bytes([pos]) + t + lk, _EMPTY))
                if topics:
                    writes.append(("ix_at", bytes(lg.address) + topics[0] + lk, _EMPTY))
                log_index += 1
            gas_used = receipt.gas_used - prev_cumulative
            prev_cumulative = receipt.gas_used
            rj = receipt_json(
                tx, h, sender, receipt, header=header, index=i, gas_used=gas_used, logs=logs_json
            )
            writes.append(("rcpts", h, dumps(rj)))
        writes += [
            ("blocks", u64(number), dumps(header_json(header, len(rlp.encode(block)), tx_hashes))),
            ("bhash", bhash, u64(number)),
            ("meta", b"head", u64(number)),
        ]
        return writes

    # -- reads (any thread) ------------------------------------------------------------------------------

    def head_number(self) -> int:
        """The committed head's number."""
        raw = self.store.get("meta", b"head")
        assert raw is not None, "the genesis block is written before anything reads the head"
        return int.from_bytes(raw, "big")

    def get_block_raw(self, number: int) -> bytes | None:
        """Block JSON (tx hashes) by number."""
        return self.store.get("blocks", u64(number))

    def block_number_by_hash(self, block_hash: bytes) -> int | None:
        """Number of a canonical block by its hash."""
        raw = self.store.get("bhash", block_hash)
        return None if raw is None else int.from_bytes(raw, "big")

    def get_tx_raw(self, tx_hash: bytes) -> bytes | None:
        """Mined transaction JSON."""
        return self.store.get("txs", tx_hash)

    def get_receipt_raw(self, tx_hash: bytes) -> bytes | None:
        """Receipt JSON."""
        return self.store.get("rcpts", tx_hash)

    def get_seal_json(self, number: int) -> bytes | None:
        """Seal JSON of a block."""
        return self.store.get("seals", u64(number))

    def get_logs(
        self,
        *,
        from_block: int,
        to_block: int,
        addresses: list[bytes],
        topics: list[list[bytes] | None],
        limit: int,
    ) -> list[bytes]:
        """Log JSONs matching an eth_getLogs filter, in chain order, using the narrowest index."""
        lo, hi = u64(from_block), u64(to_block + 1)
        topics = topics[:4]
        t0 = topics[0] if topics else None
        # Candidate (prefix list, table) from the most selective index; then each candidate is checked.
        # Address x topic0 pairs only while few: the product of two long lists is not worth its seeks.
        if addresses and t0 and len(addresses) * len(t0) <= MAX_PAIR_PREFIXES:
            table, prefixes, exact = "ix_at", [a + t for a in addresses for t in t0], len(topics) == 1
        elif addresses:
            table, prefixes, exact = "ix_addr", list(addresses), not any(topics)
        else:
            pos = next((i for i, t in enumerate(topics) if t), None)
            if pos is not None:
                tp = topics[pos]
                assert tp is not None
                table, prefixes = "ix_topic", [bytes([pos]) + t for t in tp]
                exact = sum(1 for t in topics if t) == 1
            else:
                table, prefixes, exact = "logs", [b""], True
        keys: list[bytes] = []
        with self.store.read() as txn:
            db = self.store.db(table)
            cur = txn.cursor(db=db)
            for prefix in prefixes:
                start = prefix + lo
                end = prefix + hi
                if not cur.set_range(start):
                    continue
                plen = len(prefix)
                for kv in cur.iternext(keys=True, values=False):
                    k = bytes(kv)
                    if k >= end:
                        break
                    keys.append(bytes(k[plen:]))
                    if len(keys) > limit:
                        raise RpcError(Code.LIMIT_EXCEEDED, f"query returned more than {limit} results")
            if len(prefixes) > 1:
                keys = sorted(set(keys))
            logs_db = self.store.db("logs")
            out: list[bytes] = []
            want_addresses = set(addresses)
            want_topics = [set(t) if t else None for t in topics]
            for k in keys:
                found = txn.get(k, db=logs_db)
                if found is None:
                    continue
                raw = bytes(found)
                if exact or _log_matches(json.loads(raw), want_addresses, want_topics):
                    out.append(raw)
        return out


def _log_matches(lj: dict[str, Any], addresses: set[bytes], topics: list[set[bytes] | None]) -> bool:
    if addresses and bytes.fromhex(lj["address"][2:]) not in addresses:
        return False
    lt = lj["topics"]
    for i, want in enumerate(topics):
        if not want:
            continue
        if i >= len(lt) or bytes.fromhex(lt[i][2:]) not in want:
            return False
    return True
