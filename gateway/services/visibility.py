"""Who sees which record: each domain's read policy (``adapters``) applied to one reader, for every read.

The gateway names no domain here: a record's kind gives its policy, and the relations a policy speaks of
(signer, role, party of the subject, holder of the subject's access code) are worked out the same way for
all. Nothing a reader may not see is told apart from nothing at all (``docs/design/gateway.md``, Reads).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from sqlalchemy import ColumnElement, or_
from sqlmodel import Session, col, select

from adapters import Access, ReadPolicy, read_policies, read_policy
from adapters.registry import kinds as registered_kinds
from gateway.errors import AccessCodeInvalid, AccessCodeRequired, RecordNotFound
from gateway.models import Record, seq_after, signed_by
from provenance.access_code import AccessCode
from provenance.orgs import OrgEntry
from provenance.records import Envelope


def role_name(org: OrgEntry | None) -> str | None:
    """The role a policy names (``auditor``), or None for an unregistered or suspended organisation."""
    return org.role if org is not None and org.active else None


class Reader:
    """One request's reader: organisation, role, the access code it presented; caches per subject."""

    def __init__(self, *, org: str, role: str | None, access_code: str | None = None) -> None:
        self.org = org
        self.role = role
        self.access_code = access_code
        self._parties: dict[str, bool] = {}
        self._holder: dict[tuple[str, str], bool] = {}

    # --- one record ------------------------------------------------------------------------------------

    def access(self, s: Session, row: Record | Absent) -> Access:
        """What this reader sees of ``row``."""
        policy = read_policy(row.kind)
        signer = row.org == self.org
        quick = policy.access(row.kind, signer=signer, role=self.role, party=False, holder=False)
        if quick is Access.PAYLOAD:
            return quick  # no relation reads more: spare the subject look-ups
        return policy.access(
            row.kind,
            signer=signer,
            role=self.role,
            party=bool(policy.parties) and self.is_party(s, row.subject),
            holder=self.holds_code(s, row.subject, policy),
        )

    def visible(self, s: Session, row: Record | None, record_id: str) -> tuple[Record, Access]:
        """``row`` and what this reader sees of it; RECORD_NOT_FOUND alike when absent or not visible."""
        access = self.access(s, row if row is not None else absent_record())
        if row is None or access is Access.NONE:
            raise RecordNotFound(f"no record {record_id!r}", details={"id": record_id})
        return row, access

    def is_party(self, s: Session, subject: str) -> bool:
        """Whether this reader signed some record of ``subject``."""
        hit = self._parties.get(subject)
        if hit is None:
            # Through the subject's index (``signed_by``: 4 ms of a trace page at 200,000 records otherwise).
            found = s.exec(
                select(Record.seq).where(Record.subject == subject, signed_by(self.org)).limit(1)
            ).first()
            hit = self._parties[subject] = found is not None
        return hit

    def holds_code(self, s: Session, subject: str, policy: ReadPolicy) -> bool:
        """Whether the presented access code opens ``subject`` (its first ``code_kind`` record's facts)."""
        if self.access_code is None or policy.code_kind is None or policy.code_matches is None:
            return False
        key = (subject, policy.code_kind)
        hit = self._holder.get(key)
        if hit is None:
            hit = self._holder[key] = code_opens(s, subject, policy, self.access_code)
        return hit

    # --- listings --------------------------------------------------------------------------------------

    def listing(self) -> ColumnElement[bool] | None:
        """The export's filter: this reader's own records and the kinds its role reads everywhere (None:
        every record). Parties and code holders read a subject through its history, not in exports."""
        kinds = set().union(*(p.role_kinds(self.role) for p in read_policies()))
        return None if kinds >= set(registered_kinds()) else _own_or(self.org, kinds)

    def subject_listing(self, s: Session, subject: str) -> ColumnElement[bool] | None:
        """The filter of ``subject``'s history: the kinds this reader's relations to it read, and its own
        records (None: every record). A subject it may not see reads as one without records."""
        kinds: set[str] = set()
        for policy in read_policies():
            party = bool(policy.parties) and self.is_party(s, subject)
            holder = self.holds_code(s, subject, policy)
            kinds.update(
                k
                for k in policy.kinds
                if policy.access(k, signer=False, role=self.role, party=party, holder=holder)
            )
        return None if kinds >= set(registered_kinds()) else _own_or(self.org, kinds)

    def subject_where(self, s: Session, subject: str, *, after: int) -> list[ColumnElement[bool]]:
        """The conditions of ``subject``'s rows this reader sees after ``seq`` ``after``: the one filter of
        every read of a subject's history, whole rows (``subject_rows``) or some columns (the trace page)."""
        conds: list[ColumnElement[bool]] = [col(Record.subject) == subject, seq_after(after)]
        scope = self.subject_listing(s, subject)
        if scope is not None:
            conds.append(scope)
        return conds

    def subject_rows(self, s: Session, subject: str, *, after: int, limit: int) -> Sequence[Record]:
        """The rows of ``subject`` this reader sees, in acceptance order after ``seq`` ``after``."""
        # With the facts: the domains' reads, its callers, show those of the rows whose payload the reader
        # sees (deferred, each was a query of its own; the trace page, which shows none, reads columns).
        conds = self.subject_where(s, subject, after=after)
        return s.exec(select(Record).where(*conds).order_by(col(Record.seq)).limit(limit)).all()

    def payload_rule(self, s: Session) -> Callable[[Record], bool]:
        """``row -> bool``: whether this reader sees the payload of a listed row."""
        return lambda row: self.access(s, row) is Access.PAYLOAD


