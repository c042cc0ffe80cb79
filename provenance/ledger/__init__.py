"""The ledger side of the SDK: the block seal format and client-side chain re-verification."""

from provenance.ledger.seal import Seal, seal_digest

__all__ = ["Seal", "seal_digest"]
