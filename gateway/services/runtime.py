"""The running gateway: settings, database, ledger, caches, write path and workers, as one object."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from gateway.core.config import GatewaySettings
from gateway.core.db import Database
from gateway.core.kek import open_kek
from gateway.core.security import TokenVerifier
from gateway.ops.recovery import RecoveringSequencer, check_log_against_chain
from gateway.services.caller import ChainCaller
from gateway.services.chain import ChainReads, ReadCache
from gateway.services.group import GroupRunner
from gateway.services.intake import Accepted, Intake
from gateway.services.keys import OrgDirectory
from gateway.services.leadership import GaugePoll, InstanceLock, Leadership, refresh_gauges
from gateway.services.ledger import Ledger
from gateway.services.reads import LogIdentity
from gateway.services.rules import Rules, watched_contracts
from gateway.services.witnessing import Witnessing, check_endpoints
from gateway.services.workers import Anchorer, RegistryWatcher, Stats, Worker
from provenance.crypto import SM2PrivateKey
from provenance.log.receipt import AcceptanceReceipt, sign_receipts
from provenance.network_key import check_key, read_network_key
from provenance.timestamps import format_timestamp, from_unix

log = logging.getLogger("gateway")


class Gateway:
    """Everything a request handler needs, built once per app."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url, storage_retry_after=settings.storage_retry_after)
        self.db.create_all()
        # First: a KEK file that exists but cannot be used stops the start here (DATA_KEY_UNAVAILABLE).
        self.kek = open_kek(settings.kek_path, self.db)
        log.info("key-encryption key %s (id %s)", settings.kek_path, self.kek.key_id)
        # Shared by the network's gateways: without it the chain's keys of boxes cannot be computed.
        self.network_key = read_network_key(settings.network_key_path)
        # SQLite is single-instance: a second gateway with workers on the same file stops here
        # (GATEWAY_ALREADY_RUNNING). One with its workers off only reads and accepts: SQLite's locking does.
        lock = self.db.sqlite_file is not None and settings.start_workers and not settings.api_only
        self.instance_lock = InstanceLock(self.db.sqlite_file) if lock and self.db.sqlite_file else None
        if self.instance_lock is not None:
            self.instance_lock.acquire()
        self.ledger = Ledger(manifest_path=settings.manifest_path, rpc_url=settings.rpc_url)
        check_key(self.network_key, self.ledger.manifest.network_key_id, settings.network_key_path)
        info = self.ledger.log_info
        self.origin = info["origin"]
        self.key_name = info["key_name"]
        key_path = settings.log_key_path or self.ledger.resolve(info["key_file"])
        # The log's signing key: the sequencer's (checkpoints) and the receipts' only, never the reads'.
        self._log_key = SM2PrivateKey.from_pem(key_path.read_bytes())
        # During a log key rotation the next key signs beside it: a verifier holding either key verifies.
        next_path = settings.log_key_next_path
        self._next_log_key = SM2PrivateKey.from_pem(next_path.read_bytes()) if next_path else None
        self._also = (self._next_log_key,) if self._next_log_key is not None else ()
        self.log_contract = self.ledger.log.address
        self.identity = LogIdentity(
            public_key_pem=self._log_key.public_key_pem().decode("ascii"),
            origin=self.origin,
            key_name=self.key_name,
            chain_id=self.ledger.chain_id,
            contract=self.log_contract,
            witness_quorum=settings.witness_quorum,
        )
        cache = ReadCache()  # organisations and the domains' lookups: one registry event drops both
        self.orgs = OrgDirectory(self.ledger, cache)
        self.chain = ChainReads(self.ledger, cache, self.db)
        # Before anything is accepted: a log that conflicts with an anchor stops the start here
        # (LOG_CONFLICTS_WITH_ANCHOR); one behind the chain (a restore) rebuilds the anchored leaves first.
        self.chain_check = check_log_against_chain(self.db, self.ledger)
        self.receipt_signer: GroupRunner[AcceptanceReceipt, str] = GroupRunner(self._sign_receipts)
        self.tokens = TokenVerifier(self.db, ttl=settings.token_cache_ttl)
        self.stats = Stats.load(self.db)
        self.checkpointed = threading.Event()
        self.watcher = RegistryWatcher(
            ledger=self.ledger,
            cache=cache,
            watched=watched_contracts(),
            idle=settings.registry_poll,
        )
        self.intake = Intake(
            db=self.db,
            kek=self.kek,
            network_key=self.network_key,
            orgs=self.orgs,
            ledger=self.ledger,
            rules=Rules(self.chain),
            max_clock_skew=settings.max_clock_skew,
            time_zone=settings.time_zone,
            backlog=self.stats.backlog,
            backlog_limit=settings.backlog_limit,
            retry_after=settings.retry_after,
            on_accept=self._accepted,
        )
        check_endpoints(settings.witnesses, settings.witness_quorum)
        self._build_workers()
        # On PostgreSQL several instances may serve one database: the workers run in the lease owner only.
        self.leadership: Leadership | None = None
        # An API-only instance's gauges come from the database (the owner logs and anchors its records).
        poll = settings.lease_poll
        self.gauge_poll = GaugePoll(self.stats, self.db, poll=poll) if settings.api_only else None
        if not self.db.is_sqlite and not settings.api_only:
            self.leadership = Leadership(
                self.db,
                poll=settings.lease_poll,
                on_acquire=self._own,
                on_lose=self._disown,
                on_poll=lambda: refresh_gauges(self.stats, self.db),
            )
        self._owning = False
        self._owner_lock = threading.Lock()
        self._started = False

    def _build_workers(self) -> None:
        """The owner's workers, new (a thread runs once: an owner that owns the lease again builds anew)."""
        settings = self.settings
        self.sequencer = RecoveringSequencer(
            ledger=self.ledger,
            targets=self.chain_check.targets if self.chain_check else (),
            db=self.db,
            stats=self.stats,
            origin=self.origin,
            key_name=self.key_name,
            key=self._log_key,
            next_key=self._next_log_key,
            batch=settings.sequencer_batch,
            interval=settings.checkpoint_interval,
            idle=min(settings.sequencer_idle, settings.checkpoint_interval),
            on_checkpoint=self.checkpointed,
            on_append=self._logged,
        )
        self.anchorer = Anchorer(
            db=self.db,
            ledger=self.ledger,
            stats=self.stats,
            idle=settings.worker_idle,
            retry=settings.chain_retry,
        )
        self.chain_caller = ChainCaller(
            db=self.db,
            ledger=self.ledger,
            chain=self.chain,
            stats=self.stats,
            idle=settings.worker_idle,
            retry=settings.chain_retry,
        )
        self.witnessing = Witnessing(
            db=self.db,
            witnesses=settings.witnesses,
            timeout=settings.witness_timeout,
            retry=settings.witness_retry,
            idle=settings.worker_idle,
        )

    @property
    def owned_workers(self) -> list[Worker]:
        return [self.sequencer, self.anchorer, self.chain_caller]

    @property
    def owner(self) -> bool:
        """Whether this instance runs the log's workers (always, on SQLite)."""
        return self._owning

    def _own(self) -> None:
        with self._owner_lock:
            if self._owning or not self._started:
                return
            if self.sequencer.is_alive() or self.sequencer.stopping:
                self._build_workers()
            # What another owner did meanwhile: the sizes the new sequencer and anchorer start from.
            refresh_gauges(self.stats, self.db)
            for w in self.owned_workers:
                w.start()
            if self.witnessing.status:
                self.witnessing.start()
            self._owning = True

    def _disown(self) -> None:
        with self._owner_lock:
            if not self._owning:
                return
            self._owning = False
            for w in self.owned_workers:
                w.stop()
            self.witnessing.stop()
            for w in self.owned_workers:
                if w.is_alive():
                    w.join(timeout=15)
            if self.witnessing.is_alive():
                self.witnessing.join(timeout=15)

    def _logged(self) -> None:
        # Records another instance accepted woke no worker here: their contract calls go once logged.
        self.chain_caller.wake.set()

    def _accepted(self, n: int, workflow: bool) -> None:
        with self.stats.lock:
            self.stats.accepted_total += n
        # The sequencer is not woken per record: it polls every ``sequencer_idle`` s and appends what piled
        # up in one transaction; waking it per record made one extra write (and write-lock hold) per request.
        if workflow:
            self.chain_caller.wake.set()

    def _promise(self, accepted: Accepted) -> AcceptanceReceipt:
        return AcceptanceReceipt(
            origin=self.origin,
            record_id=accepted.id,
            accepted_at=format_timestamp(from_unix(accepted.accepted_at)),
            max_merge_delay=self.settings.max_merge_delay,
        )

    def _sign_receipts(self, receipts: Sequence[AcceptanceReceipt]) -> list[str]:
        return sign_receipts(receipts, self.key_name, self._log_key, *self._also)

    def receipt(self, accepted: Accepted) -> str:
        """The signed acceptance receipt of a record: the log key's promise to log it within the delay
        (signed together with the receipts of concurrent submissions: one SM2 signature per group)."""
        return self.receipt_signer.run(self._promise(accepted))

    def receipts(self, accepted: Sequence[Accepted]) -> list[str]:
        """The receipts of records accepted together (a bulk request), in order, under one signature."""
        return self._sign_receipts([self._promise(a) for a in accepted])

    def start(self) -> None:
        """Start the workers."""
        if self._started:
            return
        self._started = True
        self.watcher.start()
        if self.gauge_poll is not None:
            self.gauge_poll.start()  # API-only: the watcher and the gauges, never the log's workers
            return
        self.checkpointed_relay = threading.Thread(target=self._relay, name="anchor-relay", daemon=True)
        if self.leadership is None:
            self._own()
        else:
            self.leadership.start()
        self.checkpointed_relay.start()

    def _relay(self) -> None:
        # Wake the anchorer as soon as a checkpoint is signed instead of waiting for its idle tick.
        while self._started:
            if self.checkpointed.wait(0.5):
                self.checkpointed.clear()
                self.anchorer.wake.set()
                self.witnessing.wake()

    def stop(self) -> None:
        """Stop the workers (each finishes its current step) and close the database."""
        if self._started:
            if self.leadership is not None:
                self.leadership.stop()  # stops an owner's workers, then releases the lease
            self._disown()
            self._started = False
            self.watcher.stop()
            self.watcher.join(timeout=15)
            if self.gauge_poll is not None:
                self.gauge_poll.stop()
                self.gauge_poll.join(timeout=15)
        self.db.dispose()
        if self.instance_lock is not None:
            self.instance_lock.release()
