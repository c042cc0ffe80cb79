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

import functools
import weakref
from collections.abc import Iterable

from sqlalchemy import Engine, TextClause, text
from sqlmodel import Session

from gateway.models import LogLeaf, LogNode
from gateway.services.sqllog import SqlLogStorage
from provenance.log.merkle import HASH_SIZE, MerkleLog

CACHED_LEVEL = 8  # nodes over 256 leaves and more
_PLACEHOLDER = bytes(HASH_SIZE)

Key = tuple[int, int]  # (level, index); level 0: a leaf
_NODES = LogNode.__tablename__
_LEAVES = LogLeaf.__tablename__


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


@functools.lru_cache(maxsize=256)
def _read_statement(nodes: int, leaves: int) -> TextClause:
    """The query of ``nodes`` nodes and ``leaves`` leaves by primary key (one text per shape: building the
    expression anew was a quarter of a proof's time). An OR of keys, not a row-value IN, which SQLite
    answers with a scan of the table. Only table names and parameter names go into the text."""
    parts = []
    if nodes:
        keys = " OR ".join(f'(level = :l{k} AND "index" = :i{k})' for k in range(nodes))
        parts.append(f'SELECT level, "index", hash FROM {_NODES} WHERE {keys}')  # noqa: S608  (no input)
    if leaves:
        keys = ", ".join(f":x{k}" for k in range(leaves))
        parts.append(f'SELECT 0 AS level, "index", hash FROM {_LEAVES} WHERE "index" IN ({keys})')  # noqa: S608
    return text(" UNION ALL ".join(parts))


def _read(s: Session, keys: Iterable[Key]) -> dict[Key, bytes]:
    """The stored leaves and nodes of ``keys``, in one query."""
    leaves = sorted({i for level, i in keys if level == 0})
    nodes = sorted({k for k in keys if k[0] > 0})
    if not (leaves or nodes):
        return {}
    params: dict[str, int] = {}
    for k, (level, index) in enumerate(nodes):
        params[f"l{k}"], params[f"i{k}"] = level, index
    params.update({f"x{k}": index for k, index in enumerate(leaves)})
    rows = s.connection().execute(_read_statement(len(nodes), len(leaves)), params).all()
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
