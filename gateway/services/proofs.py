"""Inclusion proofs from the stored tree in one query, the upper nodes kept in memory.

``MerkleLog`` over ``SqlLogStorage`` reads a proof's nodes one by one: a query per level, 24 at ten million
records, which made most of a proof's time. Here the tree first runs over a storage that only notes which
leaves and nodes the proof reads (``_Wanted``: every complete subtree answers a placeholder, so the notes
are exactly the reads of a tree whose nodes are all stored), then all of them are read in one query and the
proof is computed again over what was read (``_Read``): the same ``MerkleLog`` code, the same proof.

A complete subtree's hash never changes once written (the log only appends; a read sees committed rows
only), so nodes of ``CACHED_LEVEL`` and above, which every proof of their span shares, are kept per
database (``NodeCache``) and not read again: at ten million records those are ~40,000 nodes, the upper
two thirds of every proof.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, Executable, Select, Table, and_, literal, or_, select, union_all
from sqlmodel import Session

from gateway.models import LogLeaf, LogNode
from gateway.services.sqllog import SqlLogStorage
from provenance.log.merkle import HASH_SIZE, MerkleLog

CACHED_LEVEL = 8  # nodes over 256 leaves and more
_PLACEHOLDER = bytes(HASH_SIZE)

Key = tuple[int, int]  # (level, index); level 0: a leaf
_NODES: Table = LogNode.__table__  # type: ignore[attr-defined]
_LEAVES: Table = LogLeaf.__table__  # type: ignore[attr-defined]


class NodeCache:
    """Complete-subtree hashes of one database that reads have fetched (of ``CACHED_LEVEL`` and above).

    Bounded: past ``limit`` entries it starts afresh. Threads share one: a race only reads a node twice.
    """

    def __init__(self, limit: int = 1 << 17) -> None:
        self.limit = limit
        self._nodes: dict[Key, bytes] = {}

    def get(self, key: Key) -> bytes | None:
        return self._nodes.get(key)

    def keep(self, found: dict[Key, bytes]) -> None:
        if len(self._nodes) >= self.limit:
            self._nodes = {}
        for key, value in found.items():
            if key[0] >= CACHED_LEVEL:
                self._nodes[key] = value


_caches: weakref.WeakKeyDictionary[Engine, NodeCache] = weakref.WeakKeyDictionary()


def node_cache(s: Session) -> NodeCache:
    """The node cache of the database ``s`` reads (one per engine: the tests run several gateways)."""
    bind = s.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    cache = _caches.get(engine)
    if cache is None:
        cache = _caches[engine] = NodeCache()
    return cache


class _Wanted:
    """A tree of ``size`` leaves whose every complete subtree is stored: notes what a proof reads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self.keys: list[Key] = []

    def size(self) -> int:
        return self._size

    def leaf_hash(self, index: int) -> bytes:
        self.keys.append((0, index))
        return _PLACEHOLDER

    def get_node(self, level: int, index: int) -> bytes:
        self.keys.append((level, index))
        return _PLACEHOLDER

    def append_leaf_hash(self, leaf_hash: bytes) -> int:
        raise TypeError("a proof's read plan does not append")

    def put_node(self, level: int, index: int, value: bytes) -> None:
        raise TypeError("a proof's read plan does not append")


class _Read:
    """The tree of ``size`` leaves as read for one proof; anything else (a node a crash lost, so the tree
    recomputes it from its children) from the database one by one, as before."""

    def __init__(self, size: int, found: dict[Key, bytes], rest: SqlLogStorage) -> None:
        self._size = size
        self._found = found
        self._rest = rest

    def size(self) -> int:
        return self._size

    def leaf_hash(self, index: int) -> bytes:
        found = self._found.get((0, index))
        return found if found is not None else self._rest.leaf_hash(index)

    def get_node(self, level: int, index: int) -> bytes | None:
        found = self._found.get((level, index))
        return found if found is not None else self._rest.get_node(level, index)

    def append_leaf_hash(self, leaf_hash: bytes) -> int:
        raise TypeError("a proof's tree is read-only")

    def put_node(self, level: int, index: int, value: bytes) -> None:
        raise TypeError("a proof's tree is read-only")


def _read(s: Session, keys: Iterable[Key]) -> dict[Key, bytes]:
    """The stored leaves and nodes of ``keys``, in one query."""
    leaves = sorted({i for level, i in keys if level == 0})
    nodes = sorted({k for k in keys if k[0] > 0})
    parts: list[Select[Any]] = []
    if nodes:
        # An OR of primary keys, not a row-value IN: SQLite scans the table for the latter.
        each = or_(*(and_(_NODES.c.level == lv, _NODES.c["index"] == i) for lv, i in nodes))
        parts.append(select(_NODES.c.level, _NODES.c["index"], _NODES.c.hash).where(each))
    if leaves:
        level0 = literal(0).label("level")
        parts.append(select(level0, _LEAVES.c["index"], _LEAVES.c.hash).where(_LEAVES.c["index"].in_(leaves)))
    if not parts:
        return {}
    stmt: Executable = parts[0] if len(parts) == 1 else union_all(*parts)
    rows = s.connection().execute(stmt).all()
    return {(int(row[0]), int(row[1])): bytes(row[2]) for row in rows}


def proof_tree(s: Session, leaf_index: int, tree_size: int) -> MerkleLog:
    """The log's tree of ``tree_size`` leaves, loaded with what the inclusion proof of ``leaf_index`` reads
    (``inclusion_proof(leaf_index, tree_size)`` on it reads nothing more when every node is stored)."""
    plan = _Wanted(tree_size)
    MerkleLog(storage=plan).inclusion_proof(leaf_index, tree_size)
    cache = node_cache(s)
    found: dict[Key, bytes] = {}
    missing: list[Key] = []
    for key in plan.keys:
        hit = cache.get(key)
        if hit is None:
            missing.append(key)
        else:
            found[key] = hit
    if missing:
        fetched = _read(s, missing)
        cache.keep(fetched)
        found.update(fetched)
    return MerkleLog(storage=_Read(tree_size, found, SqlLogStorage(s)))
