"""Interfaces of the adapters package (py-evm ``eth/abc.py`` style); implementations live beside it.

A domain is one :class:`Workflow`: its record kinds and who records them, payload validation, its rules as
one state machine (``transition``), its contract binding, its reads and its read policy. The gateway drives
every domain through this protocol alone, giving it a :class:`ChainView` and a :class:`ReadContext`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from enum import IntEnum
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from provenance.chain.contracts import ContractReverted
from provenance.domains import DomainSpec
from provenance.orgs import OrgEntry
from provenance.types import Digest, RecordKind, Role, Subject

Payload = bytes | Mapping[str, Any]

# Where a FHIR date without a time (2026-11-25, 2026-11, 2026) is read unless the deployment says otherwise.
DEFAULT_TIME_ZONE = "Asia/Shanghai"


@dataclass(frozen=True, kw_only=True)
class AdaptContext:
    """What a domain rule needs from outside the payload. Plain values: adapters do no I/O.

    ``prior`` is the ``facts`` of the record this one builds on, when the caller has it: the ``rx.issue``
    for an ``rx.dispense``, the ``share.request`` for a ``share.consent``, the ``share.consent`` (plus its
    ``digest``) for a ``share.access``, the member's previous ``membership`` record for a ``party.record``.
    """

    now: datetime | None = None
    subject: str | None = None  # the subject the envelope declares; checked by ``registry.adapt``
    prior: Mapping[str, Any] | None = None
    hj212_utc_offset: timedelta = timedelta(hours=8)  # HJ 212 DataTime is station local time (北京时间)
    max_clock_skew: timedelta = timedelta(minutes=5)  # how far past ``now`` a declared date may lie
    # The deployment's zone for FHIR dates without a time: "2026-11-28" is that calendar day there.
    time_zone: tzinfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIME_ZONE))
    # The deployment's key for keyed digests of personal identifiers in facts (a patient reference):
    # HMAC-SM3, never a plain hash of a guessable value. None (a client's own adapt): such facts are left out.
    pseudonym_key: bytes | None = field(default=None, repr=False)
    # The network's key for keyed digests on chain (a box's identity: provenance.network_key), shared by every
    # gateway of the network. None (a client's own adapt): the chain's keys are left out of the facts.
    network_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class AdaptedPayload:
    """A validated payload: canonical bytes, their SM3 digest, its subject and the facts rules need."""

    kind: RecordKind
    subject: Subject
    canonical: bytes  # RFC 8785 JSON of the normalised payload
    digest: Digest  # SM3 of ``canonical``, lowercase hex
    facts: Mapping[str, Any] = field(default_factory=dict)  # JSON-compatible values only
    # What the domain's rules take from the payload beside the facts, never stored with the record: the
    # items of a batch record (its readings), which its ``transition`` keeps in the domain's states.
    detail: Mapping[str, Any] = field(default_factory=dict)

    def document(self) -> Any:
        """The normalised payload as a JSON value: what a client passes to ``Envelope.create``."""
        return json.loads(self.canonical)


class Access(IntEnum):
    """What one reader sees of one record, weakest first."""

    NONE = 0  # nothing: to this reader the record does not exist (never listed, RECORD_NOT_FOUND)
    ENVELOPE = 1  # the envelope, its status and its proofs: bundles without the payload
    PAYLOAD = 2  # and the payload


@dataclass(frozen=True)
class Grant:
    """The record kinds whose envelopes, and whose payloads, one relation of reader to record reads."""

    envelopes: frozenset[str] = frozenset()
    payloads: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.payloads <= self.envelopes:
            raise ValueError("a grant reads the payload only of kinds whose envelope it reads")

    def of(self, kind: str) -> Access:
        """What this grant gives of a record of ``kind``."""
        if kind in self.payloads:
            return Access.PAYLOAD
        return Access.ENVELOPE if kind in self.envelopes else Access.NONE


@dataclass(frozen=True, kw_only=True)
class ReadPolicy:
    """Who reads a domain's records: declared by the domain, applied alike by every read of the gateway.

    Relations of a reader to a record, each with its :class:`Grant`; the strongest one applies:

    - the record's **signer** reads its envelope and payload, in every domain;
    - ``roles``: by the reader's role in OrgRegistry alone (lower-case role names, ``auditor``), in every
      subject of the domain; besides its own records, these are the only ones a reader's export lists;
    - ``parties``: by the reader's role, once it signed some record of the record's subject (the hospital
      that issued a prescription, the pharmacy that dispensed it); empty: the domain has no such relation,
      and the gateway never looks a subject up for it;
    - ``holders``: the reader, a registered and active organisation, presented the subject's access code,
      which ``code_matches`` checks against the facts of the subject's first ``code_kind`` record.

    ``code_writes``: the kinds whose submitter must present the subject's access code too (a dispense: only
    the pharmacy the patient shows the slip to); the gateway checks it before anything about the subject
    is looked at, so a submitter without the code learns nothing of it from the write path either.

    An unregistered or suspended organisation (``role`` None) reads only what it signed.
    """

    kinds: frozenset[str]  # the domain's record kinds
    roles: Mapping[str, Grant]
    parties: Mapping[str, Grant] = field(default_factory=dict)
    holders: Grant | None = None
    code_kind: str | None = None
    code_matches: Callable[[Mapping[str, Any], str], bool] | None = None
    code_writes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.code_writes and (self.code_kind is None or self.code_matches is None):
            raise ValueError("code_writes needs code_kind and code_matches")

    def access(self, kind: str, *, signer: bool, role: str | None, party: bool, holder: bool) -> Access:
        """What a reader in these relations to a record of ``kind`` sees of it."""
        if signer:
            return Access.PAYLOAD
        grants = [
            self.roles.get(role or ""),
            self.parties.get(role or "") if party else None,
            self.holders if holder and role is not None else None,
        ]
        return max((g.of(kind) for g in grants if g is not None), default=Access.NONE)

    def role_kinds(self, role: str | None) -> frozenset[str]:
        """The kinds whose envelopes ``role`` reads in every subject of the domain."""
        grant = self.roles.get(role or "")
        return grant.envelopes if grant is not None else frozenset()


@runtime_checkable
class RecordAdapter(Protocol):
    """Validates, canonicalises and names the subject of the payloads of some record kinds."""

    kinds: tuple[str, ...]
    read_policy: ReadPolicy  # who reads this domain's records (envelopes, payloads)

    def adapt(self, kind: str, payload: Payload, *, context: AdaptContext | None = None) -> AdaptedPayload:
        """Return the adapted payload or raise a :class:`provenance.errors.PayloadInvalid` subclass (or
        :class:`provenance.errors.DuplicateKey`, ``JSON_DUPLICATE_KEY``, for JSON naming a key twice)."""
        ...


# --- the workflow: rules, contract binding, reads ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class State:
    """One state of a workflow under one key (a prescription, a request, a member): what rules read and
    write. ``data`` holds JSON values only; the gateway stores it (``workflow_state``) and versions it."""

    status: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """A record as rules and contract bindings see it: its envelope's fields and its adapter's facts."""

    kind: str
    org: str
    subject: str
    record_id: str  # the envelope's digest, hex: what a contract call carries
    payload_digest: str
    facts: Mapping[str, Any]
    detail: Mapping[str, Any] = field(default_factory=dict)  # the adapter's ``AdaptedPayload.detail``


@dataclass(frozen=True, slots=True)
class Step:
    """A record's step through its workflow: the facts of the record it builds on (``prior``: the adapter
    runs again with them, for rules that compare the two) and the new states it leaves, by key."""

    prior: Mapping[str, Any] | None = None
    writes: Mapping[str, State] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContractCall:
    """A call of a domain contract a record makes once accepted: sent by the gateway's chain caller with
    the transaction account of the record's organisation, in acceptance order."""

    contract: str  # the contract's name in the network manifest (and its artifact's)
    function: str
    args: tuple[Any, ...]


