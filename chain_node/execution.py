"""Block execution: pending transactions applied by py-evm on top of the head, into a finalized block.

Nothing here commits or seals: the producer (``chain_node/producer.py``) does, with what this returns.
Calls and estimates, which execute without a block, are ``chain_node/calls.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI
from eth.chains.base import MiningChain
from eth.vm.forks.cancun.constants import BLOB_TX_TYPE
from eth_utils.exceptions import ValidationError

from chain_node.abc import Executable
from chain_node.encoding import hx
from chain_node.interrupt import CallTimeout

log = logging.getLogger("chain_node.execution")


def block_gas_cap(gas_limit: int) -> int:
    """The most gas a block is filled with, and so the most one transaction may ask for: the EIP-1559
    target. The base fee then never rises, so a transaction accepted against the head's base fee stays
    valid until it is mined."""
    return gas_limit // 2


def next_base_fee(head: BlockHeaderAPI) -> int:
    """Upper bound of the next block's base fee: the head's (blocks never pass the target)."""
    fee = head.base_fee_per_gas
    assert fee is not None, "Cancun headers carry a base fee"
    return fee


E = TypeVar("E", bound=Executable)


@dataclass
class Executed(Generic[E]):
    """What :func:`execute_block` made of a batch: the block (None if nothing went in and no empty block
    was asked for), the transactions it holds with their receipts, and those dropped as invalid."""

    block: BlockAPI | None
    applied: list[E] = field(default_factory=list)  # the batch's entries, in block order
    receipts: list[ReceiptAPI] = field(default_factory=list)
    dropped: list[E] = field(default_factory=list)


class ExecutionInterrupted(Exception):
    """The block's time ran out (CallTimeout) while its ``done``-th transaction of the batch was executed
    (``len(batch)``: after the last). The block in progress is unusable: py-evm stopped anywhere."""

    def __init__(self, done: int) -> None:
        super().__init__(f"interrupted at transaction {done}")
        self.done = done


def execute_block(
    chain: MiningChain,
    head: BlockHeaderAPI,
    batch: Sequence[E],
    *,
    timestamp: int,
    allow_empty: bool,
    stop_after: float | None = None,
) -> Executed[E]:
    """Apply ``batch`` in order on top of ``head`` until the block is full, or until ``stop_after``
    seconds of this thread's CPU have gone into it (the rest waits for the next block); finalize the block
    (state root).

    py-evm's writes go to the chain's database (the producer's overlay), which the caller commits or clears.
    Interrupted by CallTimeout: ExecutionInterrupted, naming the transaction it stopped in.
    """
    out: Executed[E] = Executed(block=None)
    try:
        return _execute(chain, head, batch, out, timestamp, allow_empty, stop_after)
    except CallTimeout:
        raise ExecutionInterrupted(len(out.applied) + len(out.dropped)) from None


def _execute(
    chain: MiningChain,
    head: BlockHeaderAPI,
    batch: Sequence[E],
    out: Executed[E],
    timestamp: int,
    allow_empty: bool,
    stop_after: float | None,
) -> Executed[E]:
    started = time.thread_time()
    header = chain.create_header_from_parent(head, timestamp=timestamp)
    vm = chain.get_vm(header)
    gas_cap = block_gas_cap(header.gas_limit)
    cur = header
    for p in batch:
        if out.applied and cur.gas_used + p.tx.gas > gas_cap:
            break
        if out.applied and stop_after is not None and time.thread_time() - started > stop_after:
            break
        try:
            receipt, _comp = vm.apply_transaction(cur, p.tx)
        except ValidationError as exc:
            log.warning("dropping tx %s: %s", hx(p.hash), exc)
            out.dropped.append(p)
            continue
        # One header copy per transaction (gas used, which the next receipt builds on); the bloom is OR-ed
        # once at the end instead of copying the header for it every time.
        cur = cur.copy(gas_used=receipt.gas_used)
        if getattr(p.tx, "type_id", None) == BLOB_TX_TYPE:
            cur = vm.increment_blob_gas_used(cur, p.tx)
        out.applied.append(p)
        out.receipts.append(receipt)
    if not out.applied and not allow_empty:
        return out
    if out.receipts:
        bloom = cur.bloom
        for receipt in out.receipts:
            bloom |= receipt.bloom
        cur = cur.copy(bloom=bloom)
    block = vm.set_block_transactions_and_withdrawals(
        vm.get_block(), cur, [p.tx for p in out.applied], out.receipts
    )
    # finalize (state root) without vm.mine_block's re-validation, and persist without
    # chain.persist_block's re-validation and read-back: we just built this block ourselves.
    out.block = vm.finalize_block(block).block
    chain.chaindb.persist_block(out.block)
    return out
