"""LogStorage over the gateway's database, so ``provenance.log.merkle.MerkleLog`` runs on SQL unchanged.

A storage object is bound to one session: the sequencer appends leaves in the same transaction that marks
their records sequenced, so a crash leaves either both or neither. Appended leaves and nodes are written by
``write_pending()`` (one INSERT per table for a whole batch: the ORM's unit of work cost more than the
hashing), which the appender calls before its transaction commits.
"""

from __future__ import annotations

from sqlalchemy import bindparam, func, insert, select
from sqlmodel import Session, col

from gateway.core.db import execute_many
from gateway.models import LogLeaf, LogNode
from provenance.errors import NotFound
from provenance.log.merkle import MerkleLog

_INSERT_LEAF = insert(LogLeaf.__table__)  # type: ignore[attr-defined]
_INSERT_NODE = insert(LogNode.__table__)  # type: ignore[attr-defined]
# Reads on the Core connection, statements built once: the ORM's ``Session.get`` cost a tenth of the
# sequencer's time (the nodes left of each batch's first leaf, a checkpoint's root) and of a proof's.
_SIZE = select(func.max(col(LogLeaf.index)))
_LEAF = select(col(LogLeaf.hash)).where(col(LogLeaf.index) == bindparam("i"))
_NODE = select(col(LogNode.hash)).where(
    col(LogNode.level) == bindparam("l"), col(LogNode.index) == bindparam("i")
)


class SqlLogStorage:
    """``provenance.abc.LogStorage`` on the ``log_leaf`` and ``log_node`` tables of one session."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._size: int | None = None
        # Written in this transaction: read back without a round trip (and without relying on autoflush).
        self._leaves: dict[int, bytes] = {}
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._pending_leaves: list[dict[str, object]] = []
        self._pending_nodes: list[dict[str, object]] = []

    def size(self) -> int:
        """Number of leaves."""
        if self._size is None:
            top = self._session.connection().execute(_SIZE).scalar()
            self._size = 0 if top is None else int(top) + 1
        return self._size

    def append_leaf_hash(self, leaf_hash: bytes) -> int:
        """Append a leaf hash and return its index."""
        index = self.size()
        self._pending_leaves.append({"index": index, "hash": leaf_hash})
        self._leaves[index] = leaf_hash
        self._size = index + 1
        return index

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        cached = self._leaves.get(index)
        if cached is not None:
            return cached
        found = self._session.connection().execute(_LEAF, {"i": index}).scalar()
        if found is None:
            raise NotFound(f"no leaf {index} in a log of size {self.size()}")
        return bytes(found)

    def get_node(self, level: int, index: int) -> bytes | None:
        """A stored complete-subtree hash, or None."""
        cached = self._nodes.get((level, index))
        if cached is not None:
            return cached
        found = self._session.connection().execute(_NODE, {"l": level, "i": index}).scalar()
        return None if found is None else bytes(found)

    def put_node(self, level: int, index: int, value: bytes) -> None:
        """Store a complete-subtree hash (the tree writes each node once, when its subtree closes)."""
        self._pending_nodes.append({"level": level, "index": index, "hash": value})
        self._nodes[(level, index)] = value

    def write_pending(self) -> None:
        """Write the leaves and nodes appended since the last call (in the session's transaction)."""
        conn = self._session.connection()
        for stmt, rows in ((_INSERT_LEAF, self._pending_leaves), (_INSERT_NODE, self._pending_nodes)):
            execute_many(conn, stmt, rows)
            rows.clear()


def merkle_log(session: Session) -> MerkleLog:
    """A MerkleLog over the database through ``session``."""
    return MerkleLog(storage=SqlLogStorage(session))
