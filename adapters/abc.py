"""Interfaces of the adapters package (py-evm ``eth/abc.py`` style); implementations live beside it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any, Protocol, runtime_checkable

from provenance.types import Digest, RecordKind, Subject

Payload = bytes | Mapping[str, Any]


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
    # The deployment's key for keyed digests of personal identifiers in facts (a patient reference):
    # HMAC-SM3, never a plain hash of a guessable value. None (a client's own adapt): such facts are left out.
    pseudonym_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class AdaptedPayload:
    """A validated payload: canonical bytes, their SM3 digest, its subject and the facts rules need."""

    kind: RecordKind
    subject: Subject
    canonical: bytes  # RFC 8785 JSON of the normalised payload
    digest: Digest  # SM3 of ``canonical``, lowercase hex
    facts: Mapping[str, Any] = field(default_factory=dict)  # JSON-compatible values only

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
