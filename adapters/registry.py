"""The one table from record kind to adapter. Adding a domain = one module + its entries here."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from adapters.abc import AdaptContext, AdaptedPayload, Payload, ReadPolicy, RecordAdapter
from adapters.env import EnvAdapter
from adapters.errors import KindUnknown, SubjectMismatch
from adapters.party import PartyAdapter
from adapters.prescription import PrescriptionAdapter
from adapters.sharing import SharingAdapter

_rx = PrescriptionAdapter()
_share = SharingAdapter()
_env = EnvAdapter()
_party = PartyAdapter()

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
