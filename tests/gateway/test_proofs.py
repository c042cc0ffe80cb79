"""Inclusion proofs read in one query (``gateway.services.proofs``): the same proofs as the tree read level
by level, on SQLite and PostgreSQL, also when a node is missing; upper nodes read once per database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, event

from gateway.core.db import Database
from gateway.models import LogNode
from gateway.services.proofs import CACHED_LEVEL, node_cache, proof_tree
from gateway.services.sqllog import SqlLogStorage, merkle_log
from provenance.log.merkle import MerkleLog, verify_inclusion
from tests.gateway.test_db import empty_url  # noqa: F401  (the fixture: SQLite, and PostgreSQL if set)

LEAVES = 1000  # 3 complete subtrees of 256 leaves (level 8), and a ragged right edge


@pytest.fixture
def db(empty_url: str) -> Iterator[Database]:  # noqa: F811
    d = Database(empty_url)
    d.create_all()
    with d.write() as s:
        storage = SqlLogStorage(s)
        tree = MerkleLog(storage=storage)
        for _ in range(LEAVES):
            tree.append_leaf_hash(secrets.token_bytes(32))
        storage.write_pending()
    yield d
    d.dispose()


def _statements(db: Database) -> list[str]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    return seen


def test_proofs_equal_the_level_by_level_ones_in_one_query(db: Database) -> None:
    sizes = (1, 2, 3, 255, 256, 257, 511, 768, 999, LEAVES)
    with db.session() as s:
        stored = merkle_log(s)
        expected = {
            (i, n): stored.inclusion_proof(i, n) for n in sizes for i in {0, n // 3, n - 2, n - 1} if i >= 0
        }
        roots = {n: stored.root(n) for n in sizes}
        seen = _statements(db)
        for (i, n), proof in expected.items():
            before = len(seen)
            tree = proof_tree(s, i, n)
            assert len(seen) - before <= 1  # one query, none when the cache holds every node
            assert tree.inclusion_proof(i, n) == proof
            assert len(seen) - before <= 1  # the proof itself reads nothing more
            verify_inclusion(stored.leaf_hash(i), i, n, proof, roots[n])
        # Nodes of level 8 and above that proofs read are kept (the database's), lower ones are not.
        cache = node_cache(s)
        assert cache.get((CACHED_LEVEL, 0)) is not None and cache.get((CACHED_LEVEL - 1, 0)) is None


def test_a_lost_node_is_recomputed(db: Database) -> None:
    """A node a crash lost (its leaves written, the node not) is computed from its children, as before."""
    with db.session() as s:
        expected = merkle_log(s).inclusion_proof(700, LEAVES)
    with db.write() as s:
        s.connection().execute(delete(LogNode).where(LogNode.level == 2, LogNode.index == 174))  # type: ignore[arg-type]
    with db.session() as s:
        assert s.get(LogNode, (2, 174)) is None  # leaves 696-699: a sibling on 700's path
        assert proof_tree(s, 700, LEAVES).inclusion_proof(700, LEAVES) == expected
