"""The chain caller: the domain-contract call of every record that makes one, sent by the owner of the
workers in acceptance order (split from ``workers``, whose base classes and record readers it uses)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import bindparam, update
from sqlmodel import col, select

from adapters.registry import workflow_for
from gateway.core.db import Database
from gateway.models import Record
from gateway.services.chain import ChainReads
from gateway.services.ledger import Ledger, Sender
from gateway.services.workers import Stats, _ChainWriter, facts_of
from provenance.chain.contracts import ContractReverted, Sent
from provenance.errors import LedgerError

log = logging.getLogger("gateway.workers")


class ChainCaller(_ChainWriter):
    """Sends the domain-contract call of every record that makes one, strictly in acceptance order.

    Consecutive records of one organisation go out as a run (``Ledger.sender``): each call is sent without
    waiting for the receipt of the one before (consecutive nonces keep their order on the chain), then the
    receipts are read in order and the outcomes written in one transaction. A call whose gas estimate
    reverts while earlier ones are still unconfirmed is asked again once they are: it is rejected only on
    the chain state every earlier call made, as when each waited for its receipt.
    """

    def __init__(
        self, *, db: Database, ledger: Ledger, chain: ChainReads, stats: Stats, idle: float, retry: float
    ) -> None:
        super().__init__("chain-caller", db=db, ledger=ledger, stats=stats, idle=idle, retry=retry)
        self._chain = chain

    def step(self) -> bool:
        with self._db.session() as s:
            rows = s.exec(
                select(Record).where(Record.chain_status == "pending").order_by(col(Record.seq)).limit(50)
            ).all()
        if not rows:
            with self._stats.lock:
                self._stats.chain_pending = 0
            return False
        done: list[_Outcome] = []
        down: LedgerError | None = None
        start = 0
        while start < len(rows) and down is None and not self.stopping:
            end = start + 1
            while end < len(rows) and rows[end].org == rows[start].org:
                end += 1
            down = self._run(rows[start:end], done)
            start = end
        if done:
            # Only after the receipts: a crash before this commit leaves the rows pending, and their calls,
            # sent again, revert into ``already_applied``.
            with self._db.write() as s:
                s.connection().execute(_SET_CHAIN, [o._asdict() for o in done])
            with self._stats.lock:
                self._stats.chain_calls.update(o.status for o in done)
                self._stats.chain_up = True
        if down is not None:  # the send or the already-applied lookup: the rest is retried later
            return self._chain_down(rows[len(done)].kind, down)
        return not self.stopping

    def _run(self, rows: Sequence[Record], done: list[_Outcome]) -> LedgerError | None:
        """Send the calls of one organisation's consecutive records; their outcomes, in order, into
        ``done`` (a prefix of ``rows`` when the chain fails: that error is returned)."""
        org = rows[0].org
        if not self._ledger.holds_account(org):
            # Accepted before the account left the manifest (intake refuses such records now): a
            # configuration fact, not an outage, so it must not hold up every later call.
            for row in rows:
                log.warning("%s %s: no transaction account for %r", row.kind, row.id, org)
                done.append(_Outcome(row.seq, "rejected", None, "TX_ACCOUNT_MISSING"))
            return None
        try:
            with self._ledger.sender(org) as sender:
                flight: list[tuple[Record, Sent | None]] = []
                for row in rows:
                    if self.stopping:
                        break
                    call = workflow_for(row.kind).contract_call(facts_of(row))
                    if call is None:
                        flight.append((row, None))
                        continue
                    try:
                        flight.append((row, sender.submit(call)))
                        continue
                    except ContractReverted as exc:
                        revert = exc
                    if flight:  # estimated before the calls in flight were confirmed: asked again after
                        self._settle(sender, flight, done)
                        flight = []
                        try:
                            flight.append((row, sender.submit(call)))
                            continue
                        except ContractReverted as exc:
                            revert = exc
                    done.append(self._reverted(row, revert))
                self._settle(sender, flight, done)
        except LedgerError as exc:
            return exc
        return None

    def _settle(self, sender: Sender, flight: list[tuple[Record, Sent | None]], done: list[_Outcome]) -> None:
        """The receipts of the calls in flight, in the order sent (a LedgerError stops at the first
        unknown one: it and those after it stay pending)."""
        for row, sent in flight:
            if sent is None:  # the record makes no call after all
                done.append(_Outcome(row.seq, "confirmed", None, None))
                continue
            try:
                tx = sender.confirm(sent)
            except ContractReverted as exc:  # mined and reverted: the race the estimate could not see
                done.append(self._reverted(row, exc))
                continue
            done.append(_Outcome(row.seq, "confirmed", tx, None))

    def _reverted(self, row: Record, exc: ContractReverted) -> _Outcome:
        """A refused call: rejected, its chain_error the contract's custom error; confirmed instead when the
        chain already holds it (after a crash between receipt and commit the retry reverts)."""
        if workflow_for(row.kind).already_applied(facts_of(row), exc, self._chain):
            return _Outcome(row.seq, "confirmed", None, None)
        log.warning("%s %s refused by its contract: %s", row.kind, row.id, exc.details)
        return _Outcome(row.seq, "rejected", None, exc.error)


class _Outcome(NamedTuple):
    """A record's contract call, settled: the row's new chain columns (named as ``_SET_CHAIN`` binds them)."""

    key: int | None  # the row's seq (a bind name other than a column's)
    status: str
    tx: str | None
    error: str | None


_SET_CHAIN = (
    update(Record)
    .where(col(Record.seq) == bindparam("key"))
    .values(chain_status=bindparam("status"), chain_tx=bindparam("tx"), chain_error=bindparam("error"))
)
