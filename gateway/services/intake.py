"""The write path: validate, verify, check the domain state, persist record + payload in one transaction.

Order matters for the codes a client sees: the cheap and the identity checks first (envelope, token's org,
idempotent resubmission, role), then the payload (adapter, digest), then the SM2 signature against the keys
OrgRegistry holds, then the workflow state (``gateway.services.workflow``). The state checks run twice: before
the transaction (to give the adapter the prior record's facts) and inside it as conditional updates, which
decide races.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, insert, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from adapters import AdaptContext, AdaptedPayload, adapt, read_policy
from adapters.errors import KindUnknown
from gateway.core.db import Database
from gateway.core.kek import PSEUDONYM_KEY_LABEL, KekRing
from gateway.errors import (
    AccessCodeInvalid,
    AccessCodeRequired,
    Backpressure,
    ChainUnavailable,
    IdempotencyConflict,
    OrgMismatch,
    Replayed,
    RoleForbidden,
    RxExists,
    ShareRequestExists,
    TimestampInvalid,
    TxAccountMissing,
)
from gateway.models import DataKey, Record, RecordPayload
from gateway.services.group import GroupRunner
from gateway.services.keys import OrgDirectory
from gateway.services.ledger import WORKFLOW_KINDS, Ledger
from gateway.services.visibility import code_opens
from gateway.services.workflow import WorkflowState, is_member_record, member_key
from gateway.services.workflow import now as clock
from provenance.access_code import AccessCode
from provenance.chain.contracts import ContractReverted
from provenance.crypto import SM2PublicKey, generate_sm4_key, sm3, sm4_gcm_encrypt
from provenance.errors import LedgerError, PayloadDigestMismatch, PayloadInvalid, ProvenanceError
from provenance.kinds import ROLES_BY_KIND  # who may submit which kind: the table verifiers read too
from provenance.orgs import OrgKey
from provenance.records import Envelope, b64decode
from provenance.timestamps import parse_timestamp

log = logging.getLogger("gateway.intake")


# Kinds whose acceptance changes state that later records of the same subject are checked against (and,
# of party records, a member's place: _changes_state).
STATEFUL_KINDS = frozenset(
    {"rx.issue", "rx.dispense", "rx.revoke", "share.request", "share.consent", "share.revoke_consent"}
)


@dataclass(frozen=True, slots=True)
class Submission:
    """One record as submitted: envelope (JSON object), base64 DER signature, payload, and the access code
    the submitter presents (a dispense's: the patient's slip), which is never part of what is signed."""

    record: Any
    signature: Any
    payload: Any
    access_code: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    id: str
    created: bool  # False: the same record was already accepted (idempotent resubmission)
    accepted_at: float  # when it was first accepted (epoch seconds, as stored): its receipt's time


@dataclass(slots=True)
class _Prepared:
    envelope: Envelope
    record_id: str
    signature_b64: str
    adapted: AdaptedPayload
    key_index: int
    public_key_pem: str
    idempotency_key: str | None = None
    existing: float | None = None  # the first acceptance time of a record already accepted
    facts: dict[str, Any] = field(default_factory=dict)


_ROWS = "\0rows"  # in ``seen``: the rows of the accepted records, inserted together (executemany)


@dataclass(slots=True)
class _Rows:
    records: list[dict[str, Any]] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)

    def insert(self, s: Session) -> None:
        """Core INSERTs, one statement per table: the ORM unit of work costs more than the rest of intake.

        On the connection, not ``Session.execute``: the ORM's bulk-insert layer cost as much again, and
        this runs under the (SQLite) write lock.
        """
        conn = s.connection()
        for stmt, rows in zip(_INSERTS, (self.records, self.payloads, self.keys), strict=True):
            if rows:
                conn.execute(stmt, rows)
                rows.clear()


# Built once: a statement built per call is compiled-cache-keyed per call (a tenth of a small write's CPU).
_INSERTS = tuple(insert(m.__table__) for m in (Record, RecordPayload, DataKey))  # type: ignore[union-attr]


_ACCEPTED_AT = select(Record.accepted_at).where(col(Record.id) == bindparam("id"))
_SLICE = 25  # records per verification task of a bulk request
_Verified = tuple[OrgKey, SM2PublicKey] | None  # a signature check's outcome (None: _prepare says why)
_PREFETCHED = "\0prefetched"  # marker in a batch's ``seen`` map: ids and nonces were loaded up front
_MEMBERS = "\0members"  # in a bulk request's barriers: a party member's place changed


def _insert_rows(s: Session, seen: dict[str, Any]) -> None:
    rows = seen.get(_ROWS)
    if rows is not None:
        rows.insert(s)


def _envelope_or_none(sub: Submission) -> Envelope | None:
    try:
        return Envelope.from_dict(sub.record)
    except ProvenanceError:
        return None


class Intake:
    """Accepts records into the outbox (the ``record`` table) and tells the sequencer."""

    def __init__(
        self,
        *,
        db: Database,
        kek: KekRing,
        orgs: OrgDirectory,
        ledger: Ledger,
        max_clock_skew: float,
        backlog: Callable[[], int],
        backlog_limit: int,
        retry_after: int,
        on_accept: Callable[[int, bool], None],
    ) -> None:
        self._db = db
        self._kek = kek
        self._orgs = orgs
        self._ledger = ledger
        self._workflow = WorkflowState(ledger=ledger, orgs=orgs)
        # Personal identifiers in facts are keyed digests under a key kept where the KEK is (not the db).
        self._pseudonym_key = kek.derive(PSEUDONYM_KEY_LABEL)
        self._skew = max_clock_skew
        self._backlog = backlog
        self._backlog_limit = backlog_limit
        self._retry_after = retry_after
        self._on_accept = on_accept
        self._writer: GroupRunner[_Prepared, Accepted | ProvenanceError] = GroupRunner(self._write)
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
        with self._db.session() as s, self._chain_reads():
            prepared = self._prepare(s, token_org, sub, idempotency_key)
        if prepared.existing is not None:
            return Accepted(prepared.record_id, created=False, accepted_at=prepared.existing)
        # Concurrent single submissions share one transaction (group commit): one commit, one INSERT per
        # table and one hold of the write lock for the group instead of one each.
        result = self._writer.run(prepared)
        if isinstance(result, ProvenanceError):
            raise result
        return result

    def submit_many(self, token_org: str, subs: list[Submission]) -> list[Accepted | ProvenanceError]:
        """Accept many records, each on its own, decided in request order: one transaction, unless an item
        depends on workflow state an earlier item of the batch changes (then the items before it first)."""
        self.check_backlog(len(subs))
        results: list[Accepted | ProvenanceError | None] = [None] * len(subs)
        ready: list[tuple[int, _Prepared]] = []
        # SM2 verification dominates and OpenSSL runs it without the GIL: the pool verifies the batch in
        # order, in slices (one future per item cost as much as the adapter's work), while this thread runs
        # the adapters (pure Python) of the same items; _prepare takes each result when it gets there (and
        # redoes the check, in order, only where it failed).
        envelopes = [_envelope_or_none(sub) for sub in subs]  # parsed once (a bad one: _prepare says why)
        slices = [
            self._pool.submit(self._verify_slice, token_org, subs[i : i + _SLICE], envelopes[i : i + _SLICE])
            for i in range(0, len(subs), _SLICE)
        ]

        def verified(i: int) -> Callable[[], _Verified]:
            return lambda: slices[i // _SLICE].result()[i % _SLICE]

        barriers: set[str] = set()  # subjects whose workflow state an item waiting in ``ready`` changes

        def flush() -> None:
            for (i, _), result in zip(ready, self._write([p for _, p in ready]), strict=True):
                results[i] = result
                if isinstance(result, Accepted):
                    known[result.id] = result.accepted_at  # a repeat later in the batch is idempotent
            ready.clear()
            barriers.clear()

        with self._db.session() as s:
            known = self._known_ids(s, [env.digest for env in envelopes if env is not None])
            for i, sub in enumerate(subs):
                env = envelopes[i]
                if env is not None and (
                    env.subject in barriers or (env.kind == "party.record" and _MEMBERS in barriers)
                ):
                    # Items are decided in request order: one that follows a state change of its subject
                    # in this batch (issue then revoke, a member's successive stages) is checked against
                    # it, so what waits is written first. Env readings never wait. The read transaction ends
                    # first (its connection back to the pool, no cached state rows): the next sees the write.
                    s.rollback()
                    flush()
                try:
                    with self._chain_reads():
                        p = self._prepare(
                            s, token_org, sub, None, known=known, verified=verified(i), envelope=env
                        )
                except ProvenanceError as exc:
                    results[i] = exc
                    continue
                if p.existing is not None:
                    results[i] = Accepted(p.record_id, created=False, accepted_at=p.existing)
                else:
                    ready.append((i, p))
                    if _changes_state(p):
                        barriers.add(p.envelope.subject)
                    if _is_member_record(p):
                        barriers.add(_MEMBERS)  # a transfer moves a member to another subject
        flush()
        return [r for r in results if r is not None]

    def _write(self, ready: Sequence[_Prepared]) -> list[Accepted | ProvenanceError]:
        """Persist prepared records in one transaction (a bulk request's, or concurrent single submissions');
        each succeeds or fails on its own. On a unique-constraint race, one transaction per record."""
        if not ready:
            return []
        if len(ready) == 1:
            results = [self._write_one(ready[0])]
        else:
            try:
                with self._db.write() as s, s.no_autoflush:
                    self._lock_members(s, ready)
                    # Two queries for the whole batch instead of two per record (and no flush per record).
                    seen = self._prefetch(s, ready)
                    results = []
                    for p in ready:
                        try:
                            results.append(self._persist(s, p, seen))
                        except ProvenanceError as exc:
                            results.append(exc)
                    _insert_rows(s, seen)
            except IntegrityError:
                # Lost a race with another writer (PostgreSQL has no process-wide write lock): one by one.
                results = [self._write_one(p) for p in ready]
        created = [p for p, r in zip(ready, results, strict=True) if isinstance(r, Accepted) and r.created]
        if created:
            self._on_accept(len(created), any(p.envelope.kind in WORKFLOW_KINDS for p in created))
        return results

    def _write_one(self, p: _Prepared) -> Accepted | ProvenanceError:
        try:
            with self._db.write() as s:
                # Record id and (org, nonce) are not looked up again inside the transaction: _prepare just
                # did, and their unique constraints decide a race (then _after_conflict says which).
                self._lock_members(s, [p])
                seen: dict[str, Any] = {_PREFETCHED: True}
                result = self._persist(s, p, seen)
                _insert_rows(s, seen)
            return result
        except IntegrityError:
            try:
                return self._after_conflict(p)
            except ProvenanceError as exc:
                return exc
        except ProvenanceError as exc:
            return exc

    def _lock_members(self, s: Session, ready: Sequence[_Prepared]) -> None:
        """On PostgreSQL, which runs writers side by side (bulk requests, a group, other gateway processes):
        lock the members whose place these records change until the commit, in one order (no deadlock), so
        the check inside the transaction reads the last one committed. SQLite writers are serialised."""
        if self._db.is_sqlite:
            return
        keys = sorted({member_key(p.facts) for p in ready if _is_member_record(p)})
        conn = s.connection()
        for key in keys:
            conn.execute(_MEMBER_LOCK, {"k": _lock_id(key)})

    @staticmethod
    def _known_ids(s: Session, ids: list[str]) -> dict[str, float]:
        """Those of the record ids already accepted, with their acceptance time (one query per 500)."""
        known: dict[str, float] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            known.update(s.exec(select(Record.id, Record.accepted_at).where(col(Record.id).in_(chunk))).all())
        return known

    @staticmethod
    def _prefetch(s: Session, ready: Sequence[_Prepared]) -> dict[str, Any]:
        """The ``seen`` map of a batch, seeded with the ids and nonces the database already holds."""
        seen: dict[str, Any] = {_PREFETCHED: True}
        for start in range(0, len(ready), 500):
            chunk = ready[start : start + 500]
            ids = [p.record_id for p in chunk]
            for rid, at in s.exec(select(Record.id, Record.accepted_at).where(col(Record.id).in_(ids))):
                seen[rid] = at
            nonces_by_org: dict[str, list[str]] = {}
            for p in chunk:
                nonces_by_org.setdefault(p.envelope.org, []).append(p.envelope.nonce)
            for org, nonces in nonces_by_org.items():
                rows = s.exec(
                    select(Record.id, Record.nonce).where(Record.org == org, col(Record.nonce).in_(nonces))
                )
                for rid, nonce in rows:
                    seen[f"{org}\0{nonce}"] = rid
        return seen

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
        return [self._verify_only(token_org, sub, env) for sub, env in zip(subs, envelopes, strict=True)]

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
        known: dict[str, float] | None = None,
        verified: Callable[[], _Verified] | None = None,
        envelope: Envelope | None = None,
    ) -> _Prepared:
        if envelope is None:
            envelope = Envelope.from_dict(sub.record)
        signature = b64decode(sub.signature, what="signature")
        if envelope.org != token_org:
            raise OrgMismatch(
                f"the token belongs to {token_org!r}, the record to {envelope.org!r}",
                details={"token_org": token_org, "record_org": envelope.org},
            )
        record_id = envelope.digest
        if idem is not None:
            owner = s.exec(
                select(Record.id).where(Record.org == token_org, Record.idempotency_key == idem)
            ).first()
            if owner is not None and owner != record_id:
                raise IdempotencyConflict(
                    "this Idempotency-Key was used for another record", details={"record_id": owner}
                )
        exists = (
            known.get(record_id)
            if known is not None
            # On the Core connection: the ORM's statement layer cost more than the query itself.
            else s.connection().execute(_ACCEPTED_AT, {"id": record_id}).scalar()
        )
        if exists is not None:
            return _Prepared(
                envelope=envelope,
                record_id=record_id,
                signature_b64="",
                adapted=None,  # type: ignore[arg-type]  # not needed for an existing record
                key_index=-1,
                public_key_pem="",
                existing=exists,
            )
        roles = ROLES_BY_KIND.get(envelope.kind)
        if roles is None:
            raise KindUnknown(f"no record kind {envelope.kind!r}", details={"field": "kind"})
        org = self._orgs.require(envelope.org)
        if org.role not in {r.label for r in roles}:
            raise RoleForbidden(
                f"a {org.role} may not submit {envelope.kind}",
                details={"org": org.org_id, "role": org.role, "kind": envelope.kind},
            )
        now = clock()
        at = parse_timestamp(envelope.timestamp)
        if (at - now).total_seconds() > self._skew:
            raise TimestampInvalid(
                "the record is dated in the future", details={"timestamp": envelope.timestamp}
            )
        payload = _payload_input(sub.payload)
        skew = timedelta(seconds=self._skew)
        ctx = AdaptContext(
            now=now, subject=envelope.subject, max_clock_skew=skew, pseudonym_key=self._pseudonym_key
        )
        adapted = adapt(envelope.kind, payload, ctx)
        if adapted.digest != envelope.payload_digest:
            raise PayloadDigestMismatch(
                "the payload does not hash to the record's payload_digest",
                details={"expected": envelope.payload_digest, "actual": adapted.digest},
            )
        done = verified() if verified is not None else None
        key, pub = done if done is not None else self._orgs.verify(org, envelope, signature)
        # Before anything about the subject is looked at: what follows (its state, its content) answers
        # only a submitter that holds the subject's access code where the domain asks for it.
        self._check_code(s, envelope, sub.access_code)
        p = _Prepared(
            envelope=envelope,
            record_id=record_id,
            signature_b64=base64.b64encode(signature).decode("ascii"),  # canonical form, as logged
            adapted=adapted,
            key_index=key.index if key.index is not None else -1,
            public_key_pem=pub.to_pem().decode("ascii"),
            idempotency_key=idem,
            facts=dict(adapted.facts),
        )
        prior = self._workflow.precheck(s, p.envelope, p.adapted.facts, now)
        if prior is not None:
            # Rules that need the earlier record (quantity, validity, consent scope) run with its facts.
            p.adapted = adapt(envelope.kind, payload, dataclasses.replace(ctx, prior=prior))
            p.facts = dict(p.adapted.facts)
        if envelope.kind in WORKFLOW_KINDS and not self._ledger.holds_account(org.org_id):
            # Last, once the record is otherwise acceptable: accepted, its contract call could never be sent
            # (and the chain caller sends in acceptance order).
            raise TxAccountMissing(
                f"this gateway holds no transaction account for {org.org_id!r}, so its {envelope.kind} "
                "records cannot go on chain; the operator adds the account to the gateway's manifest",
                details={"org": org.org_id, "kind": envelope.kind},
            )
        return p

    @staticmethod
    def _check_code(s: Session, envelope: Envelope, code: str | None) -> None:
        """ACCESS_CODE_REQUIRED / ACCESS_CODE_INVALID (403) for a kind its domain lets only the holder of the
        subject's access code submit, alike whether the subject exists or not (ACCESS_CODE_MALFORMED, 400,
        for text that is no code)."""
        policy = read_policy(envelope.kind)
        if envelope.kind not in policy.code_writes:
            return
        if code is None:
            raise AccessCodeRequired(
                f"a {envelope.kind} presents the access code printed on the prescription "
                "(Provenance-Access-Code header; in a bulk item, its access_code member)",
                details={"subject": envelope.subject},
            )
        if not code_opens(s, envelope.subject, policy, AccessCode.parse(code).value):
            raise AccessCodeInvalid(
                f"no {envelope.subject!r} opens with this access code", details={"subject": envelope.subject}
            )

    # --- persistence -----------------------------------------------------------------------------------

    def _persist(self, s: Session, p: _Prepared, seen: dict[str, Any]) -> Accepted:
        """Checks that need the transaction, then the rows. Adds nothing unless every check passed."""
        env = p.envelope
        prefetched = _PREFETCHED in seen
        first = seen.get(p.record_id)  # accepted earlier, or earlier in this batch: its acceptance time
        if first is None and not prefetched:
            first = s.exec(select(Record.accepted_at).where(Record.id == p.record_id)).first()
        if first is not None:
            return Accepted(p.record_id, created=False, accepted_at=first)
        nonce_key = f"{env.org}\0{env.nonce}"
        other = seen.get(nonce_key)
        if other is None and not prefetched:
            other = s.exec(select(Record.id).where(Record.org == env.org, Record.nonce == env.nonce)).first()
        if other is not None:
            raise Replayed(
                "this organisation already used the nonce for another record",
                details={"nonce": env.nonce, "record_id": other},
            )
        with self._chain_reads():
            self._workflow.apply(s, p.envelope, p.facts, p.record_id, seen)
        chain_status = "pending" if env.kind in WORKFLOW_KINDS else "none"
        rows: _Rows = seen.setdefault(_ROWS, _Rows())
        accepted_at = time.time()
        rows.records.append(
            {
                "id": p.record_id,
                "kind": env.kind,
                "subject": env.subject,
                "org": env.org,
                "timestamp": env.timestamp,
                "nonce": env.nonce,
                "prev": env.prev,
                "payload_digest": env.payload_digest,
                "signature": p.signature_b64,
                "accepted_at": accepted_at,
                "signer_key_index": p.key_index,
                "signer_public_key": p.public_key_pem,
                "facts": p.facts,
                "chain_status": chain_status,
                "idempotency_key": p.idempotency_key,
                "leaf_index": None,
                "chain_tx": None,
                "chain_error": None,
            }
        )
        key = generate_sm4_key()
        # The record id as AAD binds the ciphertext to its record: swapping payload rows fails to decrypt.
        ciphertext = sm4_gcm_encrypt(key, p.adapted.canonical, p.record_id.encode("ascii"))
        rows.payloads.append({"record_id": p.record_id, "ciphertext": ciphertext})
        rows.keys.append(self._kek.key_row(p.record_id, key))  # stored only wrapped with the KEK
        seen[p.record_id] = accepted_at
        seen[nonce_key] = p.record_id
        return Accepted(p.record_id, created=True, accepted_at=accepted_at)

    def _after_conflict(self, p: _Prepared) -> Accepted:
        """Explain a unique-constraint failure: same record (idempotent), same nonce, or a state race."""
        with self._db.session() as s:
            first = s.exec(select(Record.accepted_at).where(Record.id == p.record_id)).first()
            if first is not None:
                return Accepted(p.record_id, created=False, accepted_at=first)
            other = s.exec(
                select(Record.id).where(Record.org == p.envelope.org, Record.nonce == p.envelope.nonce)
            ).first()
            if other is not None:
                raise Replayed(
                    "this organisation already used the nonce for another record",
                    details={"nonce": p.envelope.nonce, "record_id": other},
                )
            if p.envelope.kind == "rx.issue":
                raise RxExists(f"prescription {p.facts['rx_id']!r} was already issued")
            if p.envelope.kind == "share.request":
                raise ShareRequestExists(f"request {p.facts['request_id']!r} exists")
        raise ProvenanceError("the record conflicts with a concurrent submission; retry")


def _is_member_record(p: _Prepared) -> bool:
    return is_member_record(p.envelope.kind, p.facts)


def _changes_state(p: _Prepared) -> bool:
    return p.envelope.kind in STATEFUL_KINDS or _is_member_record(p)


_MEMBER_LOCK = text("SELECT pg_advisory_xact_lock(:k)")


def _lock_id(key: str) -> int:
    """A PostgreSQL advisory lock id (signed 64 bits) for ``key``."""
    return int.from_bytes(sm3(key.encode("utf-8"))[:8], "big", signed=True)


def _payload_input(payload: Any) -> bytes | Mapping[str, Any]:
    if isinstance(payload, str):
        return payload.encode("utf-8")  # an HJ 212 packet (or JSON text)
    if isinstance(payload, Mapping):
        return payload
    raise PayloadInvalid("payload must be a JSON object or a string", details={"field": "payload"})