class NetworkOrg(Protocol):
    """An organisation a new network registers, as a domain's set-up reads it (the devnet's ``OrgSpec``):
    the domain objects it owns come with it."""

    @property
    def id(self) -> str: ...

    @property
    def role(self) -> Role: ...

    @property
    def datasets(self) -> tuple[str, ...]: ...

    @property
    def stations(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, kw_only=True)
class Provision:
    """What a new network's deployment hands each domain once its organisations are registered."""

    orgs: Sequence[NetworkOrg]
    contracts: Mapping[str, Any]  # the deployed contracts by name (web3.py ``Contract`` objects)
    options: Mapping[str, Any] = field(default_factory=dict)  # deployment settings (``review_required``)


@dataclass(frozen=True, slots=True)
class SetupCall:
    """A contract call of a new network's set-up (a station's registration, a setting)."""

    sender: str | None  # the organisation whose account sends it; None: the deployer
    function: Any  # a bound web3.py ``ContractFunction``


class ChainView(Protocol):
    """The chain reads rules need, as the gateway provides them. A read raises
    :class:`provenance.errors.LedgerError` while the chain is unreachable (the gateway answers
    CHAIN_UNAVAILABLE) and :class:`ContractReverted` when a view reverts."""

    def clock(self) -> datetime:
        """The time a contract call sent now is checked at (the chain's clock may run ahead of ours)."""
        ...

    def call(self, contract: str, function: str, *args: Any) -> Any:
        """A view function's result, read now."""
        ...

    def lookup(self, contract: str, function: str, *args: Any) -> Any:
        """A view function's result, cached until ``contract`` emits an event (a registry the domain
        names in ``Workflow.watched``: stations, say)."""
        ...

    def events(self, contract: str, event: str, **filters: Any) -> list[Mapping[str, Any]]:
        """The arguments of every ``event`` of ``contract`` matching the indexed ``filters``, oldest first."""
        ...

    def refused(self, record_id: str) -> bool:
        """Whether the chain refused the contract call of an accepted record (the gateway marked it
        ``rejected``): the contract never held what that record did."""
        ...


