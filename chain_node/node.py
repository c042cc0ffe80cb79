"""The node: one validator over one data directory, its jobs wired together behind one facade.

py-evm keeps ``Chain``, ``VM``, ``State`` and ``Computation`` apart; the node keeps its jobs apart the same
way, and the RPC and the server talk to this facade only:

- ``mempool.py``: admission of raw transactions, nonces, the durable ``pending`` table;
- ``permissions.py``: who may send and who may create contracts;
- ``execution.py`` (blocks) and ``calls.py`` (calls, estimates, state reads): py-evm execution;
- ``producer.py``: block production, timestamps, SM2 sealing, the one commit per block;
- ``index.py`` and ``encoding.py``: the RPC's stored records and their JSON shapes.

The server drives it from its event loop (docs/design/node-storage.md); ``mine_once`` runs there or on
one miner thread. It writes blocks through the producer's chain (py-evm overlay, one LMDB commit per
block); state reads go through read-only chains over committed data, so they never see half a block;
index reads (blocks, receipts, logs, seals) are plain LMDB reads. Locks: the mempool's, the mining lock
(and the runner pool's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth.abc import BlockHeaderAPI

from chain_node.calls import CallRunner, RunnerPool
from chain_node.evm import make_chain_class
from chain_node.execution import block_gas_cap, next_base_fee
from chain_node.genesis import Genesis
from chain_node.index import ChainIndex
from chain_node.mempool import Mempool, PendingTx
from chain_node.permissions import Permissions
from chain_node.producer import BlockListener, BlockProducer
from chain_node.store import Store
from provenance.crypto import SM2PrivateKey


class Node:
    """One validator node over one data directory."""

    def __init__(
        self,
        *,
        store: Store,
        genesis: Genesis,
        validator_key: SM2PrivateKey,
        block_time: float | None = None,
        max_clock_lead: float | None = None,
        max_exec_time: float | None = None,
        allow_unprotected_txs: bool = False,
    ) -> None:
        self.store = store
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.gas_cap = block_gas_cap(genesis.gas_limit)  # the most gas a block is filled with, or a tx asks
        self.block_time = block_time or None
        chain_cls = make_chain_class(genesis)
        self.index = ChainIndex(store)
        # Read-only py-evm chains for the node's own reads (admission, permissioning, balances) and the
        # RPC's calls: one per thread at a time. They, the mempool and the permissions read the head the
        # producer publishes (it exists once the producer has written or found the genesis block).
        self.runners = RunnerPool(lambda: CallRunner(store=store, chain_cls=chain_cls, head=self.head))
        self.permissions = Permissions(genesis=genesis, runners=self.runners, head=self.head)
        self.mempool = Mempool(
            store=store,
            genesis=genesis,
            permissions=self.permissions,
            runners=self.runners,
            head=self.head,
            allow_unprotected_txs=allow_unprotected_txs,
        )
        self.producer = BlockProducer(
            store=store,
            genesis=genesis,
            key=validator_key,
            chain_cls=chain_cls,
            index=self.index,
            mempool=self.mempool,
            max_clock_lead=max_clock_lead,
            max_exec_time=max_exec_time,
        )

    def close(self) -> None:
        """Close the store (every commit is already on disk or in the OS, per the sync mode)."""
        self.store.close()

    # -- the head ----------------------------------------------------------------------------------------

    def head(self) -> BlockHeaderAPI:
        """The committed head's header (replaced by the producer after each commit)."""
        return self.producer.head()

    @property
    def head_number(self) -> int:
        """The committed head's number."""
        return self.producer.head_number

    def next_base_fee(self) -> int:
        """Upper bound of the next block's base fee."""
        return next_base_fee(self.head())

    def account(self, address: bytes, number: int | None, what: str, slot: int = 0) -> Any:
        """Balance, nonce, code or storage of an account at a block (None = latest)."""
        with self.runners.runner() as r:
            return r.account(address, number, what, slot)

    def pending_nonce(self, address: bytes) -> int:
        """Next nonce counting the mempool (eth_getTransactionCount ... "pending")."""
        n = self.mempool.next_nonce(address)
        return n if n is not None else int(self.account(address, None, "nonce"))

    # -- ingress -----------------------------------------------------------------------------------------

    def stage(self, raw: bytes) -> PendingTx | bytes:
        """Validate and stage a raw transaction (see :meth:`Mempool.stage`)."""
        return self.mempool.stage(raw)

    def commit_staged(self) -> None:
        """Make every staged transaction durable and hand it to the producer (the group commit)."""
        self.mempool.commit_staged()

    def mine_staged_now(self, p: PendingTx) -> bool:
        """Mine a lone staged transaction at once (see :meth:`BlockProducer.mine_staged_now`)."""
        return self.producer.mine_staged_now(p)

    def in_mempool(self, tx_hash: bytes) -> bool:
        """Whether a transaction is accepted but not yet mined."""
        return self.mempool.contains(tx_hash)

    def pending_tx_json(self, tx_hash: bytes) -> dict[str, Any] | None:
        """A mempool transaction as eth_getTransactionByHash returns it, or None."""
        return self.mempool.tx_json(tx_hash)

    # -- block production --------------------------------------------------------------------------------

    def set_wake(self, fn: Callable[[], None]) -> None:
        """Ring ``fn()`` whenever a transaction enters the mempool (the server's producer loop)."""
        self.mempool.set_wake(fn)

    def pending_count(self) -> int:
        """Transactions waiting for a block."""
        return self.mempool.count()

    def since_last_block(self) -> float:
        """Seconds since the last block was committed."""
        return self.producer.since_last_block()

    @property
    def max_clock_lead(self) -> float | None:
        """How far ahead of this node's clock a block may be stamped (None: no bound)."""
        return self.producer.max_clock_lead

    def seal_delay(self) -> float:
        """Seconds the next block must wait to keep within the clock bound (see BlockProducer)."""
        return self.producer.seal_delay()

    @property
    def last_block_hashes(self) -> list[bytes]:
        """The transactions of the last block."""
        return self.producer.last_block_hashes

    def mine_once(self, *, allow_empty: bool = False) -> bool:
        """Produce, seal and commit one block from the mempool; False if there was nothing to mine."""
        return self.producer.mine_once(allow_empty=allow_empty)

    def add_listener(self, fn: BlockListener) -> None:
        """Call ``fn(included, dropped)`` after each committed block."""
        self.producer.add_listener(fn)

    def increase_time(self, seconds: int) -> int:
        """Dev RPC: stamp later blocks ``seconds`` later, counted from the head too (burst blocks may
        already be stamped ahead of the clock); the total offset."""
        self.producer.time_offset += seconds
        self.producer.timestamp_floor = self.head().timestamp + seconds
        return self.producer.time_offset
