"""Interfaces of the SDK (py-evm's ``eth/abc.py`` style): implementations live elsewhere."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from provenance.orgs import OrgEntry


@runtime_checkable
class Signer(Protocol):
    """Something that signs bytes with SM2 (default ID) and can name its public key."""

    def sign(self, message: bytes) -> bytes:
        """Return a DER ``SEQUENCE{r, s}`` SM2 signature of ``message``."""
        ...

    def public_key_pem(self) -> bytes: ...


@runtime_checkable
class SignatureVerifier(Protocol):
    def verify(self, message: bytes, signature: bytes) -> None:
        """Return ``None`` or raise :class:`provenance.errors.SignatureInvalid`."""
        ...


class LogStorage(Protocol):
    """Storage behind the Merkle log: leaf hashes plus whatever nodes the tree caches.

    Level 0 never reaches ``put_node`` (leaves arrive through ``append_leaf_hash``); each level's nodes
    arrive in index order. A SQL implementation should write a leaf and its nodes in one transaction;
    if it does not, reads stay correct but fall back to recomputing missing nodes.
    """

    def size(self) -> int: ...

    def append_leaf_hash(self, leaf_hash: bytes) -> int:
        """Append and return the new leaf's index."""
        ...

    def leaf_hash(self, index: int) -> bytes: ...

    def get_node(self, level: int, index: int) -> bytes | None:
        """A cached hash of the complete subtree of 2**level leaves starting at index * 2**level."""
        ...

    def put_node(self, level: int, index: int, value: bytes) -> None: ...


class KeyValueStore(Protocol):
    """Byte key-value store (used by the chain node's state and block storage)."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]: ...


class ConsistencyProofs(Protocol):
    """A source of RFC 9162 consistency proofs of the log (the gateway, a mirror): checked, never trusted."""

    def consistency_proof(self, first: int, second: int) -> Sequence[bytes]:
        """The proof that the tree of size ``second`` extends the tree of size ``first``."""
        ...


@runtime_checkable
class LedgerBackend(Protocol):
    """The chain as a log's operator reads it, whatever the client library: ``OrgRegistry``'s organisations
    and ``ProvenanceLog``'s anchors, with the chain's clock. The gateway's ``Ledger`` implements it over
    web3.py; failures of the chain itself raise :class:`provenance.errors.LedgerError`."""

    def block_number(self) -> int:
        """The latest block number."""
        ...

    def org(self, org: str) -> OrgEntry | None:
        """The organisation as ``OrgRegistry`` holds it (keys, windows, status), or None if unregistered."""
        ...

    def org_ids(self) -> list[str]:
        """Every registered organisation id."""
        ...

    def contract_clock(self) -> datetime:
        """The time a contract call sent now is checked at (the chain's clock may run ahead)."""
        ...

    def anchored_root(self, size: int) -> bytes | None:
        """The root ``ProvenanceLog`` holds for tree size ``size`` (None if never anchored)."""
        ...
