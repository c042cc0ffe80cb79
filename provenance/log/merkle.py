"""RFC 9162 (CT v2) Merkle tree over SM3: hashing, proof verification, and an append-only log.

Leaf hash = SM3(0x00 ‖ entry), node hash = SM3(0x01 ‖ left ‖ right), empty tree = SM3(""). The tree shape is
RFC 9162 §2.1.1 (left subtree = largest power of two below n), so proofs follow §2.1.3 and §2.1.4 exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from provenance.abc import LogStorage
from provenance.crypto.sm3 import sm3, sm3_each
from provenance.errors import ConsistencyInvalid, NotFound, ProofInvalid, VerificationError

HASH_SIZE = 32


@dataclass(frozen=True, kw_only=True)
class TreeHasher:
    """The RFC 9162 hashing scheme over one hash function (SM3 in this project)."""

    digest: Callable[[bytes], bytes]
    size: int = HASH_SIZE

    def empty_root(self) -> bytes:
        """Root of the tree with no leaves: the hash of the empty string."""
        return self.digest(b"")

    def leaf(self, entry: bytes) -> bytes:
        """Leaf hash of ``entry``: H(0x00 ‖ entry)."""
        return self.digest(b"\x00" + entry)

    def node(self, left: bytes, right: bytes) -> bytes:
        """Interior node hash: H(0x01 ‖ left ‖ right)."""
        return self.digest(b"\x01" + left + right)

    def climb(self, fn: int, sn: int, r: bytes, proof: Sequence[bytes]) -> tuple[bytes, int]:
        """RFC 9162 §2.1.3.2's loop: from node ``r`` at (fn, sn) up through ``proof``, to (the root, sn)."""
        for p in proof:
            fn, sn, r = self.step(fn, sn, r, p)
        return r, sn

    def step(self, fn: int, sn: int, r: bytes, p: bytes) -> tuple[int, int, bytes]:
        """One turn of that loop: node ``r`` and its sibling ``p`` to their parent."""
        if fn & 1 or fn == sn:
            r = self.node(p, r)
            # On the right edge a node may have no sibling at some levels: skip those levels.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = self.node(r, p)
        return fn >> 1, sn >> 1, r


SM3_HASHER = TreeHasher(digest=sm3)


@dataclass(frozen=True, kw_only=True)
class MemoTreeHasher(TreeHasher):
    """A TreeHasher that hashes each interior node once: for verifying many proofs of one tree.

    The proofs of an export's bundles climb the same tree: leaf by leaf they meet the nodes their
    neighbours' proofs computed, so with every node remembered (by its exact input: a pure function, no
    trust in it) n proofs cost about n node hashes, the tree rebuilt once, instead of n log n; and a proof
    climbs only to the first node a neighbour's climb passed with the same hashes above it. Bounded: past
    ``limit`` nodes (``climb_limit`` climbs) the memory starts afresh. Threads may share one: a race only
    hashes a node twice.
    """

    digest: Callable[[bytes], bytes] = sm3
    limit: int = 1 << 18
    climb_limit: int = 1 << 15  # each holds a proof's upper part (~300 bytes): ~10 MB
    _memo: dict[bytes, bytes] = field(default_factory=dict, init=False, compare=False, hash=False)
    # (fn, sn, node, rest of the proof) -> (root, sn): where a climb from that point ends, for proofs that
    # meet at a node an earlier proof passed with the same hashes above it (neighbouring leaves share all
    # but their lowest levels), so each proof climbs only to the first node its neighbours reached.
    _climbs: dict[tuple[int, int, bytes, tuple[bytes, ...]], tuple[bytes, int]] = field(
        default_factory=dict, init=False, compare=False, hash=False
    )

    def node(self, left: bytes, right: bytes) -> bytes:
        data = b"\x01" + left + right
        value = self._memo.get(data)
        if value is None:
            if len(self._memo) >= self.limit:
                self._memo.clear()
            value = self._memo[data] = self.digest(data)
        return value

    def climb(self, fn: int, sn: int, r: bytes, proof: Sequence[bytes]) -> tuple[bytes, int]:
        """The base climb, remembered by its exact input at every level (a pure function: no trust in what
        is remembered, the same input gives the same output); stops at the first point climbed before."""
        rest = proof if type(proof) is tuple else tuple(proof)
        climbs, seen = self._climbs, []
        end = None
        for i, p in enumerate(rest):
            point = (fn, sn, r, rest[i:])
            end = climbs.get(point)
            if end is not None:
                break
            seen.append(point)
            fn, sn, r = self.step(fn, sn, r, p)
        if end is None:
            end = (r, sn)
        if len(climbs) + len(seen) > self.climb_limit:
            climbs.clear()
        for point in seen:
            climbs[point] = end
        return end


