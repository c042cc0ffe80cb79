"""The one table of domains. Adding a domain = its package under ``adapters/`` + one line in ``_DOMAINS`` +
its contract and tests; the gateway, ``provenance audit`` and the devnet (which contracts it deploys, what
it sets up in them) reach every domain through here.

A test (or a deployment's plug-in) may :func:`register` a domain of its own at run time; everything that
reads the table reads it afresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from adapters import env, gas, party, rx, sharing
from adapters.abc import AdaptContext, AdaptedPayload, Payload, ReadPolicy, Workflow
from adapters.errors import KindUnknown, SubjectMismatch
from provenance.domains import DomainSpec

# The domains, in the order the gateway mounts their routes and the audit reads their events.
_DOMAINS: list[Workflow] = [rx.WORKFLOW, sharing.WORKFLOW, env.WORKFLOW, party.WORKFLOW, gas.WORKFLOW]
_BY_KIND: dict[str, Workflow] = {}

ADAPTERS: Mapping[str, Workflow] = MappingProxyType(_BY_KIND)  # kind -> its domain (a live view)


def _index() -> None:
    table: dict[str, Workflow] = {}
    for d in _DOMAINS:
        for kind in d.kinds:
            if kind in table:
                raise ValueError(f"record kind {kind!r} is declared by two domains")
            table[kind] = d
    _BY_KIND.clear()
    _BY_KIND.update(table)


_index()
KINDS: tuple[str, ...] = tuple(ADAPTERS)  # the built-in domains' kinds


def register(workflow: Workflow) -> None:
    """Add a domain (its kinds must be new)."""
    _DOMAINS.append(workflow)
    try:
        _index()
    except ValueError:
        _DOMAINS.remove(workflow)
        raise


def unregister(workflow: Workflow) -> None:
    """Remove a domain :func:`register` added."""
    _DOMAINS.remove(workflow)
    _index()


def workflows() -> tuple[Workflow, ...]:
    """Every registered domain."""
    return tuple(_DOMAINS)


def kinds() -> tuple[str, ...]:
    """Every registered record kind."""
    return tuple(ADAPTERS)


def adapter_for(kind: str) -> Workflow:
    """The domain of ``kind``, or KIND_UNKNOWN."""
    try:
        return ADAPTERS[kind]
    except (KeyError, TypeError):
        raise KindUnknown(f"no adapter for record kind {kind!r}", details={"field": "kind"}) from None


def workflow_for(kind: str) -> Workflow:
    """The workflow of ``kind`` (KIND_UNKNOWN: none)."""
    return adapter_for(kind)


def domains() -> tuple[DomainSpec, ...]:
    """The domains' declarations (kind -> roles, audit events): the ``provenance.domains`` entry point."""
    return tuple(d.domain for d in _DOMAINS)


def contracts() -> tuple[str, ...]:
    """Every registered domain's contracts, in the table's order: what a new network deploys."""
    return tuple(dict.fromkeys(name for d in _DOMAINS for name in d.contracts))


def roles(kind: str) -> frozenset[str] | None:
    """The roles (lower case) that may record ``kind``; None for a kind no domain declares."""
    found = ADAPTERS.get(kind) if isinstance(kind, str) else None
    return None if found is None else found.domain.roles.get(kind)


def read_policy(kind: str) -> ReadPolicy:
    """Who reads records of ``kind`` (its domain's policy), or KIND_UNKNOWN."""
    return adapter_for(kind).read_policy


def read_policies() -> list[ReadPolicy]:
    """Every domain's read policy, once each."""
    return [d.read_policy for d in _DOMAINS]


def adapt(kind: str, payload: Payload, context: AdaptContext | None = None) -> AdaptedPayload:
    """Validate and canonicalise ``payload`` as ``kind``; check the subject the context declares, if any."""
    result = adapter_for(kind).adapt(kind, payload, context=context)
    if context is not None and context.subject is not None and context.subject != result.subject:
        raise SubjectMismatch(
            f"record names subject {context.subject!r}, payload names {result.subject!r}",
            details={"field": "subject", "declared": context.subject, "payload": result.subject},
        )
    return result
