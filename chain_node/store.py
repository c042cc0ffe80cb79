"""LMDB storage: py-evm's database API plus the node's own tables, committed together per block.

Why LMDB and how a block becomes durable: see ``docs/design/node-storage.md``. In short, py-evm writes
into an in-memory overlay (:class:`EvmDB`); the miner then commits that overlay and every index of the
block (receipts, logs, seal, head pointer, mempool removals) in ONE LMDB write transaction, so a crash
leaves either the whole block or none of it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import lmdb
from eth.abc import AtomicWriteBatchAPI
from eth.db.atomic import AtomicDBWriteBatch
from eth.db.backends.base import BaseAtomicDB

# One named LMDB database per table; keys documented in docs/design/node-storage.md.
TABLES = (
    "evm",  # py-evm: trie nodes, headers, bodies, canonical index (its own key schema)
    "pending",  # tx hash -> raw signed tx: the durable mempool
    "blocks",  # u64 number -> block JSON (tx hashes only)
    "bhash",  # block hash -> u64 number
    "txs",  # tx hash -> tx JSON (as eth_getTransactionByHash returns it)
    "rcpts",  # tx hash -> receipt JSON
    "logs",  # u64 number ‖ u32 log index in block -> log JSON
    "ix_addr",  # address(20) ‖ u64 number ‖ u32 log index -> b""
    "ix_topic",  # u8 position ‖ topic(32) ‖ u64 number ‖ u32 log index -> b""
    "ix_at",  # address(20) ‖ topic0(32) ‖ u64 number ‖ u32 log index -> b"" (the usual event filter)
    "seals",  # u64 number -> seal JSON (provenance.chain.seal.Seal)
    "meta",  # b"head" -> u64 number; b"genesis" -> genesis JSON
)

SyncMode = Literal["full", "os"]
Write = tuple[str, bytes, bytes | None]  # (table, key, value); a value of None deletes the key

_MAP_SIZE = 64 << 30  # address space only; LMDB grows the file as needed


def u64(n: int) -> bytes:
    """Big-endian u64, so LMDB's byte order is numeric order."""
    return struct.pack(">Q", n)


def u32(n: int) -> bytes:
    """Big-endian u32."""
    return struct.pack(">I", n)


def log_key(number: int, log_index: int) -> bytes:
    """Key of one log: block number then its index within the block."""
    return struct.pack(">QI", number, log_index)


