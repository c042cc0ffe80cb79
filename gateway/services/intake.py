"""The write path: validate, verify, check the domain state, persist record + payload in one transaction.

Order matters for the codes a client sees: the cheap and the identity checks first (envelope, token's org,
idempotent resubmission, role), then the payload (adapter, digest), then the SM2 signature against the keys
OrgRegistry holds, then the workflow state. The state checks run twice: before the transaction (to give the
adapter the prior record's facts) and inside it as conditional updates, which decide races.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from adapters import AdaptContext, AdaptedPayload, adapt
from adapters.errors import KindUnknown
from adapters.party import check_recorded_stage
from gateway.core.db import Database
from gateway.core.kek import KeyEncryptionKey
from gateway.errors import (
    Backpressure,
    ChainUnavailable,
    ConsentExpired,
    ConsentMissing,
    ConsentRevoked,
    DatasetUnknown,
    IdempotencyConflict,
    NotDatasetOwner,
    OrgMismatch,
    Replayed,
    RoleForbidden,
    RxAlreadyDispensed,
    RxExists,
    RxExpired,
    RxNotIssuer,
    RxRevoked,
    RxUnknown,
    ShareNotPending,
    ShareRequestExists,
    ShareRequestUnknown,
    TimestampInvalid,
    TxAccountMissing,
)
from gateway.models import DataKey, Record, RecordPayload, RxState, ShareState
from gateway.services.group import GroupRunner
from gateway.services.keys import OrgDirectory
from gateway.services.ledger import WORKFLOW_KINDS, ChainKey, Ledger
from provenance.contracts import ContractReverted
from provenance.crypto import SM2PublicKey, generate_sm4_key, sm3, sm4_gcm_encrypt
from provenance.errors import LedgerError, PayloadDigestMismatch, PayloadInvalid, ProvenanceError
from provenance.kinds import ROLES_BY_KIND  # who may submit which kind: the table verifiers read too
from provenance.records import Envelope, b64decode, parse_timestamp

log = logging.getLogger("gateway.intake")


# Kinds whose acceptance changes state that later records of the same subject are checked against (and,
# of party records, membership stages: _changes_state).
STATEFUL_KINDS = frozenset(
    {"rx.issue", "rx.dispense", "rx.revoke", "share.request", "share.consent", "share.revoke_consent"}
)


@dataclass(frozen=True, slots=True)
class Submission:
    """One record as submitted: envelope (JSON object), base64 DER signature, payload."""

    record: Any
    signature: Any
    payload: Any


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
_Verified = tuple[ChainKey, SM2PublicKey] | None  # a signature check's outcome (None: _prepare says why)
_PREFETCHED = "\0prefetched"  # marker in a batch's ``seen`` map: ids and nonces were loaded up front


def _insert_rows(s: Session, seen: dict[str, Any]) -> None:
    rows = seen.get(_ROWS)
    if rows is not None:
        rows.insert(s)


def _envelope_or_none(sub: Submission) -> Envelope | None:
    try:
        return Envelope.from_dict(sub.record)
    except ProvenanceError:
        return None


def _now() -> datetime:
    return datetime.now(UTC)


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Intake:
    """Accepts records into the outbox (the ``record`` table) and tells the sequencer."""

    def __init__(
        self,
        *,
        db: Database,
        kek: KeyEncryptionKey,
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
                if env is not None and env.subject in barriers:
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
        lock the members whose stage these records change until the commit, in one order (no deadlock), so
        the stage check inside the transaction reads the last one committed. SQLite writers are serialised."""
        if self._db.is_sqlite:
            return
        keys = sorted({_member_key(p.envelope.subject, p.facts) for p in ready if _is_membership(p)})
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
        if org.role not in roles:
            raise RoleForbidden(
                f"a {org.role.name.lower()} may not submit {envelope.kind}",
                details={"org": org.org, "role": org.role.name.lower(), "kind": envelope.kind},
            )
        now = _now()
        at = parse_timestamp(envelope.timestamp)
        if (at - now).total_seconds() > self._skew:
            raise TimestampInvalid(
                "the record is dated in the future", details={"timestamp": envelope.timestamp}
            )
        payload = _payload_input(sub.payload)
        ctx = AdaptContext(now=now, subject=envelope.subject)
        adapted = adapt(envelope.kind, payload, ctx)
        if adapted.digest != envelope.payload_digest:
            raise PayloadDigestMismatch(
                "the payload does not hash to the record's payload_digest",
                details={"expected": envelope.payload_digest, "actual": adapted.digest},
            )
        done = verified() if verified is not None else None
        key, pub = done if done is not None else self._orgs.verify(org, envelope, signature)
        p = _Prepared(
            envelope=envelope,
            record_id=record_id,
            signature_b64=base64.b64encode(signature).decode("ascii"),  # canonical form, as logged
            adapted=adapted,
            key_index=key.index,
            public_key_pem=pub.to_pem().decode("ascii"),
            idempotency_key=idem,
            facts=dict(adapted.facts),
        )
        prior = self._precheck(s, p, now)
        if prior is not None:
            # Rules that need the earlier record (quantity, validity, consent scope) run with its facts.
            p.adapted = adapt(
                envelope.kind, payload, AdaptContext(now=now, subject=envelope.subject, prior=prior)
            )
            p.facts = dict(p.adapted.facts)
        if envelope.kind in WORKFLOW_KINDS and not self._ledger.holds_account(org.org):
            # Last, once the record is otherwise acceptable: accepted, its contract call could never be sent
            # (and the chain caller sends in acceptance order).
            raise TxAccountMissing(
                f"this gateway holds no transaction account for {org.org!r}, so its {envelope.kind} "
                "records cannot go on chain; the operator adds the account to the gateway's manifest",
                details={"org": org.org, "kind": envelope.kind},
            )
        return p

    def _precheck(self, s: Session, p: _Prepared, now: datetime) -> Mapping[str, Any] | None:
        """Workflow state checks before the transaction; returns the prior facts the adapter needs."""
        kind, org, facts = p.envelope.kind, p.envelope.org, p.adapted.facts
        if kind == "rx.issue":
            rx_id = facts["rx_id"]
            if s.get(RxState, rx_id) is not None or self._ledger.rx_status(rx_id) is not None:
                raise RxExists(f"prescription {rx_id!r} was already issued", details={"rx_id": rx_id})
            return None
        if kind in ("rx.dispense", "rx.revoke"):
            state = self._rx_state(s, facts["rx_id"])
            _check_rx_open(state, facts["rx_id"])
            if kind == "rx.revoke":
                if state.issuer != org:
                    raise RxNotIssuer(
                        "only the issuing hospital may revoke a prescription",
                        details={"rx_id": state.rx_id, "issuer": state.issuer},
                    )
                return None
            if state.expires_at is not None and now >= _instant(state.expires_at):
                raise RxExpired(
                    f"prescription {state.rx_id!r} expired at {state.expires_at}",
                    details={"rx_id": state.rx_id, "expires_at": state.expires_at},
                )
            return state.facts or None
        if kind == "share.request":
            dataset = facts["dataset"]
            if facts.get("requester") != org:
                raise OrgMismatch(
                    "a request's requester must be the submitting organisation",
                    details={"requester": facts.get("requester"), "org": org},
                )
            if self._ledger.dataset_owner(dataset) is None:
                raise DatasetUnknown(f"dataset {dataset!r} is not registered", details={"dataset": dataset})
            if s.get(ShareState, facts["request_id"]) is not None:
                raise ShareRequestExists(
                    f"request {facts['request_id']!r} exists", details={"request_id": facts["request_id"]}
                )
            return None
        if kind in ("share.consent", "share.revoke_consent"):
            share = s.get(ShareState, facts["request_id"])
            if share is None:
                raise ShareRequestUnknown(
                    f"no data-sharing request {facts['request_id']!r}",
                    details={"request_id": facts["request_id"]},
                )
            owner = self._ledger.dataset_owner(share.dataset)
            if owner != org:
                raise NotDatasetOwner(
                    f"{org!r} does not own dataset {share.dataset!r}", details={"dataset": share.dataset}
                )
            if kind == "share.consent":
                if share.status != "pending":
                    raise ShareNotPending(
                        f"request {share.request_id!r} is {share.status}", details={"status": share.status}
                    )
                return share.request_facts
            if share.status != "consented":
                raise ConsentMissing(
                    f"request {share.request_id!r} has no live consent to revoke",
                    details={"status": share.status},
                )
            return None
        if kind == "party.record" and facts.get("type") == "membership":
            return _last_membership(s, p.envelope.subject, str(facts.get("member_id")))
        if kind == "share.access":
            share = s.get(ShareState, facts["request_id"])
            _check_consent(share, facts["request_id"], org, now)
            assert share is not None and share.consent_facts is not None
            return share.consent_facts
        return None

    def _rx_state(self, s: Session, rx_id: str) -> RxState:
        state = s.get(RxState, rx_id)
        if state is not None:
            return state
        # Issued through another gateway of the same network: the chain knows it.
        chain = self._ledger.rx_status(rx_id)
        if chain is None:
            raise RxUnknown(f"no prescription {rx_id!r}", details={"rx_id": rx_id})
        expires = datetime.fromtimestamp(chain["expires_at"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return RxState(
            rx_id=rx_id,
            status=chain["status"],
            issuer=chain["issuer"],
            expires_at=expires,
            closed_by=chain["dispenser"],
            facts={"rx_id": rx_id, "expires_at": expires},
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
            self._apply_state(s, p, seen)
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

    def _apply_state(self, s: Session, p: _Prepared, seen: dict[str, Any]) -> None:
        kind, org, facts, rid = p.envelope.kind, p.envelope.org, p.facts, p.record_id
        if kind == "rx.issue":
            rx_id = facts["rx_id"]
            if f"rx\0{rx_id}" in seen or s.get(RxState, rx_id) is not None:
                raise RxExists(f"prescription {rx_id!r} was already issued", details={"rx_id": rx_id})
            s.add(
                RxState(
                    rx_id=rx_id,
                    status="issued",
                    issuer=org,
                    issue_record=rid,
                    expires_at=facts.get("expires_at"),
                    facts=facts,
                )
            )
            seen[f"rx\0{rx_id}"] = True
            s.flush()
        elif kind in ("rx.dispense", "rx.revoke"):
            rx_id = facts["rx_id"]
            if s.get(RxState, rx_id) is None:
                s.add(self._rx_state(s, rx_id))  # known on chain only: adopt it locally
                s.flush()
            target = "dispensed" if kind == "rx.dispense" else "revoked"
            stmt = (
                update(RxState)
                .where(col(RxState.rx_id) == rx_id, col(RxState.status) == "issued")
                .values(status=target, closed_by=org, close_record=rid)
            )
            if s.exec(stmt).rowcount != 1:
                state = s.get(RxState, rx_id, populate_existing=True)
                assert state is not None
                _check_rx_open(state, rx_id)
                raise RxAlreadyDispensed(f"prescription {rx_id!r} is closed", details={"rx_id": rx_id})
        elif kind == "share.request":
            request_id = facts["request_id"]
            if f"share\0{request_id}" in seen or s.get(ShareState, request_id) is not None:
                raise ShareRequestExists(f"request {request_id!r} exists", details={"request_id": request_id})
            s.add(
                ShareState(
                    request_id=request_id,
                    dataset=facts["dataset"],
                    requester=org,
                    status="pending",
                    request_record=rid,
                    request_facts=facts,
                )
            )
            seen[f"share\0{request_id}"] = True
            s.flush()
        elif kind == "share.consent":
            consent = {**facts, "digest": p.envelope.payload_digest}
            stmt = (
                update(ShareState)
                .where(col(ShareState.request_id) == facts["request_id"], col(ShareState.status) == "pending")
                .values(status="consented", consent_record=rid, consent_facts=consent)
            )
            if s.exec(stmt).rowcount != 1:
                raise ShareNotPending(f"request {facts['request_id']!r} is no longer pending")
        elif kind == "share.revoke_consent":
            stmt = (
                update(ShareState)
                .where(
                    col(ShareState.request_id) == facts["request_id"], col(ShareState.status) == "consented"
                )
                .values(status="revoked")
            )
            if s.exec(stmt).rowcount != 1:
                raise ConsentMissing(f"request {facts['request_id']!r} has no live consent")
        elif kind == "share.access":
            share = s.get(ShareState, facts["request_id"], populate_existing=True)
            _check_consent(share, facts["request_id"], org, _now())
        elif _is_membership(p):
            # Checked before the transaction against the stage recorded then; concurrent submissions for
            # the same member (one group commit) may have recorded another since: the stage as it stands
            # here, with this transaction's earlier records, decides.
            key = _member_key(p.envelope.subject, facts)
            last = (
                seen[key] if key in seen else _last_membership(s, p.envelope.subject, str(facts["member_id"]))
            )
            if last is not None:
                check_recorded_stage(facts["previous_stage"], last.get("stage"))
            seen[key] = facts

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


def _is_membership(p: _Prepared) -> bool:
    return p.envelope.kind == "party.record" and p.facts.get("type") == "membership"


def _changes_state(p: _Prepared) -> bool:
    return p.envelope.kind in STATEFUL_KINDS or _is_membership(p)


_MEMBER_LOCK = text("SELECT pg_advisory_xact_lock(:k)")


def _member_key(subject: str, facts: Mapping[str, Any]) -> str:
    return f"member\0{subject}\0{facts.get('member_id')}"


def _lock_id(key: str) -> int:
    """A PostgreSQL advisory lock id (signed 64 bits) for ``key``."""
    return int.from_bytes(sm3(key.encode("utf-8"))[:8], "big", signed=True)


def _last_membership(s: Session, subject: str, member_id: str) -> Mapping[str, Any] | None:
    """Facts of the member's last membership record on this branch (None for a first record)."""
    rows = s.exec(
        select(Record.facts)
        .where(Record.subject == subject, Record.kind == "party.record")
        .order_by(col(Record.seq).desc())
        .limit(5000)
    )
    for facts in rows:
        if facts.get("type") == "membership" and facts.get("member_id") == member_id:
            return facts
    return None


def _payload_input(payload: Any) -> bytes | Mapping[str, Any]:
    if isinstance(payload, str):
        return payload.encode("utf-8")  # an HJ 212 packet (or JSON text)
    if isinstance(payload, Mapping):
        return payload
    raise PayloadInvalid("payload must be a JSON object or a string", details={"field": "payload"})


def _check_rx_open(state: RxState, rx_id: str) -> None:
    if state.status == "dispensed":
        raise RxAlreadyDispensed(
            f"prescription {rx_id!r} was already dispensed",
            details={"rx_id": rx_id, "dispensed_by": state.closed_by, "record": state.close_record},
        )
    if state.status == "revoked":
        raise RxRevoked(
            f"prescription {rx_id!r} was revoked", details={"rx_id": rx_id, "record": state.close_record}
        )


def _check_consent(share: ShareState | None, request_id: str, org: str, now: datetime) -> None:
    if share is None or share.status == "pending" or share.consent_facts is None:
        raise ConsentMissing(
            f"no consent for request {request_id!r}",
            details={"request_id": request_id, "status": share.status if share else None},
        )
    if share.status == "revoked":
        raise ConsentRevoked(
            f"the consent for request {request_id!r} was revoked", details={"request_id": request_id}
        )
    if share.requester != org:
        raise ConsentMissing(
            f"the consent for request {request_id!r} is not for {org!r}", details={"request_id": request_id}
        )
    expires = share.consent_facts.get("expires_at")
    if isinstance(expires, str) and now >= _instant(expires):
        raise ConsentExpired(
            f"the consent for request {request_id!r} expired at {expires}",
            details={"request_id": request_id, "expires_at": expires},
        )
