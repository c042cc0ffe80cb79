"""Domain adapters: validate, canonicalise and name the subject of each record kind's payload."""

from adapters.abc import AdaptContext, AdaptedPayload, RecordAdapter
from adapters.registry import ADAPTERS, KINDS, adapt, adapter_for

__all__ = ["ADAPTERS", "KINDS", "AdaptContext", "AdaptedPayload", "RecordAdapter", "adapt", "adapter_for"]