class Store:
    """The LMDB environment with the node's named tables."""

    def __init__(self, path: Path, *, sync: SyncMode = "full") -> None:
        path.mkdir(parents=True, exist_ok=True)
        # "full": every commit fsyncs data and meta before returning, so a returned transaction hash
        # survives power loss. "os": no fsync; a commit is in the OS page cache when it returns, so it
        # survives kill -9 and process crashes, not power loss. See docs/design/node-storage.md.
        self.env = lmdb.open(
            str(path / "chain.lmdb"),
            map_size=_MAP_SIZE,
            max_dbs=len(TABLES) + 1,
            subdir=True,
            sync=sync == "full",
            metasync=sync == "full",
        )
        self.tables: dict[str, Any] = {name: self.env.open_db(name.encode()) for name in TABLES}

    def db(self, name: str) -> Any:
        """Handle of a named table."""
        return self.tables[name]

    def get(self, table: str, key: bytes) -> bytes | None:
        """Read one value in its own read transaction."""
        with self.env.begin(db=self.tables[table], buffers=False) as txn:
            value = txn.get(key)
        return None if value is None else bytes(value)

    def put(self, table: str, key: bytes, value: bytes) -> None:
        """Write one value durably (its own write transaction)."""
        with self.env.begin(write=True) as txn:
            txn.put(key, value, db=self.tables[table])

    def delete(self, table: str, key: bytes) -> None:
        """Delete one value durably."""
        with self.env.begin(write=True) as txn:
            txn.delete(key, db=self.tables[table])

    def items(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """All (key, value) of a table whose key starts with ``prefix``, in key order."""
        with self.env.begin(db=self.tables[table]) as txn:
            cur = txn.cursor()
            if not cur.set_range(prefix):
                return
            for k, v in cur:
                if not k.startswith(prefix):
                    break
                yield bytes(k), bytes(v)

    @contextmanager
    def read(self) -> Iterator[lmdb.Transaction]:
        """A read transaction: one consistent snapshot for a whole request."""
        with self.env.begin(buffers=False) as txn:
            yield txn

    def commit(self, writes: Iterable[Write], *, overlay: EvmDB | None = None) -> None:
        """Write ``writes``, after ``overlay``'s buffered py-evm writes, in one durable LMDB transaction."""
        with self.env.begin(write=True) as txn:
            if overlay is not None:
                overlay.write_overlay(txn)
            for table, k, v in writes:
                if v is None:
                    txn.delete(k, db=self.db(table))
                else:
                    txn.put(k, v, db=self.db(table))

    def close(self) -> None:
        """Close the environment (flushes nothing: every commit is already synced)."""
        self.env.close()


class TableView:
    """A :class:`provenance.abc.KeyValueStore` over one table (tools and tests use it offline)."""

    def __init__(self, store: Store, table: str) -> None:
        self._store = store
        self._table = table

    def get(self, key: bytes) -> bytes | None:
        """Value or None."""
        return self._store.get(self._table, key)

    def put(self, key: bytes, value: bytes) -> None:
        """Durable write."""
        self._store.put(self._table, key, value)

    def delete(self, key: bytes) -> None:
        """Durable delete."""
        self._store.delete(self._table, key)

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Items under ``prefix``."""
        return self._store.items(self._table, prefix)


class EvmDB(BaseAtomicDB):
    """py-evm's AtomicDatabaseAPI over the ``evm`` table, writes buffered until :meth:`commit`.

    Reads see the overlay first, then committed LMDB data. With ``read_only`` the overlay is refused:
    the RPC's read-only chain uses such an instance so it only ever sees committed blocks.
    """

    def __init__(self, store: Store, *, read_only: bool = False) -> None:
        self._store = store
        self._db = store.db("evm")
        self._overlay: dict[bytes, bytes | None] = {}
        self._read_only = read_only
        self._txn: lmdb.Transaction | None = None

    # -- snapshot control ------------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Serve reads from one LMDB read transaction for the duration (consistency and speed)."""
        with self._store.env.begin(db=self._db, buffers=False) as txn:
            self._txn = txn
            try:
                yield
            finally:
                self._txn = None

    def _raw_get(self, key: bytes) -> bytes | None:
        if self._txn is not None:
            v = self._txn.get(key)
        else:
            with self._store.env.begin(db=self._db, buffers=False) as txn:
                v = txn.get(key)
        return None if v is None else bytes(v)

    # -- DatabaseAPI -----------------------------------------------------------------------------------

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._overlay:
            v = self._overlay[key]
            if v is None:
                raise KeyError(key)
            return v
        raw = self._raw_get(key)
        if raw is None:
            raise KeyError(key)
        return raw

    def __setitem__(self, key: bytes, value: bytes) -> None:
        if self._read_only:
            raise PermissionError("read-only EVM view")
        self._overlay[bytes(key)] = bytes(value)

    def __delitem__(self, key: bytes) -> None:
        if self._read_only:
            raise PermissionError("read-only EVM view")
        if not self._exists(key):
            raise KeyError(key)
        self._overlay[bytes(key)] = None

    def _exists(self, key: bytes) -> bool:
        if key in self._overlay:
            return self._overlay[key] is not None
        return self._raw_get(key) is not None

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicWriteBatchAPI]:
        """py-evm's batch: lands in the overlay on success (the overlay itself is the real atomic unit)."""
        with AtomicDBWriteBatch._commit_unless_raises(self) as batch:
            yield batch

    # -- block commit ----------------------------------------------------------------------------------

    def write_overlay(self, txn: lmdb.Transaction) -> None:
        """Write the overlay into an open write transaction (the caller commits)."""
        for k, v in self._overlay.items():
            if v is None:
                txn.delete(k, db=self._db)
            else:
                txn.put(k, v, db=self._db)

    def clear_overlay(self) -> None:
        """Forget buffered writes (after commit, or to roll back a failed block)."""
        self._overlay = {}