class ReadContext(Protocol):
    """What a domain's read route sees of the gateway: the reader, its workflow's states, the chain."""

    org: str  # the reader's organisation (its API token's)
    role: str | None  # its role in OrgRegistry, lower case; None when unregistered or suspended
    access_code: str | None  # the access code it presented (``Provenance-Access-Code``)
    chain: ChainView
    network_key: bytes  # the network's key of keyed digests on chain (provenance.network_key)

    def state(self, key: str) -> State | None:
        """The workflow's state under ``key`` (None: none recorded)."""
        ...

    def states(self, start: str, end: str, limit: int) -> list[tuple[str, State]]:
        """The workflow's states whose keys lie in [``start``, ``end``), in key order, at most ``limit``."""
        ...

    def bundle(self, record_id: str) -> Mapping[str, Any] | None:
        """The record's evidence bundle with its payload, when the reader may read that payload (None:
        absent, not visible, or its envelope only); NOT_YET_LOGGED while no checkpoint covers it."""
        ...

    def visible(self, record_id: str) -> bool:
        """Whether the reader sees the record at all (its domain's read policy; absent: False)."""
        ...

    def contract_anchor(self, record_id: str) -> Mapping[str, Any] | None:
        """Where the record's contract call went on chain, once confirmed: ``chain_id``, ``contract`` (its
        address), ``tx_hash``, ``block_number``, ``block_hash``; None before (or without a call)."""
        ...

    def org_entry(self, org_id: str) -> OrgEntry | None:
        """The organisation as OrgRegistry holds it (None: not registered)."""
        ...

    def records(self, subject: str, *, after: int = 0, limit: int = 100) -> Sequence[Listed]:
        """The records of ``subject`` the reader sees, in acceptance order from after the cursor ``after``
        (a :attr:`Listed.seq`), at most ``limit`` (1 to 500); their facts only where it reads the payload."""
        ...


@dataclass(frozen=True, slots=True)
class Listed:
    """A record as a domain's read lists it: its place in acceptance order (the next page's cursor), the
    record, and where it stands (``leaf_index`` None: not in the log yet)."""

    seq: int
    record: RecordFacts
    accepted_at: float
    leaf_index: int | None
    chain_status: str  # none | pending | confirmed | rejected


@dataclass(frozen=True, slots=True)
class Route:
    """A read of a domain, served under ``/api/v1`` to any reader with an API token: ``GET path``, whose
    ``{params}`` the handler takes by name after the context, and the optional ``query`` parameters (text,
    None when absent: a time range, a page's cursor) by name after those; it returns ``response_model`` or
    raises a project error (the gateway's one handler maps it)."""

    path: str
    handler: Callable[..., BaseModel]
    response_model: type[BaseModel]
    tags: tuple[str, ...] = ()
    query: tuple[str, ...] = ()


