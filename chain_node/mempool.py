"""The durable mempool: admission of raw transactions, their nonces, the group commit into ``pending``.

A send is validated and staged (its nonce reserved), then made durable before its hash goes back: by the
group commit of every send staged in one turn of the server's loop (:meth:`Mempool.commit_staged`), or by
the block that mines it at once (a lone client, ``BlockProducer.mine_staged_now``). Only durable
transactions are in the mempool, so a block never includes one whose commit failed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI, SignedTransactionAPI
from eth.exceptions import PyEVMError
from eth.vm.forks.cancun.transactions import CancunTransactionBuilder
from eth_utils.exceptions import ValidationError

from chain_node.calls import RunnerPool
from chain_node.encoding import tx_json
from chain_node.errors import Code, RpcError
from chain_node.execution import block_gas_cap, next_base_fee
from chain_node.genesis import Genesis
from chain_node.permissions import Permissions
from chain_node.store import Store, u64

log = logging.getLogger("chain_node.mempool")


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


class Mempool:
    """Pending transactions in arrival order, the staged ones, and each sender's next nonce."""

    def __init__(
        self,
        *,
        store: Store,
        genesis: Genesis,
        permissions: Permissions,
        runners: RunnerPool,
        head: Callable[[], BlockHeaderAPI],
        allow_unprotected_txs: bool = False,
    ) -> None:
        self.store = store
        self.chain_id = genesis.chain_id
        self.gas_cap = block_gas_cap(genesis.gas_limit)
        self.permissions = permissions
        self.allow_unprotected_txs = allow_unprotected_txs
        self._runners = runners
        self._head = head
        self.lock = threading.Lock()  # mempool, staged and nonces
        self.pending: dict[bytes, PendingTx] = {}  # tx hash -> pending, in arrival order
        self.staged: dict[bytes, PendingTx] = {}  # accepted, not yet durable (see stage / commit_staged)
        self._next_nonce: dict[bytes, int] = {}  # only senders with txs pending or staged
        self._seq = 0
        self._on_pending: Callable[[], None] = lambda: None
        self._load()

    def _load(self) -> None:
        for key, raw in self.store.items("pending"):
            tx = CancunTransactionBuilder.decode(raw)
            p = PendingTx(key=key, tx=tx, sender=tx.sender, raw=raw)
            self.pending[p.hash] = p
            self._next_nonce[p.sender] = tx.nonce + 1
            self._seq = max(self._seq, int.from_bytes(key[:8], "big") + 1)
        if self.pending:
            log.info("recovered %d pending transactions", len(self.pending))

    def set_wake(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` whenever a transaction enters the mempool (the block producer's doorbell)."""
        self._on_pending = fn
        if self.pending:
            fn()

    # -- admission ---------------------------------------------------------------------------------------

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
        self.permissions.check(sender, creates=not tx.to)
        if tx.gas < tx.intrinsic_gas:
            raise RpcError(
                Code.EXECUTION_ERROR, f"intrinsic gas too low: have {tx.gas}, want {tx.intrinsic_gas}"
            )
        if tx.gas > self.gas_cap:
            raise RpcError(Code.EXECUTION_ERROR, f"exceeds block gas limit: {tx.gas} > {self.gas_cap}")
        base_fee = next_base_fee(self._head())
        if tx.max_fee_per_gas < base_fee:
            raise RpcError(
                Code.EXECUTION_ERROR,
                f"max fee per gas less than block base fee: {tx.max_fee_per_gas} < {base_fee}",
            )
        h = tx.hash
        with self.lock:
            if h in self.pending:
                return h
            staged = self.staged.get(h)
            if staged is not None:
                return staged  # the same send again before its commit: wait for that commit too
        if self.store.get("rcpts", h) is not None:
            return h
        with self.lock:
            # Read the state under the lock: the producer commits a block before it drops that block's
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
            self.staged[h] = p
            self._next_nonce[sender] = tx.nonce + 1
        return p

    def commit_staged(self) -> None:
        """Write every staged transaction to the pending table in one commit, then hand them to the miner.

        On failure the staged transactions are refused (their nonces freed) and the error propagates.
        """
        with self.lock:
            batch = list(self.staged.values())
        if not batch:
            return
        try:
            self.store.commit(("pending", p.key, p.raw) for p in batch)
        except BaseException:
            with self.lock:
                for p in batch:
                    self.staged.pop(p.hash, None)
                senders = {p.sender for p in batch}
                for sender in senders:
                    self._next_nonce.pop(sender, None)
                for q in [*self.pending.values(), *self.staged.values()]:
                    if q.sender in senders:
                        self._next_nonce[q.sender] = max(self._next_nonce.get(q.sender, 0), q.tx.nonce + 1)
            raise
        with self.lock:
            for p in batch:
                self.staged.pop(p.hash, None)
                self.pending[p.hash] = p
        self._on_pending()

    def take_lone(self, p: PendingTx) -> bool:
        """Move staged ``p`` straight into the mempool if it is the only transaction anywhere (to be mined
        at once, its block commit making it durable); False, and nothing moved, otherwise."""
        with self.lock:
            if self.pending or list(self.staged) != [p.hash]:
                return False
            del self.staged[p.hash]
            self.pending[p.hash] = p
        return True

    def _nonce_and_balance(self, sender: bytes) -> tuple[int, int]:
        with self._runners.runner() as r:
            return int(r.account(sender, None, "nonce")), int(r.account(sender, None, "balance"))

    # -- removal -----------------------------------------------------------------------------------------

    def snapshot(self) -> list[PendingTx]:
        """The pending transactions, in arrival order."""
        with self.lock:
            return list(self.pending.values())

    def remove(self, txs: Iterable[PendingTx], *, durable: bool = False) -> None:
        """Remove mined or dropped ``txs`` (and, if ``durable``, delete them from the pending table: a block
        commit deletes its own)."""
        txs = list(txs)
        if durable:
            self.store.commit(("pending", p.key, None) for p in txs)
        with self.lock:
            for p in txs:
                self.pending.pop(p.hash, None)
            self._release_nonces(txs)

    def _release_nonces(self, txs: list[PendingTx]) -> None:
        """Forget the pending nonce of senders with nothing left pending or staged (under the lock)."""
        still = {p.sender for p in self.pending.values()} | {p.sender for p in self.staged.values()}
        for p in txs:
            if p.sender not in still:
                self._next_nonce.pop(p.sender, None)

    # -- reads -------------------------------------------------------------------------------------------

    def count(self) -> int:
        """Transactions waiting for a block."""
        with self.lock:
            return len(self.pending)

    def contains(self, tx_hash: bytes) -> bool:
        """Whether a transaction is accepted but not yet mined."""
        with self.lock:
            return tx_hash in self.pending

    def next_nonce(self, address: bytes) -> int | None:
        """The next nonce of ``address`` counting its pending transactions, None if it has none."""
        with self.lock:
            return self._next_nonce.get(address)

    def tx_json(self, tx_hash: bytes) -> dict[str, Any] | None:
        """A mempool transaction as eth_getTransactionByHash returns it, or None."""
        with self.lock:
            p = self.pending.get(tx_hash)
        if p is None:
            return None
        return tx_json(p.tx, p.sender, block_hash=None, number=None, index=None, base_fee=None)
