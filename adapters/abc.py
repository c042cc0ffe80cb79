"""Interfaces of the adapters package (py-evm ``eth/abc.py`` style); implementations live beside it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
    max_clock_skew: timedelta = timedelta(minutes=5)  # how far past ``now`` a reading or access may be dated


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


@runtime_checkable
class RecordAdapter(Protocol):
    """Validates, canonicalises and names the subject of the payloads of some record kinds."""

    kinds: tuple[str, ...]

    def adapt(self, kind: str, payload: Payload, *, context: AdaptContext | None = None) -> AdaptedPayload:
        """Return the adapted payload or raise a :class:`provenance.errors.PayloadInvalid` subclass (or
        :class:`provenance.errors.DuplicateKey`, ``JSON_DUPLICATE_KEY``, for JSON naming a key twice)."""
        ...
