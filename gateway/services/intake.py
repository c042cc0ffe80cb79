"""The write path: validate, verify, run the domain's rules, persist record + payload in one transaction.

Order matters for the codes a client sees: the cheap and the identity checks first (envelope, token's org,
idempotent resubmission, role), then the payload (adapter, digest), then the SM2 signature against the keys
OrgRegistry holds (:meth:`Intake._prepare`), then the domain's rules (:meth:`Intake._decide`). The rules run
twice, as one state machine (``gateway.services.rules``): before the transaction (to refuse early and to
give the adapter the prior record's facts) and inside it on the locked states, which decides races.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from adapters import AdaptContext, adapt
from adapters.errors import KindUnknown
from adapters.registry import roles as roles_of  # who may submit which kind: trust files carry it too
from adapters.registry import workflow_for
from gateway.core.db import Database
from gateway.core.kek import PSEUDONYM_KEY_LABEL, KekRing
from gateway.errors import (
    Backpressure,
    ChainUnavailable,
    IdempotencyConflict,
    OrgMismatch,
    RoleForbidden,
    StateConflict,
    StorageWriteFailed,
    TimestampInvalid,
    TxAccountMissing,
)
from gateway.models import Record, signed_by
from gateway.services import outbox
from gateway.services.group import GroupRunner
from gateway.services.keys import OrgDirectory
from gateway.services.ledger import Ledger
from gateway.services.outbox import Accepted, Batch
from gateway.services.rules import Rules, now, record_facts
from gateway.services.states import CommittedStates, Key, TxStates
from gateway.services.submission import (
    Prepared,
    Submission,
    check_digest,
    check_resent_payload,
    envelope_or_none,
    payload_input,
    reads_subject,
)
from gateway.services.visibility import check_code
from provenance.chain.contracts import ContractReverted
from provenance.crypto import SM2PublicKey
from provenance.errors import LedgerError, ProvenanceError
from provenance.orgs import OrgKey
from provenance.records import Envelope, b64decode
from provenance.timestamps import parse_timestamp

log = logging.getLogger("gateway.intake")

__all__ = ["Accepted", "Intake", "Submission"]


_SLICE = 25  # records per verification task of a bulk request
_Verified = tuple[OrgKey, SM2PublicKey] | None  # a signature check's outcome (None: _prepare says why)


class Intake:
    """Accepts records into the outbox (the ``record`` table) and tells the sequencer."""

    def __init__(
        self,
        *,
        db: Database,
        kek: KekRing,
        network_key: bytes,
        orgs: OrgDirectory,
        ledger: Ledger,
        rules: Rules,
        max_clock_skew: float,
        time_zone: tzinfo,
        backlog: Callable[[], int],
        backlog_limit: int,
        retry_after: int,
        on_accept: Callable[[int, bool], None],
    ) -> None:
        self._db = db
        self._kek = kek
        self._orgs = orgs
        self._ledger = ledger
        self._rules = rules
        # Personal identifiers in facts are keyed digests under a key kept where the KEK is (not the db).
        self._pseudonym_key = kek.derive(PSEUDONYM_KEY_LABEL)
        self._network_key = network_key  # keyed digests on chain (provenance.network_key)
        self._skew = max_clock_skew
        self._time_zone = time_zone
        self._backlog = backlog
        self._backlog_limit = backlog_limit
        self._retry_after = retry_after
        self._on_accept = on_accept
        self._writer: GroupRunner[Prepared, Accepted | ProvenanceError] = GroupRunner(self._write)
        self._pool = ThreadPoolExecutor(
            max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="sm2-verify"
        )

    # --- public ----------------------------------------------------------------------------------------

    def check_backlog(self, incoming: int = 1) -> None:
        """503 + Retry-After when accepting ``incoming`` more would exceed the backlog limit."""
        waiting = self._backlog()
        if waiting + incoming > self._backlog_limit:
            raise Backpressure(
                f"{waiting} records wait for the log or the chain; retry later",
                retry_after=self._retry_after,
                details={"backlog": waiting, "limit": self._backlog_limit},
            )

    def submit(self, token_org: str, sub: Submission, *, idempotency_key: str | None = None) -> Accepted:
        """Accept one record (or return the id it already has)."""
        self.check_backlog()
        with self._db.session() as s:
            prepared = self._prepare(s, token_org, sub, idempotency_key)
            if prepared.existing is not None:
                return Accepted(prepared.record_id, created=False, accepted_at=prepared.existing)
            try:
                self._decide(s, prepared)
            except ProvenanceError:
                if (twin := self._accepted_meanwhile(prepared)) is not None:
                    return twin
                raise
        # Concurrent single submissions share one transaction (group commit): one commit, one INSERT per
        # table and one hold of the write lock for the group instead of one each.
        result = self._writer.run(prepared)
        if isinstance(result, ProvenanceError):
            raise result
        return result

    def submit_many(self, token_org: str, subs: list[Submission]) -> list[Accepted | ProvenanceError]:
        """Accept many records, each on its own, decided in request order: one transaction, unless an item
        depends on a workflow state an earlier item of the batch changes (then the items before it first)."""
        self.check_backlog(len(subs))
        results: list[Accepted | ProvenanceError | None] = [None] * len(subs)
        ready: list[tuple[int, Prepared]] = []
        # SM2 verification dominates and OpenSSL runs it without the GIL: the pool verifies the batch in
        # order, in slices (one future per item cost as much as the adapter's work), while this thread runs
        # the adapters (pure Python) of the same items; _prepare takes each result when it gets there (and
        # redoes the check, in order, only where it failed).
        envelopes = [envelope_or_none(sub) for sub in subs]  # parsed once (a bad one: _prepare says why)
        slices = [
            self._pool.submit(self._verify_slice, token_org, subs[i : i + _SLICE], envelopes[i : i + _SLICE])
            for i in range(0, len(subs), _SLICE)
        ]

        def verified(i: int) -> Callable[[], _Verified]:
            return lambda: slices[i // _SLICE].result()[i % _SLICE]

        barriers: set[Key] = set()  # states an item waiting in ``ready`` changes
        waiting: set[str] = set()  # the record ids waiting in ``ready``
        # The items prepared and not yet decided: their states are read in one query (a bulk request's
        # thousand records, not a query each) before they are decided, in order, one by one.
        prepared: list[tuple[int, Prepared]] = []
        committed = CommittedStates()

        def flush() -> None:
            for (i, p), result in zip(ready, self._write([p for _, p in ready]), strict=True):
                results[i] = result
                if isinstance(result, Accepted):
                    known[result.id] = (result.accepted_at, p.signature_b64)  # a repeat later: idempotent
            ready.clear()
            waiting.clear()
            barriers.clear()
            committed.clear()  # written since they were read

        def decide(s: Session) -> None:
            committed.prefetch(s, (k for _, p in prepared for k in self._touches_or_none(p)))
            for i, p in prepared:
                try:
                    if p.record_id in waiting or (barriers and barriers.intersection(self._touches(p))):
                        # Items are decided in request order: one that follows a state change in this batch
                        # (issue then revoke, a member's successive stages) is checked against it, so what
                        # waits is written first; so is an earlier item of the same record, which the
                        # repeat then answers as a resubmission does. The read transaction ends first (its
                        # connection back to the pool, no cached state rows): the next sees the write.
                        s.rollback()
                        flush()
                    if (first := known.get(p.record_id)) is not None:
                        # written by a flush since it was prepared (a repeat of an earlier item)
                        results[i] = Accepted(p.record_id, created=False, accepted_at=first[0])
                        continue
                    self._decide(s, p, committed)
                except ProvenanceError as exc:
                    results[i] = exc
                    continue
                ready.append((i, p))
                waiting.add(p.record_id)
                if p.decision is not None:
                    barriers.update(p.decision.changes())
            prepared.clear()

        with self._db.session() as s:
            known = outbox.known_records(s, [e.digest for e in envelopes if e is not None])
            for i, sub in enumerate(subs):
                if reads_subject(envelopes[i]):
                    decide(s)  # its access code is checked on the states as the items before it leave them
                try:
                    p = self._prepare(
                        s, token_org, sub, None, known=known, verified=verified(i), env=envelopes[i]
                    )
                except ProvenanceError as exc:
                    results[i] = exc
                    continue
                if p.existing is not None:
                    results[i] = Accepted(p.record_id, created=False, accepted_at=p.existing)
                else:
                    prepared.append((i, p))
            decide(s)
        flush()
        return [r for r in results if r is not None]

    def _touches(self, p: Prepared) -> list[Key]:
        """The states a prepared record's rules read or write (before they run)."""
        workflow = workflow_for(p.envelope.kind)
        return [(workflow.domain.name, k) for k in workflow.keys(p.envelope.kind, p.facts)]

    def _touches_or_none(self, p: Prepared) -> list[Key]:
        """:meth:`_touches`, or none where the domain refuses the facts (its rules then say why, per item)."""
        try:
            return self._touches(p)
        except ProvenanceError:
            return []

    # --- the write transaction -------------------------------------------------------------------------

    def _write(self, ready: Sequence[Prepared]) -> list[Accepted | ProvenanceError]:
        """Persist prepared records in one transaction (a bulk request's, or concurrent single submissions');
        each succeeds or fails on its own. On a unique-constraint race or a state changed by another
        writer, one transaction per record."""
        if not ready:
            return []
        if len(ready) == 1:
            results = [self._write_one(ready[0])]
        else:
            try:
                with self._db.write() as s, s.no_autoflush:
                    tx = self._states(s, ready)
                    # Two queries for the whole batch instead of two per record (and no flush per record).
                    batch = outbox.prefetch(s, [p.envelope for p in ready])
                    results = []
                    for p in ready:
                        try:
                            results.append(self._persist(s, tx, p, batch))
                        except StateConflict:
                            raise  # a state half written: undo the whole transaction
                        except ProvenanceError as exc:
                            results.append(exc)
                    tx.flush()
                    batch.insert(s)
            except (IntegrityError, StateConflict):
                # Lost a race with another writer (PostgreSQL has no process-wide write lock): one by one.
                results = [self._write_one(p) for p in ready]
        created = [p for p, r in zip(ready, results, strict=True) if isinstance(r, Accepted) and r.created]
        if created:
            self._on_accept(len(created), any(p.calls for p in created))
        return results

    def _write_one(self, p: Prepared) -> Accepted | ProvenanceError:
        try:
            with self._db.write() as s:
                # Record id and (org, nonce) are not looked up again inside the transaction: _prepare just
                # did, and their unique constraints decide a race (then _after_conflict says which).
                batch = Batch(prefetched=True)
                tx = self._states(s, [p])
                result = self._persist(s, tx, p, batch)
                tx.flush()
                batch.insert(s)
            return result
        except (IntegrityError, StateConflict):
            try:
                return self._after_conflict(p)
            except ProvenanceError as exc:
                return exc
        except StorageWriteFailed:
            raise  # nothing stored: the whole request fails (507/503), as a transaction of many records does
        except ProvenanceError as exc:
            return self._accepted_meanwhile(p) or exc

    def _accepted_meanwhile(self, p: Prepared) -> Accepted | None:
        """The same record, accepted since it was prepared (a twin in flight): its rule now sees its own
        states (a reading recorded once) and refuses, but the answer is the idempotent one."""
        with self._db.session() as s:
            first = outbox.accepted_at(s, p.record_id)
        return None if first is None else Accepted(p.record_id, created=False, accepted_at=first)

    def _states(self, s: Session, ready: Sequence[Prepared]) -> TxStates:
        """The transaction's states, every key its records touch locked (PostgreSQL)."""
        tx = TxStates(s, postgres=not self._db.is_sqlite)
        keys = [k for p in ready if p.decision is not None for k in p.decision.locks]
        tx.lock(keys)
        tx.preload(keys)  # one query for the transaction's records, not one each
        return tx

    def _persist(self, s: Session, tx: TxStates, p: Prepared, batch: Batch) -> Accepted:
        """Checks that need the transaction, then the rows. Adds nothing unless every check passed."""
        first = outbox.check_new(s, p.envelope, p.record_id, batch)
        if first is not None:
            return first
        outbox.check_prev(s, p.envelope, batch)
        assert p.decision is not None  # _decide ran
        with self._chain_reads():
            self._rules.apply(tx, p.decision)
        return outbox.add(batch, p.row(), self._kek)

    def _after_conflict(self, p: Prepared) -> Accepted:
        """Explain a conflict: the same record (idempotent), the same nonce, or the domain's rule as the
        states stand now (e.g. a prescription issued meanwhile); else a conflict to retry."""
        with self._db.session() as s:
            first = outbox.check_new(s, p.envelope, p.record_id, Batch())
            if first is not None:
                return first
            if p.decision is not None:
                with self._chain_reads():
                    self._rules.decide(s, p.decision.workflow, p.decision.record, now())
        raise StateConflict("the record conflicts with a concurrent submission; retry")

    @contextlib.contextmanager
    def _chain_reads(self) -> Iterator[None]:
        """Chain unreachable during a check → 503 CHAIN_UNAVAILABLE + Retry-After (never 502 on writes)."""
        try:
            yield
        except ContractReverted:
            raise
        except LedgerError as exc:
            raise ChainUnavailable(
                "the chain is unreachable for a check this record needs; retry later",
                retry_after=self._retry_after,
                details={"reason": exc.message},
            ) from exc

    # --- validation ------------------------------------------------------------------------------------

    def _verify_slice(
        self, token_org: str, subs: Sequence[Submission], envelopes: Sequence[Envelope | None]
    ) -> list[_Verified]:
        return [self._verify_only(token_org, sub, e) for sub, e in zip(subs, envelopes, strict=True)]

    def _verify_only(self, token_org: str, sub: Submission, envelope: Envelope | None) -> _Verified:
        """The signature check alone (None on any failure: _prepare reports it with the right code)."""
        try:
            if envelope is None or envelope.org != token_org:
                return None
            org = self._orgs.get(envelope.org)
            if org is None:
                return None
            return self._orgs.verify(org, envelope, b64decode(sub.signature, what="signature"))
        except ProvenanceError:
            return None

    def _prepare(
        self,
        s: Session,
        token_org: str,
        sub: Submission,
        idem: str | None,
        *,
        known: dict[str, outbox.Known] | None = None,
        verified: Callable[[], _Verified] | None = None,
        env: Envelope | None = None,
    ) -> Prepared:
        """Everything but the domain's state: envelope, organisation, role, payload, signature."""
        payload = payload_input(sub.payload)  # a JSON object or text (the API's body model says so too)
        envelope = env if env is not None else Envelope.from_dict(sub.record)
        signature = b64decode(sub.signature, what="signature")
        if envelope.org != token_org:
            raise OrgMismatch(
                f"the token belongs to {token_org!r}, the record to {envelope.org!r}",
                details={"token_org": token_org, "record_org": envelope.org},
            )
        record_id = envelope.digest
        if idem is not None:
            owner = idempotency_owner(s, token_org, idem)
            if owner is not None and owner != record_id:
                raise IdempotencyConflict(
                    "this Idempotency-Key was used for another record", details={"record_id": owner}
                )
        exists = known.get(record_id) if known is not None else outbox.accepted(s, record_id)
        if exists is not None:
            self._resent(envelope, payload, signature, exists[1], verified)
            return Prepared(envelope=envelope, record_id=record_id, existing=exists[0])
        roles = roles_of(envelope.kind)
        if roles is None:
            raise KindUnknown(f"no record kind {envelope.kind!r}", details={"field": "kind"})
        org = self._orgs.require(envelope.org)
        if org.role not in roles:
            raise RoleForbidden(
                f"a {org.role} may not submit {envelope.kind}",
                details={"org": org.org_id, "role": org.role, "kind": envelope.kind},
            )
        at = now()
        if (parse_timestamp(envelope.timestamp) - at).total_seconds() > self._skew:
            raise TimestampInvalid(
                "the record is dated in the future", details={"timestamp": envelope.timestamp}
            )
        ctx = self._context(envelope, at)
        adapted = adapt(envelope.kind, payload, ctx)
        check_digest(envelope, adapted.digest)
        done = verified() if verified is not None else None
        key, pub = done if done is not None else self._orgs.verify(org, envelope, signature)
        # Before anything about the subject is looked at: what follows (its state, its content) answers
        # only a submitter that holds the subject's access code where the domain asks for it.
        check_code(s, envelope, workflow_for(envelope.kind).read_policy, sub.access_code)
        return Prepared(
            envelope=envelope,
            record_id=record_id,
            idempotency_key=idem,
            signature_b64=base64.b64encode(signature).decode("ascii"),  # canonical form, as logged
            key_index=key.index if key.index is not None else -1,
            public_key_pem=pub.to_pem().decode("ascii"),
            payload=payload,
            context=ctx,
            canonical=adapted.canonical,
            facts=dict(adapted.facts),
            detail=adapted.detail,
        )

    def _context(self, envelope: Envelope, at: datetime | None) -> AdaptContext:
        return AdaptContext(
            now=at,
            subject=envelope.subject,
            max_clock_skew=timedelta(seconds=self._skew),
            pseudonym_key=self._pseudonym_key,
            network_key=self._network_key,
            time_zone=self._time_zone,
        )

    def _resent(
        self,
        envelope: Envelope,
        payload: bytes | Mapping[str, Any],
        signature: bytes,
        logged: str,
        verified: Callable[[], _Verified] | None,
    ) -> None:
        """A record already accepted, sent again, is answered as accepted only with its own bytes: the
        payload it signs and a signature that verifies (the logged bytes need no verification; a bulk
        request's pool has verified the others already). Else the error a new record would get (the
        twelfth attack: "AAAA" or junk was answered existing:true)."""
        check_resent_payload(envelope, payload, self._context(envelope, None))
        if signature == b64decode(logged, what="signature"):
            return
        if verified is not None and verified() is not None:
            return
        self._orgs.verify(self._orgs.require(envelope.org), envelope, signature)

    def _decide(self, s: Session, p: Prepared, committed: CommittedStates | None = None) -> None:
        """The domain's rules on the committed states (``committed``: read already, for many records); the
        adapter again with the prior record's facts."""
        rec = p.envelope
        workflow = workflow_for(rec.kind)
        assert p.context is not None and p.context.now is not None
        with self._chain_reads():
            step, decision = self._rules.decide(
                s, workflow, record_facts(rec, p.facts, p.detail), p.context.now, committed
            )
        if step.prior is not None:
            # Rules that need the earlier record (quantity, validity, consent scope) run with its facts.
            adapted = adapt(rec.kind, p.payload, dataclasses.replace(p.context, prior=step.prior))
            p.canonical, p.facts, p.detail = adapted.canonical, dict(adapted.facts), adapted.detail
        Rules.with_facts(decision, p.facts)
        p.decision = decision
        if p.calls and not self._ledger.holds_account(rec.org):
            # Last, once the record is otherwise acceptable: accepted, its contract call could never be sent
            # (and the chain caller sends in acceptance order).
            raise TxAccountMissing(
                f"this gateway holds no transaction account for {rec.org!r}, so its {rec.kind} "
                "records cannot go on chain; the operator adds the account to the gateway's manifest",
                details={"org": rec.org, "kind": rec.kind},
            )


def idempotency_owner(s: Session, org: str, key: str) -> str | None:
    """The record ``org`` sent with Idempotency-Key ``key``, if any (through the key's index: signed_by)."""
    return s.exec(select(Record.id).where(signed_by(org), Record.idempotency_key == key)).first()
