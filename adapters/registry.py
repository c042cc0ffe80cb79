"""The one table from record kind to adapter. Adding a domain = one module + its entries here."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from adapters import env, party, rx, sharing
from adapters.abc import AdaptContext, AdaptedPayload, Payload, ReadPolicy, RecordAdapter
from adapters.errors import KindUnknown, SubjectMismatch
from provenance.domains import DomainSpec

_rx = rx.PrescriptionAdapter()
_share = sharing.SharingAdapter()
_env = env.EnvAdapter()
_party = party.PartyAdapter()

ADAPTERS: Mapping[str, RecordAdapter] = MappingProxyType(
    {
        "rx.issue": _rx,
        "rx.dispense": _rx,
        "rx.revoke": _rx,
        "share.request": _share,
        "share.consent": _share,
        "share.access": _share,
        "share.revoke_consent": _share,
        "env.reading": _env,
        "party.record": _party,
    }
)
KINDS: tuple[str, ...] = tuple(ADAPTERS)
DOMAINS: tuple[DomainSpec, ...] = (rx.DOMAIN, sharing.DOMAIN, env.DOMAIN, party.DOMAIN)


def domains() -> tuple[DomainSpec, ...]:
    """The domains' declarations (kind -> roles, audit events): the ``provenance.domains`` entry point."""
    return DOMAINS


def roles(kind: str) -> frozenset[str] | None:
    """The roles (lower case) that may record ``kind``; None for a kind no domain declares."""
    for d in DOMAINS:
        found = d.roles.get(kind)
        if found is not None:
            return found
    return None


def adapter_for(kind: str) -> RecordAdapter:
    """The adapter registered for ``kind``, or KIND_UNKNOWN."""
    try:
        return ADAPTERS[kind]
    except (KeyError, TypeError):
        raise KindUnknown(f"no adapter for record kind {kind!r}", details={"field": "kind"}) from None


def read_policy(kind: str) -> ReadPolicy:
    """Who reads records of ``kind`` (its domain's policy), or KIND_UNKNOWN."""
    return adapter_for(kind).read_policy


def read_policies() -> list[ReadPolicy]:
    """Every domain's read policy, once each."""
    seen: dict[int, ReadPolicy] = {}
    for adapter in ADAPTERS.values():
        seen.setdefault(id(adapter.read_policy), adapter.read_policy)
    return list(seen.values())


def adapt(kind: str, payload: Payload, context: AdaptContext | None = None) -> AdaptedPayload:
    """Validate and canonicalise ``payload`` as ``kind``; check the subject the context declares, if any."""
    result = adapter_for(kind).adapt(kind, payload, context=context)
    if context is not None and context.subject is not None and context.subject != result.subject:
        raise SubjectMismatch(
            f"record names subject {context.subject!r}, payload names {result.subject!r}",
            details={"field": "subject", "declared": context.subject, "payload": result.subject},
        )
    return result
