"""Block production and sealing: the genesis block, then blocks from the mempool, each executed
(``chain_node/execution.py``), sealed with SM2 (``docs/design/block-seal.md``) and committed with its
records in one LMDB transaction (``docs/design/node-storage.md``).

One block at a time, whoever asks (the server's producer loop, a lone client's send, ``evm_mine``): the
mining lock. The producer is the only writer of blocks; it publishes the new head after each commit.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI

from chain_node.encoding import dumps, hx
from chain_node.errors import Code, RpcError
from chain_node.evm import genesis_params, genesis_state
from chain_node.execution import Executed, ExecutionInterrupted, execute_block
from chain_node.genesis import Genesis
from chain_node.index import ChainIndex
from chain_node.interrupt import CallTimeout, Watchdog
from chain_node.mempool import Mempool, PendingTx
from chain_node.store import EvmDB, Store, Write, u64
from provenance.chain.seal import GENESIS_PREV, Seal, validator_id
from provenance.crypto import SM2PrivateKey
from provenance.errors import LedgerError

log = logging.getLogger("chain_node")

MAX_TOO_SLOW = 1000  # transactions remembered as dropped for their time (a send's answer names it)
BlockListener = Callable[[list[bytes], list[bytes]], None]  # (included hashes, dropped hashes)


class BlockProducer:
    """Executes, seals and commits the blocks of one validator over one store."""

    def __init__(
        self,
        *,
        store: Store,
        genesis: Genesis,
        key: SM2PrivateKey,
        chain_cls: Any,
        index: ChainIndex,
        mempool: Mempool,
        max_clock_lead: float | None = None,
        max_exec_time: float | None = None,
    ) -> None:
        if validator_id(key.public_key()) not in {v.id for v in genesis.validators}:
            raise LedgerError("the validator key in the data directory is not a validator of this genesis")
        self.store = store
        self.key = key
        self.index = index
        self.mempool = mempool
        self._db = EvmDB(store)
        self._init_genesis(chain_cls, genesis)
        self._chain_cls = chain_cls
        self._chain = chain_cls(self._db)
        self.max_exec_time = max_exec_time  # None: a block's execution is not timed
        self._watchdog = Watchdog()
        self.too_slow: dict[bytes, None] = {}  # recent transactions dropped for their execution time
        self.lock = threading.Lock()  # one block at a time, whoever asks
        self._listeners: list[BlockListener] = []
        self.last_block_hashes: list[bytes] = []
        self.max_clock_lead = max_clock_lead  # None: blocks at once, their stamps may run ahead
        self.time_offset = 0  # seconds added to the clock for block timestamps (dev RPC evm_increaseTime)
        self.timestamp_floor = 0  # the next block is stamped no earlier (dev RPC evm_increaseTime)
        self._last_block_end = 0.0
        self.head_number = index.head_number()
        # The committed head header, replaced after each commit: reads need it for every call, and decoding
        # it from the store each time cost more than the call itself.
        self._head: BlockHeaderAPI = self._chain.get_canonical_head()
        seal = index.get_seal_json(self.head_number)
        assert seal is not None
        self._last_seal_digest = bytes.fromhex(json.loads(seal)["sealDigest"][2:])

    def _init_genesis(self, chain_cls: Any, genesis: Genesis) -> None:
        stored = self.store.get("meta", b"genesis")
        if stored is not None:
            if stored != genesis.dump():
                raise LedgerError("the data directory holds a chain of a different genesis")
            return
        chain = chain_cls.from_genesis(self._db, genesis_params(genesis), genesis_state(genesis))
        block = chain.get_canonical_block_by_number(0)
        writes = self.index.block_writes(block, [], [])
        writes += [self._seal(block.header, GENESIS_PREV)[1], ("meta", b"genesis", genesis.dump())]
        self._commit(writes)
        log.info("genesis block %s written", hx(block.header.hash))

    # -- the head ----------------------------------------------------------------------------------------

    def head(self) -> BlockHeaderAPI:
        """The committed head's header."""
        return self._head

    def since_last_block(self) -> float:
        """Seconds since the last block was committed."""
        return time.monotonic() - self._last_block_end

    def add_listener(self, fn: BlockListener) -> None:
        """Call ``fn(included, dropped)`` after each committed block."""
        self._listeners.append(fn)

    def _notify(self, included: list[bytes], dropped: list[bytes]) -> None:
        for fn in self._listeners:
            try:
                fn(included, dropped)
            except Exception:
                log.exception("block listener failed")

    # -- mining ------------------------------------------------------------------------------------------

    def mine_once(self, *, allow_empty: bool = False) -> bool:
        """Produce, seal and commit one block from the mempool; False if there was nothing to mine."""
        with self.lock:
            return self._mine_locked(allow_empty)

    def mine_staged_now(self, p: PendingTx) -> bool:
        """Mine ``p`` at once, alone, if nothing else is pending or being mined; False if not done.

        For a lone client waiting on each receipt: the block commit makes ``p`` durable, so the pending
        table is never written (one commit and fsync pair per transaction instead of two), and the receipt
        is there when the client asks. Raises RpcError if the block could not include ``p``.
        """
        if not self.lock.acquire(blocking=False):
            return False
        try:
            if not self.mempool.take_lone(p):
                return False
            try:
                self._mine_locked(False)
            except BaseException:
                # not durable and the client gets the error: it must not stay in the mempool, where a
                # resend would be answered as already accepted
                self.mempool.remove([p])
                raise
        finally:
            self.lock.release()
        if p.hash in self.too_slow:
            raise self.too_slow_error()
        if self.index.get_receipt_raw(p.hash) is None:
            raise RpcError(
                Code.EXECUTION_ERROR, "transaction could not be included in a block (see node log)"
            )
        return True

    def _mine_locked(self, allow_empty: bool) -> bool:
        batch = self.mempool.snapshot()
        if not batch and not allow_empty:
            return False
        t0 = time.perf_counter()
        try:
            included, dropped = self._produce(batch, allow_empty)
        except Exception:
            log.exception("block production failed; dropping %d transactions", len(batch))
            self._db.clear_overlay()
            self.mempool.remove(batch, durable=True)
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

    def next_timestamp(self, head: BlockHeaderAPI) -> int:
        """The next block's timestamp: the clock's second, yet after its parent's (strictly increasing)."""
        return max(int(time.time()) + self.time_offset, head.timestamp + 1, self.timestamp_floor)

    def seal_delay(self) -> float:
        """Seconds to wait before the next block, so that it is stamped at most ``max_clock_lead`` ahead of
        the clock: 0 unless blocks came faster than one a second. At most a second: a clock set back (or a
        chain already ahead) slows the chain to a block a second, where its lead stops growing, never stops
        it. The dev RPC's floor is left out: ``evm_increaseTime`` moves the clock on purpose."""
        if self.max_clock_lead is None:
            return 0.0
        earliest = self._head.timestamp + 1  # as next_timestamp stamps it when blocks come too fast
        ahead = earliest - (time.time() + self.time_offset)
        return min(1.0, max(0.0, ahead - self.max_clock_lead))

    def too_slow_error(self) -> RpcError:
        """The answer to a send whose transaction was dropped for its execution time."""
        return RpcError(
            Code.EXECUTION_ERROR,
            f"transaction execution exceeded {self.max_exec_time:g} s of CPU: not included",
            {"code": "TX_TOO_SLOW", "limit": self.max_exec_time},
        )

    def _execute(
        self, head: BlockHeaderAPI, batch: list[PendingTx], allow_empty: bool
    ) -> Executed[PendingTx] | PendingTx:
        """The block of ``batch`` on ``head``, executed within ``max_exec_time``; or the first transaction
        of the batch when it alone ran past that bound."""
        timestamp = self.next_timestamp(head)
        limit = self.max_exec_time
        if limit is None:
            return execute_block(self._chain, head, batch, timestamp=timestamp, allow_empty=allow_empty)
        try:
            return self._watchdog.run(
                lambda: execute_block(
                    self._chain,
                    head,
                    batch,
                    timestamp=timestamp,
                    allow_empty=allow_empty,
                    stop_after=limit / 2,
                ),
                limit,
            )
        except (ExecutionInterrupted, CallTimeout) as exc:
            done = exc.done if isinstance(exc, ExecutionInterrupted) else len(batch)
        # py-evm stopped anywhere: this block's writes and the chain object are dropped
        self._db.clear_overlay()
        self._chain = self._chain_cls(self._db)
        if done == 0:
            log.warning("dropping tx %s: its execution exceeded %g s of CPU", hx(batch[0].hash), limit)
            return batch[0]
        # Those before it fitted in the time: the block holds them, the rest waits for the next one.
        return execute_block(self._chain, head, batch[:done], timestamp=timestamp, allow_empty=allow_empty)

    def _produce(self, batch: list[PendingTx], allow_empty: bool) -> tuple[list[bytes], list[bytes]]:
        with self._db.snapshot():
            head = self._head
            done = self._execute(head, batch, allow_empty)
            if isinstance(done, PendingTx):
                self.mempool.remove([done], durable=True)
                self.too_slow[done.hash] = None
                if len(self.too_slow) > MAX_TOO_SLOW:
                    del self.too_slow[next(iter(self.too_slow))]
                return [], [done.hash]
            if done.block is None:
                self._db.clear_overlay()
                self.mempool.remove(done.dropped, durable=True)
                return [], [p.hash for p in done.dropped]
            block = done.block
            writes = self.index.block_writes(
                block, [(p.hash, p.tx, p.sender) for p in done.applied], done.receipts
            )
            seal_digest, seal_write = self._seal(block.header, self._last_seal_digest)
        gone = done.applied + done.dropped
        self._commit([*writes, seal_write, *(("pending", p.key, None) for p in gone)])
        self._last_seal_digest = seal_digest
        self._head = block.header
        self.head_number = block.number
        self.last_block_hashes = [p.hash for p in done.applied]
        self._last_block_end = time.monotonic()
        self.mempool.remove(gone)  # its pending rows went with the block's commit
        return [p.hash for p in done.applied], [p.hash for p in done.dropped]

    def _seal(self, header: BlockHeaderAPI, prev_seal_digest: bytes) -> tuple[bytes, Write]:
        """The SM2 seal of ``header``, chained to the previous seal: its digest and its record."""
        seal = Seal.make(
            key=self.key,
            number=header.block_number,
            block_hash=header.hash,
            header_rlp=rlp.encode(header),
            prev_seal_digest=prev_seal_digest,
        )
        return seal.seal_digest, ("seals", u64(header.block_number), dumps(seal.to_json()))

    def _commit(self, writes: list[Write]) -> None:
        """Commit py-evm's overlay and ``writes`` in one durable LMDB transaction."""
        try:
            self.store.commit(writes, overlay=self._db)
        finally:
            self._db.clear_overlay()
