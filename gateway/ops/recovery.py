"""After a restore: the log is checked against ProvenanceLog before the gateway accepts anything, and the
records owed since the backup are put back at the leaves the chain anchored.

A backup holds the log up to its size B; the chain may have anchored up to A > B since. At start the gateway
compares its log with the anchors (``check_log_against_chain``):

- a root that differs from an anchor at a size the log has: the log conflicts with the chain, the gateway
  refuses to start (LOG_CONFLICTS_WITH_ANCHOR): it is not this log's backup, or it was altered;
- A > B: the log is behind by A - B leaves. It starts and says so (log line, ``/healthz`` ``behind_chain``);
  the organisations re-submit the records their acceptance receipts show were accepted after the backup (the
  same signed records: ``POST /api/v1/records`` accepts them again). ``RecoveringSequencer`` appends the
  records waiting, in the order of their signed timestamps then record ids, only up to an anchored size and
  only when the root there is the chain's: leaves B..A-1 come back exactly as anchored, every earlier bundle,
  anchor and consistency link stays valid. Records accepted meanwhile wait behind them. Owed records that
  never come back (or that cannot be put back in that order) leave the log behind: the committee's
  ``VoidAnchorsAfter(B)`` proposal drops the anchors beyond it, and the gateway goes on from B.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from gateway.core.db import LOG_WRITE_LOCK, Database
from gateway.errors import LogConflictsWithAnchor
from gateway.models import Record
from gateway.services.ledger import CHAIN_ERRORS, Ledger
from gateway.services.sqllog import SqlLogStorage, merkle_log
from gateway.services.workers import Sequencer, signed_record
from provenance.chain.events import read_anchors
from provenance.errors import LedgerError
from provenance.log.merkle import MerkleLog
from provenance.timestamps import parse_timestamp

log = logging.getLogger("gateway.recovery")
_CHAIN_READ: tuple[type[BaseException], ...] = (LedgerError, *CHAIN_ERRORS)


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """The log against ProvenanceLog at start: its size, the chain's anchored size, and the anchors beyond the
    log ((size, root), oldest first) that the owed records must rebuild."""

    log_size: int
    anchored_size: int
    targets: tuple[tuple[int, bytes], ...]

    def behind(self, log_size: int) -> dict[str, Any] | None:
        """``/healthz``'s ``behind_chain`` for the log's size now (None once it reached the chain's)."""
        if log_size >= self.anchored_size:
            return None
        return {
            "anchored_size": self.anchored_size,
            "log_size": log_size,
            "missing": self.anchored_size - log_size,
            "restored_size": self.log_size,
        }


def check_log_against_chain(db: Database, ledger: Ledger) -> ChainCheck | None:
    """The start-up check (None when the chain cannot be read now: the anchorer's own checks catch a fork
    later); LOG_CONFLICTS_WITH_ANCHOR when the log's root at an anchored size is not the chain's."""
    try:
        state = ledger.anchor_state()
        anchors = read_anchors(ledger.w3, ledger.log.address) if state.size else []
    except _CHAIN_READ as exc:
        log.warning("the log was not checked against ProvenanceLog at start (chain unavailable: %s)", exc)
        return None
    with db.session() as s:
        tree = merkle_log(s)
        size = tree.size
        covered = [a for a in anchors if a.tree_size <= size]
        # The contract accepted each anchor with a consistency proof from the one before: the newest anchor
        # the log covers vouches for all earlier ones.
        if covered and tree.root(covered[-1].tree_size) != covered[-1].root:
            a = covered[-1]
            raise LogConflictsWithAnchor(
                "the gateway's log conflicts with ProvenanceLog: its root at the anchored size "
                f"{a.tree_size} is not the one anchored on chain (a backup of another log, or altered); "
                "the gateway does not start on it",
                details={"size": a.tree_size, "chain_root": "0x" + a.root.hex(), "log_size": size},
            )
    check = ChainCheck(size, state.size, tuple((a.tree_size, a.root) for a in anchors if a.tree_size > size))
    if check.targets:
        log.error(
            "the log (size %d) is behind ProvenanceLog's latest anchor (size %d): %d leaves are missing; "
            "organisations re-submit the records accepted after the backup (their receipts), and they are "
            "put back at the anchored leaves",
            size,
            state.size,
            state.size - size,
        )
    return check


class RecoveringSequencer(Sequencer):
    """The sequencer: of a log behind the chain (``targets``), rebuilds the anchored leaves first (see the
    module); else, and once they are rebuilt, the plain ``Sequencer``."""

    def __init__(self, *, ledger: Ledger, targets: tuple[tuple[int, bytes], ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ledger = ledger
        self._targets = list(targets)
        self._said = 0.0

    def _follow_chain(self) -> None:
        """The committee may void the anchors beyond the restored log meanwhile (owed records that never
        came back): then the log goes on from its size as usual."""
        try:
            state = self._ledger.anchor_state()
            if state.size == self._targets[-1][0] and state.root == self._targets[-1][1]:
                return
            anchors = read_anchors(self._ledger.w3, self._ledger.log.address) if state.size else []
        except _CHAIN_READ:
            return  # the chain is down: keep the targets known
        self._targets = [(a.tree_size, a.root) for a in anchors]  # those the log has are dropped next
        log.warning("ProvenanceLog's anchors changed: the log now rebuilds up to %d", state.size)

    def sequence(self) -> int:
        if self._targets:
            self._follow_chain()
        if not self._targets:
            return super().sequence()
        with self._db.write(exclusive=LOG_WRITE_LOCK) as s:
            storage = SqlLogStorage(s)
            tree = MerkleLog(storage=storage)
            size = tree.size
            self._targets = [t for t in self._targets if t[0] > size]  # another owner got further
            if not self._targets:
                return 1  # recovered: the next step sequences as usual
            target, root = self._targets[0]
            waiting = s.exec(select(Record).where(col(Record.leaf_index).is_(None))).all()
            owed = sorted(waiting, key=lambda r: (parse_timestamp(r.timestamp), r.id))[: target - size]
            if len(owed) == target - size:
                for r in owed:
                    tree.append(signed_record(r).leaf_entry())
                if tree.root(target) == root:
                    storage.write_pending()
                    for i, r in enumerate(owed):
                        r.leaf_index = size + i
                        s.add(r)
                    log.warning("recovered the anchored leaves %d..%d", size, target - 1)
                    with self._stats.lock:
                        self._stats.tree_size = target
                    return len(owed)
        if time.monotonic() - self._said > 30:
            self._said = time.monotonic()
            log.warning(
                "log behind the chain: %d record(s) wait, the anchored size %d needs %d in its order",
                len(waiting),
                target,
                target - size,
            )
        return 0