def leaf_hash(entry: bytes) -> bytes:
    """SM3 leaf hash of ``entry``: SM3(0x00 ‖ entry)."""
    return SM3_HASHER.leaf(entry)


def node_hash(left: bytes, right: bytes) -> bytes:
    """SM3 interior node hash: SM3(0x01 ‖ left ‖ right)."""
    return SM3_HASHER.node(left, right)


def empty_root() -> bytes:
    """Root of the empty tree: SM3 of the empty string."""
    return SM3_HASHER.empty_root()


def _split(n: int) -> int:
    """Largest power of two strictly below ``n`` (n >= 2): the size of the left subtree."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes], *, hasher: TreeHasher = SM3_HASHER) -> bytes:
    """Naive RFC 9162 §2.1.1 MTH over all the leaf hashes (O(n); the reference the log is tested against)."""

    def mth(start: int, end: int) -> bytes:
        n = end - start
        if n == 1:
            return leaf_hashes[start]
        k = _split(n)
        return hasher.node(mth(start, start + k), mth(start + k, end))

    if not leaf_hashes:
        return hasher.empty_root()
    return mth(0, len(leaf_hashes))


def items_root(entries: Sequence[bytes]) -> bytes:
    """The Merkle root of a batch's items (their leaf entries, in order): what a batch record's signed
    payload names (``env.batch``'s ``root``; docs/formats.md, Sensor batches).

    Level by level, a level's odd last node carried up unpaired: the RFC 9162 shape
    (``root_from_leaf_hashes``, tested equal), each level hashed in one pass."""
    if not entries:
        return empty_root()
    level = sm3_each(b"\x00", entries)
    while len(level) > 1:
        pairs = sm3_each(b"\x01", [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)])
        if len(level) % 2:
            pairs.append(level[-1])
        level = pairs
    return level[0]


def root_and_inclusion_proofs(
    leaf_hashes: Sequence[bytes], *, hasher: TreeHasher = SM3_HASHER
) -> tuple[bytes, list[list[bytes]]]:
    """The MTH of a whole (small) tree and every leaf's RFC 9162 §2.1.3.1 inclusion proof, in one pass.

    PATH(m, D[0:n]) is PATH(m, D[0:k]) : MTH(D[k:n]) for m < k, else PATH(m - k, D[k:n]) : MTH(D[0:k]):
    each subtree's root is appended to the proofs of the leaves beside it, n log n list appends and n - 1
    hashes in all, where one proof at a time would recompute the subtree roots for every leaf.
    """
    if not leaf_hashes:
        raise ValueError("a tree without leaves has no inclusion proofs")

    def build(start: int, end: int) -> tuple[bytes, list[list[bytes]]]:
        if end - start == 1:
            return leaf_hashes[start], [[]]
        k = start + _split(end - start)
        left, left_proofs = build(start, k)
        right, right_proofs = build(k, end)
        for p in left_proofs:
            p.append(right)
        for p in right_proofs:
            p.append(left)
        return hasher.node(left, right), left_proofs + right_proofs

    return build(0, len(leaf_hashes))


# --- verification ------------------------------------------------------------------------------------


def _inclusion_shape(index: int, tree_size: int) -> tuple[int, int]:
    """(inner, border): proof hashes below and above the point where the leaf's path leaves the right edge."""
    inner = (index ^ (tree_size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _check_hash(value: bytes, what: str, hasher: TreeHasher, error: type[VerificationError]) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != hasher.size:
        got = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise error(f"{what} is {got} bytes, expected {hasher.size}")


def root_from_inclusion_proof(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], *, hasher: TreeHasher = SM3_HASHER
) -> bytes:
    """Root implied by an inclusion proof (RFC 9162 §2.1.3.2); raises ProofInvalid if it is malformed."""
    details = {"index": index, "tree_size": tree_size}
    if index < 0 or tree_size < 0 or index >= tree_size:
        raise ProofInvalid(f"leaf index {index} is not below tree size {tree_size}", details=details)
    inner, border = _inclusion_shape(index, tree_size)
    if len(proof) != inner + border:
        raise ProofInvalid(
            f"inclusion proof has {len(proof)} hashes, expected {inner + border} "
            f"for leaf {index} of tree size {tree_size}",
            details=details,
        )
    _check_hash(leaf, "leaf hash", hasher, ProofInvalid)
    size = hasher.size
    for i, p in enumerate(proof):
        if type(p) is not bytes or len(p) != size:  # the message is formatted only for a bad hash
            _check_hash(p, f"inclusion proof hash {i}", hasher, ProofInvalid)

    r, sn = hasher.climb(index, tree_size - 1, bytes(leaf), proof)
    if sn != 0:  # unreachable after the length check; kept because the RFC makes it the final condition
        raise ProofInvalid("inclusion proof is too short for the tree size", details=details)
    return r


def verify_inclusion(
    leaf: bytes,
    index: int,
    tree_size: int,
    proof: Sequence[bytes],
    root: bytes,
    *,
    hasher: TreeHasher = SM3_HASHER,
) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``tree_size`` with ``root``; raises ProofInvalid."""
    _check_hash(root, "root", hasher, ProofInvalid)
    computed = root_from_inclusion_proof(leaf, index, tree_size, proof, hasher=hasher)
    if computed != root:
        raise ProofInvalid(
            f"inclusion proof for leaf {index} does not lead to the root of tree size {tree_size}",
            details={"index": index, "tree_size": tree_size, "computed_root": computed.hex()},
        )


def consistency_proof_length(size1: int, size2: int) -> int:
    """Number of hashes in the consistency proof from size1 to size2 (0 < size1 < size2): a proof of
    another length is malformed, whoever served it, and proves nothing about the log."""
    shift = (size1 & -size1).bit_length() - 1  # trailing zeros: levels the old tree shares whole
    inner, border = _inclusion_shape(size1 - 1, size2)
    seeded = 0 if size1 == 1 << shift else 1  # the old root is itself a node only when size1 is 2**k
    return seeded + inner - shift + border


def verify_consistency(
    size1: int,
    size2: int,
    root1: bytes,
    root2: bytes,
    proof: Sequence[bytes],
    *,
    hasher: TreeHasher = SM3_HASHER,
) -> None:
    """Check that tree (size2, root2) extends tree (size1, root1) per RFC 9162 §2.1.4.2."""
    details = {"size1": size1, "size2": size2}
    if size1 < 0 or size2 < 0:
        raise ConsistencyInvalid(f"tree sizes must not be negative ({size1}, {size2})", details=details)
    if size1 > size2:
        raise ConsistencyInvalid(f"first tree size {size1} exceeds second tree size {size2}", details=details)
    _check_hash(root1, "first root", hasher, ConsistencyInvalid)
    _check_hash(root2, "second root", hasher, ConsistencyInvalid)
    for i, c in enumerate(proof):
        _check_hash(c, f"consistency proof hash {i}", hasher, ConsistencyInvalid)

    if size1 == size2 or size1 == 0:
        if proof:
            raise ConsistencyInvalid(
                f"consistency proof from size {size1} to {size2} must be empty, got {len(proof)} hashes",
                details=details,
            )
        if size1 == size2 and root1 != root2:
            raise ConsistencyInvalid(f"roots differ for the same tree size {size1}", details=details)
        if size1 == 0 and root1 != hasher.empty_root():
            raise ConsistencyInvalid("first root is not the empty-tree root for size 0", details=details)
        return

    expected = consistency_proof_length(size1, size2)
    if len(proof) != expected:
        raise ConsistencyInvalid(
            f"consistency proof has {len(proof)} hashes, expected {expected} from size {size1} to {size2}",
            details=details,
        )

    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, bytes(root1))
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if fn & 1 or fn == sn:
            fr = hasher.node(c, fr)
            sr = hasher.node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = hasher.node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check; the RFC's final condition
        raise ConsistencyInvalid("consistency proof is too short for the tree sizes", details=details)
    if fr != root1:
        raise ConsistencyInvalid(
            f"consistency proof does not lead to the first root (size {size1})", details=details
        )
    if sr != root2:
        raise ConsistencyInvalid(
            f"consistency proof does not lead to the second root (size {size2})", details=details
        )


# --- the log -----------------------------------------------------------------------------------------


class InMemoryLogStorage:
    """LogStorage in process memory: one list per tree level (level 0 holds the leaf hashes)."""

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = [[]]

    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def append_leaf_hash(self, leaf_hash: bytes) -> int:
        """Append a leaf hash and return its index."""
        self._levels[0].append(leaf_hash)
        return len(self._levels[0]) - 1

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at ``index``; raises NotFound beyond the log."""
        if not 0 <= index < len(self._levels[0]):
            raise NotFound(f"no leaf {index} in a log of size {len(self._levels[0])}")
        return self._levels[0][index]

    def get_node(self, level: int, index: int) -> bytes | None:
        """The stored hash of complete subtree (level, index), or None."""
        if level < 0 or index < 0 or level >= len(self._levels) or index >= len(self._levels[level]):
            return None
        return self._levels[level][index]

    def put_node(self, level: int, index: int, value: bytes) -> None:
        """Store the hash of complete subtree (level, index); nodes of a level arrive in index order."""
        if level < 1:
            raise ValueError("level 0 holds leaf hashes; use append_leaf_hash")
        while len(self._levels) <= level:
            self._levels.append([])
        row = self._levels[level]
        if index == len(row):
            row.append(value)
        elif 0 <= index < len(row):
            row[index] = value
        else:
            raise ValueError(f"node ({level}, {index}) would leave a gap at index {len(row)}")


class MerkleLog:
    """Append-only RFC 9162 tree over a LogStorage; every complete subtree is stored as it closes."""

    def __init__(self, *, storage: LogStorage, hasher: TreeHasher = SM3_HASHER) -> None:
        self._storage = storage
        self._hasher = hasher
        # One writer at a time; readers need no lock because complete subtrees never change.
        self._append_lock = threading.Lock()

    @classmethod
    def in_memory(cls, *, hasher: TreeHasher = SM3_HASHER) -> MerkleLog:
        """A log backed by a fresh InMemoryLogStorage."""
        return cls(storage=InMemoryLogStorage(), hasher=hasher)

    @property
    def size(self) -> int:
        """Number of leaves in the log."""
        return self._storage.size()

    @property
    def hasher(self) -> TreeHasher:
        """The hashing scheme of this log."""
        return self._hasher

    def append(self, entry: bytes) -> int:
        """Append an entry (hashed as a leaf) and return its index."""
        return self.append_leaf_hash(self._hasher.leaf(entry))

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append an already computed leaf hash and return its index: O(log n) reads and writes."""
        if len(leaf) != self._hasher.size:
            raise ValueError(f"leaf hash is {len(leaf)} bytes, expected {self._hasher.size}")
        with self._append_lock:
            index = self._storage.append_leaf_hash(bytes(leaf))
            # Store every subtree this leaf completes, so later proofs only read, never recompute.
            level, i, node = 0, index, bytes(leaf)
            while i & 1:
                node = self._hasher.node(self._subtree(level, i - 1), node)
                level += 1
                i >>= 1
                self._storage.put_node(level, i, node)
            return index

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        return self._storage.leaf_hash(index)

    def root(self, size: int | None = None) -> bytes:
        """Root of the tree of the first ``size`` leaves (default: the whole log)."""
        size = self._check_size(self.size if size is None else size)
        if size == 0:
            return self._hasher.empty_root()
        return self._range(0, size)

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        """RFC 9162 §2.1.3.1 inclusion proof of leaf ``index`` in the tree of ``tree_size``, leaf to root."""
        self._check_size(tree_size)
        if not 0 <= index < tree_size:
            raise NotFound(f"no leaf {index} in a tree of size {tree_size}")
        siblings: list[bytes] = []
        start, end = 0, tree_size
        while end - start > 1:
            mid = start + _split(end - start)
            if index < mid:
                siblings.append(self._range(mid, end))
                end = mid
            else:
                siblings.append(self._range(start, mid))
                start = mid
        siblings.reverse()  # collected root-down; the proof lists them leaf-up
        return siblings

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 §2.1.4.1 consistency proof from tree size ``size1`` to ``size2``."""
        self._check_size(size2)
        if not 0 <= size1 <= size2:
            raise NotFound(f"no consistency proof from size {size1} to size {size2}")
        if size1 == 0:
            return []
        hashes: list[bytes] = []
        start, end, m, whole = 0, size2, size1, True
        while True:
            n = end - start
            if m == n:
                if not whole:  # the old root is not a node we can rebuild from the rest: include it
                    hashes.append(self._range(start, end))
                break
            k = _split(n)
            if m <= k:
                hashes.append(self._range(start + k, end))
                end = start + k
            else:
                hashes.append(self._range(start, start + k))
                start, m, whole = start + k, m - k, False
        hashes.reverse()
        return hashes

    def _check_size(self, size: int) -> int:
        if not 0 <= size <= self.size:
            raise NotFound(f"no tree of size {size} in a log of size {self.size}")
        return size

    def _subtree(self, level: int, index: int) -> bytes:
        """Hash of the complete subtree of 2**level leaves starting at leaf index * 2**level."""
        if level == 0:
            return self._storage.leaf_hash(index)
        cached = self._storage.get_node(level, index)
        if cached is not None:
            return cached
        # Missing only if storage lost a write (e.g. a crash between leaf and node writes); still correct.
        return self._hasher.node(self._subtree(level - 1, 2 * index), self._subtree(level - 1, 2 * index + 1))

    def _range(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end) where start is aligned as in the RFC recursion: O(log n) reads."""
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self._subtree(n.bit_length() - 1, start // n)
        k = _split(n)
        return self._hasher.node(self._range(start, start + k), self._range(start + k, end))
