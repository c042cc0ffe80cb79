"""Background workers: sequencer + checkpointer, anchoring, workflow contract calls, registry watcher.

Each is one thread with one job. All state lives in the database, so a restart resumes where the last run
stopped: a leaf index is assigned in the transaction that stores the leaf, a checkpoint row exists before it
is anchored, and a workflow call is marked done only after its receipt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy import select as core_select
from sqlmodel import col, select

from adapters import RecordFacts
from gateway.core.db import LOG_WRITE_LOCK, Database, execute_many
from gateway.errors import StorageWriteFailed
from gateway.models import CheckpointRow, Record
from gateway.services.chain import ReadCache
from gateway.services.ledger import AnchorState, Ledger
from gateway.services.rules import record_facts
from gateway.services.sqllog import SqlLogStorage, merkle_log
from provenance.chain.contracts import ContractReverted
from provenance.crypto import SM2PrivateKey
from provenance.errors import LedgerError
from provenance.log.checkpoint import Checkpoint, sign_checkpoint
from provenance.log.merkle import MerkleLog
from provenance.records import Envelope, SignedRecord, b64decode

log = logging.getLogger("gateway.workers")

# The sequencer's two statements: the next accepted records in acceptance order (the columns of the signed
# record only), and their leaf indexes, by primary key.
_UNSEQUENCED = (
    core_select(
        *(
            col(c)
            for c in (
                Record.seq,
                Record.kind,
                Record.subject,
                Record.org,
                Record.timestamp,
                Record.nonce,
                Record.prev,
                Record.payload_digest,
                Record.signature,
            )
        )
    )
    .where(col(Record.leaf_index).is_(None))
    .order_by(col(Record.seq))
    .limit(bindparam("n"))
)
_SET_LEAF = update(Record).where(col(Record.seq) == bindparam("s")).values(leaf_index=bindparam("leaf"))


# The logged code and /healthz field of an anchor the chain will not take until the committee acts.
ANCHOR_STUCK = "ANCHOR_STUCK"
# ProvenanceLog's refusals that mean the chain moved since the anchorer read it: re-plan, not stuck.
_ANCHOR_RACES = frozenset({"InconsistentAnchor", "GrowthTooLarge", "SizeNotIncreasing", "RootConflict"})


@dataclass(frozen=True, slots=True)
class AnchorStuck:
    """Why anchoring cannot go on by itself: ProvenanceLog's latest anchor is not this log's (``fork``: a root
    this log never had; ``beyond_log``: a size it does not have), no checkpoint lies within the growth an
    anchor may add (``growth``), or the contract refuses the operator (``refused``, e.g. its organisation
    suspended). The committee recovers it (VoidAnchors, SetMaxAnchorGrowth, SetOrgStatus)."""

    reason: str
    message: str
    chain_size: int
    chain_root: str  # 0x-hex
    log_size: int
    since: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": ANCHOR_STUCK,
            "reason": self.reason,
            "message": self.message,
            "chain_size": self.chain_size,
            "chain_root": self.chain_root,
            "log_size": self.log_size,
            "since": self.since,
        }


@dataclass
class Stats:
    """Counters and gauges the workers and the write path share (read by /metrics and /healthz; the
    counters by kind and code are the metrics registry's, gateway/api/metrics.py)."""

    accepted_total: int = 0
    tree_size: int = 0
    checkpoint_size: int = 0
    anchored_size: int = 0
    chain_up: bool = True
    chain_pending: int = 0
    last_anchor_at: float | None = None
    anchor_stuck: AnchorStuck | None = None
    chain_calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def backlog(self) -> int:
        """Records accepted but not yet covered by an anchored checkpoint. Every logged record was accepted,
        by this process or by an API-only one on the same database, which this one's own count misses: the
        larger of the two counts (each at most the true one, so no race with a counter overcounts)."""
        return max(0, max(self.accepted_total, self.tree_size) - self.anchored_size)

    @classmethod
    def load(cls, db: Database) -> Stats:
        """Initial values from the database (after a restart)."""
        with db.session() as s:
            accepted = s.exec(select(func.count()).select_from(Record)).one()
            top = s.exec(select(func.max(Record.leaf_index))).one()
            cp = s.exec(select(func.max(CheckpointRow.size))).one()
            anchored = s.exec(
                select(func.max(CheckpointRow.size)).where(col(CheckpointRow.anchor_tx).is_not(None))
            ).one()
            pending = s.exec(
                select(func.count()).select_from(Record).where(Record.chain_status == "pending")
            ).one()
        return cls(
            accepted_total=int(accepted),
            tree_size=0 if top is None else int(top) + 1,
            checkpoint_size=int(cp or 0),
            anchored_size=int(anchored or 0),
            chain_pending=int(pending),
        )


class Worker(threading.Thread):
    """A daemon loop: ``step()`` until stopped; sleeps ``idle`` s (or until woken) when there was no work."""

    def __init__(self, name: str, *, idle: float) -> None:
        super().__init__(name=name, daemon=True)
        self.idle = idle
        self.wake = threading.Event()
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                busy = self.step()
            except Exception as exc:  # a worker must outlive any one bad iteration
                if isinstance(exc, StorageWriteFailed):
                    # Rolled back, so its records still wait for the next step: one line, no traceback.
                    log.warning("%s: %s: %s", self.name, exc.code, exc.message)
                else:
                    log.exception("%s: step failed", self.name)
                busy = False
                self._stop_event.wait(1.0)
            if not busy:
                self.wake.wait(self.idle_for())
                self.wake.clear()

    def step(self) -> bool:
        """One unit of work; True when there may be more right away."""
        raise NotImplementedError

    def idle_for(self) -> float:
        """Seconds to sleep (unless woken) after a step that found no more work."""
        return self.idle


class Sequencer(Worker):
    """Appends accepted records to the SM3 log in acceptance order and signs checkpoints."""

    def __init__(
        self,
        *,
        db: Database,
        stats: Stats,
        origin: str,
        key_name: str,
        key: SM2PrivateKey,
        next_key: SM2PrivateKey | None = None,
        batch: int,
        interval: float,
        idle: float,
        on_checkpoint: threading.Event,
        on_append: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__("sequencer", idle=idle)
        self._db = db
        self._stats = stats
        self._origin = origin
        self._key_name = key_name
        self._key = key
        self._also = (next_key,) if next_key is not None else ()
        self._batch = batch
        self._interval = interval
        self._last_checkpoint = 0.0
        self._on_checkpoint = on_checkpoint
        self._on_append = on_append

    def step(self) -> bool:
        appended = self.sequence()
        self.checkpoint()
        return appended >= self._batch

    def idle_for(self) -> float:
        # Leaves not yet in a checkpoint: wake when the next one is due, not up to ``idle`` after.
        with self._stats.lock:
            owed = self._stats.tree_size > self._stats.checkpoint_size
        if not owed:
            return self.idle
        due = self._last_checkpoint + self._interval - time.monotonic()
        return max(0.0, min(self.idle, due))

    def sequence(self) -> int:
        """Append the next batch of accepted records; returns how many."""
        with self._db.write(exclusive=LOG_WRITE_LOCK) as s:
            # Core statements, columns by name: loading, dirtying and flushing ORM rows cost more per record
            # than hashing it, all of it under the write lock the intake waits on.
            conn = s.connection()
            rows = conn.execute(_UNSEQUENCED, {"n": self._batch}).all()
            if not rows:
                return 0
            storage = SqlLogStorage(s)
            tree = MerkleLog(storage=storage)
            marks = [{"s": row.seq, "leaf": tree.append(_signed(row).leaf_entry())} for row in rows]
            storage.write_pending()
            execute_many(conn, _SET_LEAF, marks)
            size = tree.size
        with self._stats.lock:
            self._stats.tree_size = size
        self._on_append()
        return len(rows)

    def checkpoint(self) -> None:
        """Sign a checkpoint of the current tree if it grew and the interval has passed."""
        now = time.monotonic()
        if now - self._last_checkpoint < self._interval:
            return
        with self._db.write(exclusive=LOG_WRITE_LOCK) as s:
            tree = merkle_log(s)
            size = tree.size
            last = s.exec(select(func.max(CheckpointRow.size))).one() or 0
            if size <= last:  # signed already (another owner's): nothing owed (``idle_for``)
                with self._stats.lock:
                    self._stats.checkpoint_size = max(self._stats.checkpoint_size, last)
                return
            cp = Checkpoint(origin=self._origin, size=size, root=tree.root(size))
            note = sign_checkpoint(cp, self._key_name, self._key, *self._also)
            s.add(CheckpointRow(size=size, root=cp.root, note=note, created_at=time.time()))
        self._last_checkpoint = now
        with self._stats.lock:
            self._stats.checkpoint_size = size
        self._on_checkpoint.set()


class _ChainWriter(Worker):
    """A worker that sends transactions: it pauses ``retry`` s whenever the chain cannot be reached."""

    def __init__(
        self, name: str, *, db: Database, ledger: Ledger, stats: Stats, idle: float, retry: float
    ) -> None:
        super().__init__(name, idle=idle)
        self._db = db
        self._ledger = ledger
        self._stats = stats
        self._retry = retry

    def _chain_down(self, what: str, exc: LedgerError) -> bool:
        """The chain is unreachable for ``what``: marked down, logged, and a pause; the step ends (False)."""
        with self._stats.lock:
            self._stats.chain_up = False
        log.info("chain unavailable for %s (%s); retrying", what, exc.message)
        self._stop_event.wait(self._retry)
        return False


class Anchorer(_ChainWriter):
    """Anchors signed checkpoints in ProvenanceLog, each with the consistency proof from the latest anchor.

    Retries while the chain is down. When the chain's latest anchor is not part of this log (the operator's
    key anchored something else), or no checkpoint lies within the contract's growth bound, no retry can
    succeed: it says so once (ANCHOR_STUCK, logged and in ``Stats.anchor_stuck``) and polls until the
    committee's proposal has recovered the log, then resumes by itself.
    """

    def __init__(self, *, db: Database, ledger: Ledger, stats: Stats, idle: float, retry: float) -> None:
        super().__init__("anchorer", db=db, ledger=ledger, stats=stats, idle=idle, retry=retry)

    def step(self) -> bool:
        with self._db.session() as s:
            row = s.exec(select(CheckpointRow).order_by(col(CheckpointRow.size).desc()).limit(1)).first()
        if row is None or row.anchor_tx is not None:
            return False
        state: AnchorState | None = None
        try:
            # Already anchored (a crash lost the receipt): cite the original transaction, not a no-op retry.
            receipt = self._ledger.find_anchor(row.size, row.root)
            if receipt is None:
                plan = self._plan(row.size)
                if plan is None:
                    self._stop_event.wait(self._retry * 4)
                    return False
                row, proof, state = plan
                receipt = self._ledger.anchor(row.size, row.root, proof)
        except ContractReverted as exc:
            if exc.error in _ANCHOR_RACES or state is None:
                # The chain moved between our read and the send (another anchor landed): re-planned next step.
                log.warning("anchor of size %d refused by ProvenanceLog: %s", row.size, exc.details)
            else:  # e.g. Unauthorized: the operator's organisation suspended; no retry can succeed by itself
                self._stuck("refused", f"it refuses size {row.size}: {exc.error}", state, row.size)
            self._stop_event.wait(self._retry)
            return False
        except LedgerError as exc:
            return self._chain_down("anchoring", exc)
        with self._db.write() as s:
            fresh = s.get(CheckpointRow, row.size)
            assert fresh is not None
            fresh.anchor_tx = receipt.tx_hash
            fresh.anchor_block_number = receipt.block_number
            fresh.anchor_block_hash = receipt.block_hash
            fresh.anchored_at = time.time()
            s.add(fresh)
        with self._stats.lock:
            self._stats.anchored_size = max(self._stats.anchored_size, row.size)
            self._stats.chain_up = True
            self._stats.last_anchor_at = time.time()
        return True

    def _plan(self, newest: int) -> tuple[CheckpointRow, list[bytes], AnchorState] | None:
        """The checkpoint to anchor next and its proof from the chain's latest anchor (None: nothing now)."""
        state = self._ledger.anchor_state()
        with self._stats.lock:
            self._stats.chain_up = True
        with self._db.session() as s:
            tree = merkle_log(s)
            size = tree.size
            if state.size > size:
                self._stuck("beyond_log", f"its size {state.size} is beyond this log's {size}", state, size)
                return None
            if state.size and tree.root(state.size) != state.root:
                self._stuck("fork", f"its root for size {state.size} is not this log's", state, size)
                return None
            if newest <= state.size:
                # A larger size of this same log is anchored (an earlier run got further): the next checkpoint
                # beyond it will be anchored.
                self._unstuck()
                log.warning(
                    "checkpoint %d is behind the anchored size %d; waiting for a newer one",
                    newest,
                    state.size,
                )
                return None
            reach = state.size + state.max_growth
            target = s.exec(
                select(CheckpointRow)
                .where(col(CheckpointRow.size) > state.size, col(CheckpointRow.size) <= reach)
                .order_by(col(CheckpointRow.size).desc())
                .limit(1)
            ).first()
            if target is None:
                message = f"no checkpoint within its growth bound ({state.max_growth}) of size {state.size}"
                self._stuck("growth", message, state, size)
                return None
            proof = tree.consistency_proof(state.size, target.size) if state.size else []
        self._unstuck()
        return target, proof, state

    def _stuck(self, reason: str, detail: str, state: AnchorState, log_size: int) -> None:
        message = f"ProvenanceLog's latest anchor cannot be extended: {detail}"
        stuck = AnchorStuck(reason, message, state.size, "0x" + state.root.hex(), log_size, time.time())
        with self._stats.lock:
            before = self._stats.anchor_stuck
            if before is not None and (before.reason, before.chain_size, before.chain_root) == (
                reason,
                stuck.chain_size,
                stuck.chain_root,
            ):
                return  # said already; keep the first time it was seen
            self._stats.anchor_stuck = stuck
        log.error(
            "%s (%s): %s; nothing is anchored until the committee's VoidAnchors or SetMaxAnchorGrowth "
            "proposal recovers ProvenanceLog",
            ANCHOR_STUCK,
            reason,
            message,
        )

    def _unstuck(self) -> None:
        with self._stats.lock:
            was = self._stats.anchor_stuck
            self._stats.anchor_stuck = None
        if was is not None:
            log.warning("%s cleared: ProvenanceLog's latest anchor is this log's again", ANCHOR_STUCK)


class RegistryWatcher(Worker):
    """Polls the events of OrgRegistry and of the contracts the domains watch (a station registry) and
    drops the cache of organisations, keys and the domains' lookups when any arrives (a key added or
    revoked, a station registered or suspended...)."""

    def __init__(self, *, ledger: Ledger, cache: ReadCache, watched: Sequence[str], idle: float) -> None:
        super().__init__("registry-watcher", idle=idle)
        self._ledger = ledger
        self._cache = cache
        self._watched = tuple(watched)
        self._last: int | None = None

    def step(self) -> bool:
        try:
            head = self._ledger.block_number()
            if self._last is None:
                self._last = head
                return False
            if self._ledger.changed(self._watched, self._last + 1, head):
                self._cache.invalidate()
            self._last = head
        except LedgerError:
            pass  # the cache stays as it was; the next poll catches up from the same block
        return False


def facts_of(row: Record) -> RecordFacts:
    """A stored record as its domain's rules and contract binding see it."""
    return record_facts(_signed(row).envelope, row.facts)


def _signed(row: Any) -> SignedRecord:
    """The signed record of a ``record`` row (an ORM ``Record`` or a Core row with its columns)."""
    env = Envelope(
        kind=row.kind,
        subject=row.subject,
        org=row.org,
        timestamp=row.timestamp,
        nonce=row.nonce,
        prev=row.prev,
        payload_digest=row.payload_digest,
    )
    return SignedRecord(envelope=env, signature=b64decode(row.signature))


def signed_record(row: Record) -> SignedRecord:
    """The signed record a row holds (envelope + signature), as logged."""
    return _signed(row)
