"""Record domains as the SDK sees them: which roles record which kind, and which contract events a kind's
call emits (what ``provenance audit workflow`` checks against the signed records).

The domains themselves are the gateway's workflows (``adapters/``), which the SDK never imports: they are
found through the ``provenance.domains`` entry-point group, each entry a callable returning
:class:`DomainSpec` objects (the project's: ``adapters.registry:domains``). ``provenance orgs export``
writes their kind → roles table into the trust file, which every verifier then reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points

GROUP = "provenance.domains"


@dataclass(frozen=True, slots=True)
class EventSpec:
    """A workflow event of a domain contract: which record kind's call emits it, and where its fields are."""

    contract: str
    event: str
    kind: str  # the record kind whose contract call emits this event
    org: str  # event fields, by name: the acting organisation's id
    digest: str  # the record id the call was made for
    subject: str | None = None  # the indexed id the record's subject hashes to
    account: str | None = None  # msg.sender, when the event carries it (else the transaction's from)
    scope: str | None = None  # a digest the record's payload digest must equal (a consent's scope)
    # The subject id is not in this event: (event, field) of the same contract whose ``subject`` field
    # matches this event's names it (a consent names its request; the request's event, its dataset).
    subject_via: tuple[str, str] | None = None

    @property
    def name(self) -> str:
        return f"{self.contract}.{self.event}"


@dataclass(frozen=True, slots=True)
class RootSpec:
    """A contract event anchoring the Merkle root a batch record signed (``EnvMonitoring.BatchAnchored`` for
    an ``env.batch``): ``provenance audit batches`` matches each such event to a logged record of ``kind``
    whose subject hashes to the event's ``subject`` field and whose payload says what ``fields`` name."""

    contract: str
    event: str
    kind: str
    subject: str  # event field: the on-chain id of the record's subject (``chain_key`` of it)
    root: str  # event field holding the root; the payload member is ``fields[root]``
    # event field -> payload member: bytes32 against 64 hex, an integer against the same integer or an
    # RFC 3339 instant in unix seconds
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DomainSpec:
    """What a domain declares to verifiers and auditors."""

    name: str
    roles: Mapping[str, frozenset[str]]  # record kind -> the roles (lower case) that may record it
    events: tuple[EventSpec, ...] = field(default=())
    roots: tuple[RootSpec, ...] = field(default=())  # batch roots its contracts anchor

    @property
    def contracts(self) -> tuple[str, ...]:
        """The contracts whose events the audit reads, in order of first mention."""
        return tuple(dict.fromkeys(e.contract for e in self.events))


def installed() -> tuple[DomainSpec, ...]:
    """Every domain the installed packages declare (read afresh: a test may register one)."""
    found: list[DomainSpec] = []
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        source: Callable[[], Iterable[DomainSpec]] = ep.load()
        found.extend(source())
    return tuple(found)


def kind_roles(domains: Iterable[DomainSpec] | None = None) -> dict[str, frozenset[str]]:
    """The kind -> roles table of ``domains`` (default: the installed ones), as a trust file carries it."""
    table: dict[str, frozenset[str]] = {}
    for d in installed() if domains is None else domains:
        for kind, roles in d.roles.items():
            if kind in table:
                raise ValueError(f"record kind {kind!r} is declared by two domains")
            table[kind] = frozenset(roles)
    return table


def kinds_document(table: Mapping[str, frozenset[str]] | None = None) -> dict[str, list[str]]:
    """The ``kinds`` object of a trust file (default: the installed domains' table), sorted throughout so
    that two exports of the same domains compare byte for byte."""
    table = kind_roles() if table is None else table
    return {k: sorted(table[k]) for k in sorted(table)}


def workflow_events(domains: Iterable[DomainSpec] | None = None) -> dict[tuple[str, str], EventSpec]:
    """(contract, event) -> its spec, over ``domains`` (default: the installed ones)."""
    return {(e.contract, e.event): e for d in (installed() if domains is None else domains) for e in d.events}


def root_specs(domains: Iterable[DomainSpec] | None = None) -> tuple[RootSpec, ...]:
    """Every anchored-root event ``domains`` declare (default: the installed ones)."""
    return tuple(r for d in (installed() if domains is None else domains) for r in d.roots)