# --- supervision panels: a domain's own charts on the regulators' dashboard ----------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """A submission the gateway refused. Refusals are never logged: the gateway keeps its latest ones in
    memory (since it started), for the dashboard's drill-down and the domains' panels."""

    seq: int  # its place among this gateway's refusals (a page's cursor)
    at: str  # when, RFC 3339 UTC in whole seconds (2026-12-06T08:00:00Z)
    kind: str
    code: str
    org: str  # the submitting token's organisation
    subject: str  # as the refused envelope declared it
    details: Mapping[str, Any]  # the error's details, as the submitter got them


@dataclass(frozen=True, slots=True)
class PanelCount:
    """One number of a panel: ``key`` is what :attr:`Panel.items` takes back (a station's MN, an org)."""

    key: str
    count: int


@dataclass(frozen=True, slots=True)
class PanelItem:
    """One entry behind a panel's number: the record it is about (None: no logged record behind it), its
    time (RFC 3339 UTC), organisation and subject, and one line of what happened (language-neutral)."""

    record_id: str | None
    at: str
    org: str
    subject: str
    detail: str


class SupervisionContext(ReadContext, Protocol):
    """What a panel reads: a supervisor's :class:`ReadContext` and the gateway's latest refusals."""

    def refusals(self, code: str) -> Sequence[Refusal]:
        """The refusals with ``code`` this gateway kept, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class Panel:
    """A chart a domain adds to the supervision dashboard (auditors and regulators only), so the gateway
    shows domain data without naming a domain. ``counts(ctx, since, until)`` gives the numbers in
    [since, until) (RFC 3339 UTC instants), most first; ``items(ctx, key, since, until, after, limit)`` the
    entries behind one of them, a page at a time, with the next page's ``after`` (None: the last page);
    a malformed ``key`` or ``after`` raises the domain's 422 error."""

    name: str  # lower-case letters and _, unique within the domain
    title: Mapping[str, str]  # by language: "zh", "en"
    key_title: Mapping[str, str]  # what its keys are (a column's heading), by language
    counts: Callable[[SupervisionContext, str, str], Sequence[PanelCount]]
    items: Callable[
        [SupervisionContext, str, str, str, str | None, int], tuple[Sequence[PanelItem], str | None]
    ]


@runtime_checkable
class DemoWriter(Protocol):
    """How a domain's demo records reach a new devnet's gateway (``devnet.demo.DemoWriter``), each signed by
    the organisation that acts with its devnet key and token."""

    def put(
        self, org: str, kind: str, subject: str, payload: Mapping[str, Any], *, mined: bool = False
    ) -> str:
        """Sign and submit a record of ``org``; its id. ``mined``: wait until its contract call is mined."""
        ...

    def payload_digest(self, record_id: str) -> str:
        """The payload digest of a record put here, as the gateway holds it."""
        ...


class Workflow(RecordAdapter, Protocol):
    """One domain's whole workflow. ``kinds`` (from :class:`RecordAdapter`) are ``domain.roles``' keys.

    Rules are one state machine: ``keys`` names the states a record reads and writes, ``transition`` is
    pure given those states, the chain view and the clock, and raises the domain's error. The gateway runs
    it before the write (to refuse early and to hand the adapter the prior facts) and again inside the
    write transaction on the states as they stand there (locked on PostgreSQL, by key), which decides races;
    a record with no keys has nothing to decide there and runs once.
    """

    domain: DomainSpec  # name, kind -> roles, the audit's events
    contracts: tuple[str, ...]  # the domain's contracts: a network deploys each (the registry's address)
    watched: tuple[str, ...]  # contracts whose events invalidate ``ChainView.lookup`` results
    routes: Sequence[Route]
    panels: Sequence[Panel]  # its charts on the supervision dashboard (none: ())

    def keys(self, kind: str, facts: Mapping[str, Any]) -> tuple[str, ...]:
        """The state keys a record of ``kind`` with ``facts`` reads or writes (unique within the domain)."""
        ...

    def transition(
        self, record: RecordFacts, states: Mapping[str, State | None], chain: ChainView, now: datetime
    ) -> Step:
        """The record's step from ``states`` (one per key, None: none yet), or the domain's error."""
        ...

    def contract_call(self, record: RecordFacts) -> ContractCall | None:
        """The domain-contract call the record makes once accepted (None: it makes none)."""
        ...

    def provision(self, network: Provision) -> Sequence[SetupCall]:
        """The calls a new network makes so the domain's contracts hold its objects and settings."""
        ...

    def demo(self, writer: DemoWriter) -> str | None:
        """Record the domain's demo data on a new devnet through ``writer``; the subject to look up on the
        page (None: the domain records none)."""
        ...

    def already_applied(self, record: RecordFacts, revert: ContractReverted, chain: ChainView) -> bool:
        """Whether ``revert`` of the record's own call means the chain already holds it (a call mined
        before a crash, sent again): then the call counts as confirmed."""
        ...
