"""The domains: each a :class:`Workflow` (kinds and roles, payload validation, rules, contract binding,
reads), found through :mod:`adapters.registry`. A domain of its own (a plug-in, a test) builds on the
protocols here and the helpers ``adapted``, ``domain_policy`` and ``load_json_object``."""

from adapters._common import adapted, domain_policy, load_json_object
from adapters.abc import (
    Access,
    AdaptContext,
    AdaptedPayload,
    ChainView,
    ContractCall,
    Grant,
    Listed,
    Payload,
    ReadContext,
    ReadPolicy,
    RecordAdapter,
    RecordFacts,
    Route,
    State,
    Step,
    Workflow,
)
from adapters.registry import ADAPTERS, KINDS, adapt, adapter_for, read_policies, read_policy

__all__ = [
    "ADAPTERS",
    "KINDS",
    "Access",
    "AdaptContext",
    "AdaptedPayload",
    "ChainView",
    "ContractCall",
    "Grant",
    "Listed",
    "Payload",
    "ReadContext",
    "ReadPolicy",
    "RecordAdapter",
    "RecordFacts",
    "Route",
    "State",
    "Step",
    "Workflow",
    "adapt",
    "adapted",
    "adapter_for",
    "domain_policy",
    "load_json_object",
    "read_policies",
    "read_policy",
]