@dataclass(frozen=True, slots=True)
class Absent:
    """A record's parts that a read policy looks at, for a record that is not there."""

    kind: str
    org: str
    subject: str


@cache
def absent_record() -> Absent:
    """What an absent record is looked at as: a record of a kind whose policy reads parties and access codes,
    of a subject nothing has. Its look-ups (party, code holder) are those of a record there but not visible,
    so that time does not tell the two apart (the twelfth attack, C: a bundle's 404 came ~0.4 ms sooner)."""
    coded = [p.code_kind for p in read_policies() if p.code_kind is not None]
    kind = coded[0] if coded else sorted(registered_kinds())[0]
    return Absent(kind=kind, org="", subject=" absent")  # no subject has a space


def code_opens(s: Session, subject: str, policy: ReadPolicy, code: str) -> bool:
    """Whether access code ``code`` opens ``subject``: checked by ``policy.code_matches`` against the facts of
    the subject's first ``code_kind`` record (False for a subject without one, or a policy without codes).
    For reads and for the kinds only a code's holder may submit (``ReadPolicy.code_writes``) alike."""
    if policy.code_kind is None or policy.code_matches is None:
        return False
    facts = s.exec(
        select(Record.facts)
        .where(Record.subject == subject, Record.kind == policy.code_kind)
        .order_by(col(Record.seq))
        .limit(1)
    ).first()
    return facts is not None and policy.code_matches(facts, code)


def check_code(s: Session, envelope: Envelope, policy: ReadPolicy, code: str | None) -> None:
    """ACCESS_CODE_REQUIRED / ACCESS_CODE_INVALID (403) for a kind its domain (``policy``, the kind's read
    policy, which the caller already holds) lets only the holder of the subject's access code submit
    (``ReadPolicy.code_writes``), alike whether the subject exists or not (ACCESS_CODE_MALFORMED, 400, for
    text that is no code). Intake's, before anything about the subject."""
    if envelope.kind not in policy.code_writes:
        return
    if code is None:
        raise AccessCodeRequired(
            f"a {envelope.kind} presents the access code of its subject "
            "(Provenance-Access-Code header; in a bulk item, its access_code member)",
            details={"subject": envelope.subject},
        )
    if not code_opens(s, envelope.subject, policy, AccessCode.parse(code).value):
        raise AccessCodeInvalid(
            f"no {envelope.subject!r} opens with this access code", details={"subject": envelope.subject}
        )


def _own_or(org: str, kinds: set[str]) -> ColumnElement[bool]:
    own = col(Record.org) == org
    return or_(own, col(Record.kind).in_(sorted(kinds))) if kinds else own
