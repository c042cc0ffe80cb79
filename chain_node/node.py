"""The node: py-evm execution, the durable mempool, block production and sealing, the RPC's indexes.

The server drives it from its event loop (docs/design/node-storage.md); ``mine_once`` runs there or on
one miner thread. It writes blocks through the mining chain (py-evm overlay, one LMDB commit per block);
state reads go through read-only chains over committed data (``chain_node/calls.py``: the node's own,
and one per RPC call thread), so they never see half a block; index reads (blocks, receipts, logs,
seals) are plain LMDB reads. Locks: mempool, mining (and the runner pool's).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import rlp
from eth._utils.address import generate_contract_address
from eth.abc import BlockHeaderAPI, ComputationAPI, SignedTransactionAPI
from eth.exceptions import PyEVMError
from eth.vm.forks.cancun.constants import BLOB_TX_TYPE
from eth.vm.forks.cancun.transactions import CancunTransactionBuilder
from eth_typing import Address
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError

from chain_node.calls import CallRunner, RunnerPool
from chain_node.errors import Code, CreateNotPermitted, RpcError
from chain_node.evm import genesis_params, genesis_state, make_chain_class
from chain_node.genesis import Genesis
from chain_node.store import EvmDB, Store, log_key, u64
from provenance.chain.seal import GENESIS_PREV, Seal, validator_id
from provenance.crypto import SM2PrivateKey
from provenance.errors import LedgerError, NotPermitted

log = logging.getLogger("chain_node")

PRIORITY_FEE = 1_000_000_000  # suggested tip, as anvil/geth dev mode suggest
MAX_PAIR_PREFIXES = 10_000  # eth_getLogs: address x topic0 index seeks, beyond which the address index serves
IS_PERMITTED_SELECTOR = keccak(text="isPermitted(address)")[:4]
_EMPTY: bytes = b""

BlockListener = Callable[[list[bytes], list[bytes]], None]  # (included hashes, dropped hashes)


def hx(b: bytes) -> str:
    """0x-hex of bytes."""
    return "0x" + b.hex()


def qty(n: int) -> str:
    """JSON-RPC quantity."""
    return hex(n)


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


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(slots=True)
class PendingTx:
    """A transaction accepted into the mempool (already durable in the ``pending`` table)."""

    key: bytes  # u64 arrival sequence ‖ tx hash: the pending-table key, in arrival order
    tx: SignedTransactionAPI
    sender: bytes
    raw: bytes

    @property
    def hash(self) -> bytes:
        """Transaction hash."""
        return self.key[8:]


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


def effective_gas_price(tx: SignedTransactionAPI, base_fee: int) -> int:
    """What the sender pays per gas in a block with ``base_fee`` (EIP-1559)."""
    return min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)


def header_json(header: Any, size: int, tx_hashes: list[str]) -> dict[str, Any]:
    """A block as eth_getBlockByNumber(..., false) returns it (``header``: a Cancun header)."""
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


class Node:
    """One validator node over one data directory."""

    def __init__(
        self,
        *,
        store: Store,
        genesis: Genesis,
        validator_key: SM2PrivateKey,
        block_time: float | None = None,
        allow_unprotected_txs: bool = False,
    ) -> None:
        self.store = store
        self.allow_unprotected_txs = allow_unprotected_txs
        self.genesis = genesis
        self.key = validator_key
        self.block_time = block_time or None
        self.chain_id = genesis.chain_id
        vid = validator_id(validator_key.public_key())
        if vid not in {v.id for v in genesis.validators}:
            raise LedgerError("the validator key in the data directory is not a validator of this genesis")
        self.admins = {bytes.fromhex(a[2:]) for a in genesis.admins}
        self.allow = {bytes.fromhex(a[2:]) for a in genesis.allowlist} | self.admins
        self.permission_contract = (
            bytes.fromhex(genesis.permission_contract[2:]) if genesis.permission_contract else None
        )
        chain_cls = make_chain_class(genesis)
        self._mine_db = EvmDB(store)
        self._init_genesis(chain_cls)
        self._mchain = chain_cls(self._mine_db)
        # Read-only py-evm chains for the node's own reads (admission, permissioning, balances) and the
        # RPC's calls: one per thread at a time.
        self.runners = RunnerPool(lambda: CallRunner(store=store, chain_cls=chain_cls, head=self.head))
        self._lock = threading.Lock()  # mempool and pending nonces
        self._mine_lock = threading.Lock()  # one block at a time, whoever asks
        self._mempool: dict[bytes, PendingTx] = {}  # tx hash -> pending, in arrival order
        self._staged: dict[bytes, PendingTx] = {}  # accepted, not yet durable (see stage / commit_staged)
        self._next_nonce: dict[bytes, int] = {}  # only senders with txs in the mempool or staged
        self._seq = 0
        self._on_pending: Callable[[], None] = lambda: None
        self._listeners: list[BlockListener] = []
        self._permit_cache: dict[bytes, tuple[int, bool]] = {}
        self._base_fee_cache: tuple[int, int] = (-1, 0)
        self.last_block_hashes: list[bytes] = []
        self.time_offset = 0  # seconds added to the clock for block timestamps (dev RPC evm_increaseTime)
        self.timestamp_floor = 0  # the next block is stamped no earlier (dev RPC evm_increaseTime)
        self._last_block_end = 0.0
        head = self.store.get("meta", b"head")
        assert head is not None
        self.head_number = int.from_bytes(head, "big")
        # The committed head header, replaced by the miner after each commit: reads need it for every
        # call, and decoding it from the store each time cost more than the call itself.
        self._head: BlockHeaderAPI = self._mchain.get_canonical_head()
        seal = self.get_seal_json(self.head_number)
        assert seal is not None
        self._last_seal_digest = bytes.fromhex(json.loads(seal)["sealDigest"][2:])
        self._load_pending()

    # -- lifecycle -------------------------------------------------------------------------------------

    def _init_genesis(self, chain_cls: Any) -> None:
        stored = self.store.get("meta", b"genesis")
        if stored is not None:
            if stored != self.genesis.dump():
                raise LedgerError("the data directory holds a chain of a different genesis")
            return
        chain = chain_cls.from_genesis(
            self._mine_db, genesis_params(self.genesis), genesis_state(self.genesis)
        )
        header = chain.get_canonical_head()
        seal = Seal.make(
            key=self.key,
            number=0,
            block_hash=header.hash,
            header_rlp=rlp.encode(header),
            prev_seal_digest=GENESIS_PREV,
        )
        block = chain.get_canonical_block_by_number(0)
        writes: list[tuple[str, bytes, bytes | None]] = [
            ("blocks", u64(0), _dumps(header_json(header, len(rlp.encode(block)), []))),
            ("bhash", header.hash, u64(0)),
            ("seals", u64(0), _dumps(seal.to_json())),
            ("meta", b"head", u64(0)),
            ("meta", b"genesis", self.genesis.dump()),
        ]
        self._commit(writes)
        log.info("genesis block %s written", hx(header.hash))

    def _load_pending(self) -> None:
        for key, raw in self.store.items("pending"):
            tx = CancunTransactionBuilder.decode(raw)
            p = PendingTx(key=key, tx=tx, sender=tx.sender, raw=raw)
            self._mempool[p.hash] = p
            self._next_nonce[p.sender] = tx.nonce + 1
            self._seq = max(self._seq, int.from_bytes(key[:8], "big") + 1)
        if self._mempool:
            log.info("recovered %d pending transactions", len(self._mempool))

    def set_wake(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` whenever a transaction enters the mempool (the block producer's doorbell)."""
        self._on_pending = fn
        if self._mempool:
            fn()

    def close(self) -> None:
        """Close the store (every commit is already on disk or in the OS, per the sync mode)."""
        self.store.close()

    def add_listener(self, fn: BlockListener) -> None:
        """Call ``fn(included, dropped)`` after each committed block."""
        self._listeners.append(fn)

    # -- storage ---------------------------------------------------------------------------------------

    def _commit(self, writes: list[tuple[str, bytes, bytes | None]]) -> None:
        """Commit the py-evm overlay and ``writes`` in one durable LMDB transaction."""
        env = self.store.env
        try:
            with env.begin(write=True) as txn:
                self._mine_db.write_overlay(txn)
                for table, k, v in writes:
                    if v is None:
                        txn.delete(k, db=self.store.db(table))
                    else:
                        txn.put(k, v, db=self.store.db(table))
        finally:
            self._mine_db.clear_overlay()

    # -- mining ----------------------------------------------------------------------------------------

    def pending_count(self) -> int:
        """Transactions waiting for a block."""
        with self._lock:
            return len(self._mempool)

    def since_last_block(self) -> float:
        """Seconds since the last block was committed."""
        return time.monotonic() - self._last_block_end

    def mine_once(self, *, allow_empty: bool = False) -> bool:
        """Produce, seal and commit one block from the mempool; False if there was nothing to mine."""
        return self._mine_once(allow_empty=allow_empty)

    def _mine_once(self, *, allow_empty: bool = False) -> bool:
        with self._mine_lock:
            return self._mine_once_locked(allow_empty)

    def _mine_once_locked(self, allow_empty: bool) -> bool:
        with self._lock:
            batch = list(self._mempool.values())
        if not batch and not allow_empty:
            return False
        t0 = time.perf_counter()
        try:
            included, dropped = self._mine_block(batch, allow_empty)
        except Exception:
            log.exception("block production failed; dropping %d transactions", len(batch))
            self._mine_db.clear_overlay()
            self._forget(batch, durable=True)
            self._notify([], [p.hash for p in batch])
            return True
        self._notify(included, dropped)
        log.debug(
            "block %d: %d txs, %d dropped, %.1f ms",
            self.head_number,
            len(included),
            len(dropped),
            (time.perf_counter() - t0) * 1e3,
        )
        return True

    def _forget(self, txs: list[PendingTx], *, durable: bool) -> None:
        """Remove txs from the mempool (and, if ``durable``, from the pending table)."""
        if durable:
            self._commit([("pending", p.key, None) for p in txs])
        with self._lock:
            for p in txs:
                self._mempool.pop(p.hash, None)
            self._release_nonces(txs)

    def _release_nonces(self, txs: list[PendingTx]) -> None:
        """Forget the pending nonce of senders with nothing left in the mempool or staged (under _lock)."""
        still = {p.sender for p in self._mempool.values()} | {p.sender for p in self._staged.values()}
        for p in txs:
            if p.sender not in still:
                self._next_nonce.pop(p.sender, None)

    def _notify(self, included: list[bytes], dropped: list[bytes]) -> None:
        for fn in self._listeners:
            try:
                fn(included, dropped)
            except Exception:
                log.exception("block listener failed")

    def _mine_block(
        self, batch: list[PendingTx], allow_empty: bool = False
    ) -> tuple[list[bytes], list[bytes]]:
        chain = self._mchain
        with self._mine_db.snapshot():
            head = self._head
            header = chain.create_header_from_parent(
                head,
                timestamp=max(int(time.time()) + self.time_offset, head.timestamp + 1, self.timestamp_floor),
            )
            vm = chain.get_vm(header)
            # Never fill past the EIP-1559 target: the base fee then never rises, so a transaction
            # accepted against the current base fee stays valid until it is mined.
            gas_cap = header.gas_limit // 2
            cur = header
            applied: list[PendingTx] = []
            receipts = []
            comps: list[ComputationAPI] = []
            dropped: list[PendingTx] = []
            for p in batch:
                if applied and cur.gas_used + p.tx.gas > gas_cap:
                    break
                try:
                    receipt, comp = vm.apply_transaction(cur, p.tx)
                except ValidationError as exc:
                    log.warning("dropping tx %s: %s", hx(p.hash), exc)
                    dropped.append(p)
                    continue
                # One header copy per transaction (gas used, which the next receipt builds on); the
                # bloom is OR-ed once at the end instead of copying the header for it every time.
                cur = cur.copy(gas_used=receipt.gas_used)
                if getattr(p.tx, "type_id", None) == BLOB_TX_TYPE:
                    cur = vm.increment_blob_gas_used(cur, p.tx)
                applied.append(p)
                receipts.append(receipt)
                comps.append(comp)
            if not applied and not allow_empty:
                self._mine_db.clear_overlay()
                self._forget(dropped, durable=True)
                return [], [p.hash for p in dropped]
            if receipts:
                bloom = cur.bloom
                for receipt in receipts:
                    bloom |= receipt.bloom
                cur = cur.copy(bloom=bloom)
            block = vm.set_block_transactions_and_withdrawals(
                vm.get_block(), cur, [p.tx for p in applied], receipts
            )
            # finalize (state root) without vm.mine_block's re-validation, and persist without
            # chain.persist_block's re-validation and read-back: we just built this block ourselves.
            block = vm.finalize_block(block).block
            chain.chaindb.persist_block(block)
            writes = self._block_records(block, applied, receipts, comps)
        writes += [("pending", p.key, None) for p in applied + dropped]
        self._commit(writes)
        self._head = block.header
        self.head_number = block.number
        self.last_block_hashes = [p.hash for p in applied]
        self._last_block_end = time.monotonic()
        with self._lock:
            for p in applied + dropped:
                self._mempool.pop(p.hash, None)
            self._release_nonces(applied + dropped)
        return [p.hash for p in applied], [p.hash for p in dropped]

    def _block_records(
        self, block: Any, applied: list[PendingTx], receipts: list[Any], comps: list[ComputationAPI]
    ) -> list[tuple[str, bytes, bytes | None]]:
        header = block.header
        number = header.block_number
        bhash = header.hash
        base_fee = header.base_fee_per_gas
        header_rlp = rlp.encode(header)
        writes: list[tuple[str, bytes, bytes | None]] = []
        tx_hashes = []
        log_index = 0
        prev_cumulative = 0
        for i, (p, receipt, _comp) in enumerate(zip(applied, receipts, comps, strict=True)):
            tx = p.tx
            h = p.hash
            tx_hashes.append(hx(h))
            writes.append(
                (
                    "txs",
                    h,
                    _dumps(
                        tx_json(tx, p.sender, block_hash=bhash, number=number, index=i, base_fee=base_fee)
                    ),
                )
            )
            logs_json = []
            for lg in receipt.logs:
                topics = [t.to_bytes(32, "big") for t in lg.topics]
                lj = {
                    "address": checksum(lg.address),
                    "topics": [hx(t) for t in topics],
                    "data": hx(lg.data),
                    "blockNumber": qty(number),
                    "blockHash": hx(bhash),
                    "transactionHash": hx(h),
                    "transactionIndex": qty(i),
                    "logIndex": qty(log_index),
                    "removed": False,
                }
                logs_json.append(lj)
                lk = log_key(number, log_index)
                writes.append(("logs", lk, _dumps(lj)))
                writes.append(("ix_addr", bytes(lg.address) + lk, _EMPTY))
                for pos, t in enumerate(topics):
                    writes.append(("ix_topic", bytes([pos]) + t + lk, _EMPTY))
                if topics:
                    writes.append(("ix_at", bytes(lg.address) + topics[0] + lk, _EMPTY))
                log_index += 1
            gas_used = receipt.gas_used - prev_cumulative
            prev_cumulative = receipt.gas_used
            rj = {
                "transactionHash": hx(h),
                "transactionIndex": qty(i),
                "blockHash": hx(bhash),
                "blockNumber": qty(number),
                "from": checksum(p.sender),
                "to": checksum(tx.to) if tx.to else None,
                "cumulativeGasUsed": qty(receipt.gas_used),
                "gasUsed": qty(gas_used),
                "effectiveGasPrice": qty(effective_gas_price(tx, base_fee)),
                "contractAddress": (
                    checksum(generate_contract_address(Address(p.sender), tx.nonce)) if not tx.to else None
                ),
                "logs": logs_json,
                "logsBloom": hx(receipt.bloom.to_bytes(256, "big")),
                "status": "0x1" if receipt.state_root == b"\x01" else "0x0",
                "type": qty(getattr(tx, "type_id", None) or 0),
            }
            writes.append(("rcpts", h, _dumps(rj)))
        seal = Seal.make(
            key=self.key,
            number=number,
            block_hash=bhash,
            header_rlp=header_rlp,
            prev_seal_digest=self._last_seal_digest,
        )
        self._last_seal_digest = seal.seal_digest
        writes += [
            ("blocks", u64(number), _dumps(header_json(header, len(rlp.encode(block)), tx_hashes))),
            ("bhash", bhash, u64(number)),
            ("seals", u64(number), _dumps(seal.to_json())),
            ("meta", b"head", u64(number)),
        ]
        return writes

    # -- reads over committed state ----------------------------------------------------------------------

    def account(self, address: bytes, number: int | None, what: str, slot: int = 0) -> Any:
        """Balance, nonce, code or storage of an account at a block (None = latest)."""
        with self.runners.runner() as r:
            return r.account(address, number, what, slot)

    def pending_nonce(self, address: bytes) -> int:
        """Next nonce counting the mempool (eth_getTransactionCount ... "pending")."""
        with self._lock:
            n = self._next_nonce.get(address)
        return n if n is not None else int(self.account(address, None, "nonce"))

    def head(self) -> BlockHeaderAPI:
        """The committed head's header (replaced by the miner after each commit)."""
        return self._head

    def next_base_fee(self) -> int:
        """Upper bound of the next block's base fee: the head's (blocks never pass the target)."""
        number = self.head_number
        if self._base_fee_cache[0] != number:
            raw = self.get_block_raw(number)
            assert raw is not None
            self._base_fee_cache = (number, int(json.loads(raw)["baseFeePerGas"], 16))
        return self._base_fee_cache[1]

    # -- permissioning ---------------------------------------------------------------------------------

    def is_permitted(self, address: bytes) -> bool:
        """Genesis allowlist/admins, else OrgRegistry.isPermitted(address) on the head state (if named)."""
        if address in self.allow:
            return True
        if self.permission_contract is None:
            return False
        head = self.head_number
        cached = self._permit_cache.get(address)
        if cached is not None and cached[0] == head:
            return cached[1]
        data = IS_PERMITTED_SELECTOR + bytes(12) + address
        try:
            with self.runners.runner() as r:
                out = r.call({"to": self.permission_contract, "data": data}, None)
            ok = len(out) >= 32 and int.from_bytes(out[:32], "big") == 1
        except RpcError:
            ok = False
        self._permit_cache[address] = (head, ok)
        return ok

    # -- ingress ---------------------------------------------------------------------------------------

    def send_raw_transaction(self, raw: bytes) -> bytes:
        """Validate, make durable, queue for the miner; return the hash only once it is on disk."""
        p = self.stage(raw)
        if isinstance(p, PendingTx):
            self.commit_staged()
            return p.hash
        return p

    def stage(self, raw: bytes) -> PendingTx | bytes:
        """Validate a transaction and reserve its nonce; the hash alone if it is already durable.

        A staged transaction is not yet durable, so its hash must not go back before :meth:`commit_staged`
        has written it: the server stages every send of one turn of its loop, then commits them together
        (group commit: one LMDB commit, one fsync pair, for all of them instead of one each).
        """
        try:
            tx = CancunTransactionBuilder.decode(raw)
            tx.validate()
            sender = tx.sender
        except (
            ValidationError,
            PyEVMError,  # an unknown transaction type
            rlp.DecodingError,
            rlp.DeserializationError,
            RecursionError,  # lists nested past the recursion limit
            ValueError,
            TypeError,
        ) as exc:
            raise RpcError(Code.INVALID_PARAMS, f"invalid transaction: {type(exc).__name__}: {exc}") from exc
        if tx.chain_id is None and not self.allow_unprotected_txs:
            # geth's answer and default: a transaction without a chain id can be replayed on any chain
            raise RpcError(
                Code.EXECUTION_ERROR,
                "only replay-protected (EIP-155) transactions allowed over RPC",
                {"code": "UNPROTECTED_TX"},
            )
        if tx.chain_id is not None and tx.chain_id != self.chain_id:
            raise RpcError(Code.EXECUTION_ERROR, f"invalid chain id {tx.chain_id} (expected {self.chain_id})")
        if not self.is_permitted(sender):
            raise NotPermitted(
                f"sender {to_checksum_address(sender)} is not permitted by genesis or OrgRegistry",
                details={"sender": to_checksum_address(sender)},
            )
        if not tx.to and sender not in self.admins:
            raise CreateNotPermitted(
                f"contract creation by {to_checksum_address(sender)} is not permitted (admins only)",
                details={"sender": to_checksum_address(sender)},
            )
        cap = self.genesis.gas_limit // 2
        if tx.gas < tx.intrinsic_gas:
            raise RpcError(
                Code.EXECUTION_ERROR, f"intrinsic gas too low: have {tx.gas}, want {tx.intrinsic_gas}"
            )
        if tx.gas > cap:
            raise RpcError(Code.EXECUTION_ERROR, f"exceeds block gas limit: {tx.gas} > {cap}")
        base_fee = self.next_base_fee()
        if tx.max_fee_per_gas < base_fee:
            raise RpcError(
                Code.EXECUTION_ERROR,
                f"max fee per gas less than block base fee: {tx.max_fee_per_gas} < {base_fee}",
            )
        h = tx.hash
        with self._lock:
            if h in self._mempool:
                return h
            staged = self._staged.get(h)
            if staged is not None:
                return staged  # the same send again before its commit: wait for that commit too
        if self.store.get("rcpts", h) is not None:
            return h
        with self._lock:
            # Read the state under the lock: the miner commits a block before it drops that block's
            # senders from _next_nonce (under this lock), so either the entry or the new state is seen.
            state_nonce, balance = self._nonce_and_balance(sender)
            expected = self._next_nonce.get(sender, state_nonce)
            if tx.nonce < expected:
                raise RpcError(
                    Code.EXECUTION_ERROR, f"nonce too low: next nonce {expected}, tx nonce {tx.nonce}"
                )
            if tx.nonce > expected:
                raise RpcError(
                    Code.EXECUTION_ERROR, f"nonce too high: next nonce {expected}, tx nonce {tx.nonce}"
                )
            if balance < tx.gas * tx.max_fee_per_gas + tx.value:
                raise RpcError(Code.EXECUTION_ERROR, "insufficient funds for gas * price + value")
            p = PendingTx(key=u64(self._seq) + h, tx=tx, sender=sender, raw=raw)
            self._seq += 1
            self._staged[h] = p
            self._next_nonce[sender] = tx.nonce + 1
        return p

    def mine_staged_now(self, p: PendingTx) -> bool:
        """Mine ``p`` at once, alone, if nothing else is pending or being mined; False if not done.

        For a lone client waiting on each receipt: the block commit makes ``p`` durable, so the pending
        table is never written (one commit and fsync pair per transaction instead of two), and the receipt
        is there when the client asks. Raises RpcError if the block could not include ``p``.
        """
        if not self._mine_lock.acquire(blocking=False):
            return False
        try:
            with self._lock:
                if self._mempool or list(self._staged) != [p.hash]:
                    return False
                del self._staged[p.hash]
                self._mempool[p.hash] = p
            try:
                self._mine_once_locked(False)
            except BaseException:
                # not durable and the client gets the error: it must not stay in the mempool, where a
                # resend would be answered as already accepted
                with self._lock:
                    self._mempool.pop(p.hash, None)
                    self._release_nonces([p])
                raise
        finally:
            self._mine_lock.release()
        if self.store.get("rcpts", p.hash) is None:
            raise RpcError(
                Code.EXECUTION_ERROR, "transaction could not be included in a block (see node log)"
            )
        return True

    def commit_staged(self) -> None:
        """Write every staged transaction to the pending table in one commit, then hand them to the miner.

        Only durable transactions reach the mempool, so a block never includes one whose commit failed.
        On failure the staged transactions are refused (their nonces freed) and the error propagates.
        """
        with self._lock:
            batch = list(self._staged.values())
        if not batch:
            return
        try:
            with self.store.env.begin(write=True) as txn:
                db = self.store.db("pending")
                for p in batch:
                    txn.put(p.key, p.raw, db=db)
        except BaseException:
            with self._lock:
                for p in batch:
                    self._staged.pop(p.hash, None)
                senders = {p.sender for p in batch}
                for sender in senders:
                    self._next_nonce.pop(sender, None)
                for q in [*self._mempool.values(), *self._staged.values()]:
                    if q.sender in senders:
                        self._next_nonce[q.sender] = max(self._next_nonce.get(q.sender, 0), q.tx.nonce + 1)
            raise
        with self._lock:
            for p in batch:
                self._staged.pop(p.hash, None)
                self._mempool[p.hash] = p
        self._on_pending()

    def _nonce_and_balance(self, sender: bytes) -> tuple[int, int]:
        return int(self.account(sender, None, "nonce")), int(self.account(sender, None, "balance"))

    def in_mempool(self, tx_hash: bytes) -> bool:
        """Whether a transaction is accepted but not yet mined."""
        with self._lock:
            return tx_hash in self._mempool

    def pending_tx_json(self, tx_hash: bytes) -> dict[str, Any] | None:
        """A mempool transaction as eth_getTransactionByHash returns it, or None."""
        with self._lock:
            p = self._mempool.get(tx_hash)
        if p is None:
            return None
        return tx_json(p.tx, p.sender, block_hash=None, number=None, index=None, base_fee=None)

    # -- index reads (any thread) ----------------------------------------------------------------------

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
