"""A transparency log of signed records: Merkle tree + log key + checkpoints + evidence bundles.

The gateway runs one over SQL storage; the demo and tests run one in memory. Both hand out the same
bundles, verified by the same :class:`provenance.verification.verify.Verifier`.
"""

from __future__ import annotations

from typing import Any

from provenance.abc import LogStorage
from provenance.crypto import SM2PrivateKey
from provenance.log.bundle import Anchor, EvidenceBundle
from provenance.log.checkpoint import Checkpoint, sign_checkpoint
from provenance.log.merkle import InMemoryLogStorage, MerkleLog
from provenance.records import SignedRecord


class PublicLog:
    """A log as its readers see it: the Merkle tree and the log key's public half (the signing key stays
    with the signer). Hands out the evidence bundles of its records."""

    def __init__(self, tree: MerkleLog, *, key_name: str, log_public_key_pem: str) -> None:
        self.tree = tree
        self.key_name = key_name
        self.log_public_key_pem = log_public_key_pem

    def bundle(
        self,
        *,
        signed: SignedRecord,
        leaf_index: int,
        signer_public_key_pem: str,
        note: str,
        tree_size: int,
        payload: Any = None,
        include_payload: bool = True,
        anchor: Anchor | None = None,
    ) -> EvidenceBundle:
        """The evidence bundle for the record at ``leaf_index`` under the checkpoint ``note``."""
        kwargs: dict[str, Any] = {}
        if include_payload:
            kwargs["payload"] = payload
        return EvidenceBundle(
            signed=signed,
            digest=signed.record_id,
            signer_org=signed.envelope.org,
            signer_public_key=signer_public_key_pem,
            leaf_index=leaf_index,
            tree_size=tree_size,
            inclusion_proof=tuple(self.tree.inclusion_proof(leaf_index, tree_size)),
            checkpoint=note,
            log_key=(self.key_name, self.log_public_key_pem),
            anchor=anchor,
            **kwargs,
        )


class RecordLog(PublicLog):
    """Appends signed records as leaves and signs checkpoints with the log's SM2 key."""

    def __init__(self, *, origin: str, key_name: str, key: SM2PrivateKey, storage: LogStorage) -> None:
        public_pem = key.public_key_pem().decode("ascii")
        super().__init__(MerkleLog(storage=storage), key_name=key_name, log_public_key_pem=public_pem)
        self.origin = origin
        self._key = key

    @classmethod
    def in_memory(cls, *, origin: str, key_name: str, key: SM2PrivateKey) -> RecordLog:
        return cls(origin=origin, key_name=key_name, key=key, storage=InMemoryLogStorage())

    @property
    def size(self) -> int:
        return self.tree.size

    def append(self, signed: SignedRecord) -> int:
        """Append a record; returns its leaf index."""
        return self.tree.append(signed.leaf_entry())

    def checkpoint(self, size: int | None = None) -> tuple[Checkpoint, str]:
        """The checkpoint for ``size`` (default: current) and its signed note text."""
        n = self.tree.size if size is None else size
        cp = Checkpoint(origin=self.origin, size=n, root=self.tree.root(n))
        return cp, sign_checkpoint(cp, self.key_name, self._key)

    def public_key_pem(self) -> str:
        return self.log_public_key_pem
