"""Domain adapters: validate, canonicalise and name the subject of each record kind's payload."""

from adapters.abc import (
    Access,
    AdaptContext,
    AdaptedPayload,
    ChainView,
    ContractCall,
    Grant,
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
    "ReadContext",
    "ReadPolicy",
    "RecordAdapter",
    "RecordFacts",
    "Route",
    "State",
    "Step",
    "Workflow",
    "adapt",
    "adapter_for",
    "read_policies",
    "read_policy",
]
