"""The log as C2SP tlog-tiles: tile paths, entry bundles, and tree hashes computed from tiles (SM3).

A tile at level L holds up to 256 consecutive hashes of complete subtrees of 256**L leaves (level 0: the leaf
hashes); hash i of tile N at level L is MTH(D[(N*256 + i) * 256**L : (N*256 + i + 1) * 256**L]). A *partial*
tile of width W < 256 is served at ``.p/<W>`` and never changes either. Entry bundles hold the log entries of
the level-0 tile, each prefixed by its length as a big-endian uint16. Hashing is RFC 9162 with SM3
(``provenance.log.merkle``), not the SHA-256 of the C2SP text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from provenance.errors import FormatError
from provenance.log.merkle import HASH_SIZE, SM3_HASHER, TreeHasher

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
MAX_ENTRY = 0xFFFF

_INDEX_PART = re.compile(r"x[0-9]{3}")
_LAST_PART = re.compile(r"[0-9]{3}")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_LEVEL = re.compile(r"0|[1-9][0-9]?")


@dataclass(frozen=True, slots=True, order=True)
class Tile:
    """A tile: ``level`` (``-1`` for an entry bundle), index ``n`` and width ``w`` (1..256; 256 is full)."""

    level: int
    n: int
    w: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not -1 <= self.level <= MAX_LEVEL or self.n < 0 or not 1 <= self.w <= TILE_WIDTH:
            raise FormatError(f"no tile at level {self.level}, index {self.n}, width {self.w}")

    @property
    def entries(self) -> bool:
        """Whether this is an entry bundle (of the level-0 tile with the same index and width)."""
        return self.level == -1

    def path(self) -> str:
        """The path below the log's prefix: ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]``."""
        level = "entries" if self.entries else str(self.level)
        partial = "" if self.w == TILE_WIDTH else f".p/{self.w}"
        return f"tile/{level}/{encode_index(self.n)}{partial}"

    @classmethod
    def parse(cls, path: str) -> Tile:
        """The tile of a path (as :meth:`path` writes it, nothing else); raises FormatError."""
        parts = path.split("/")
        if len(parts) < 3 or parts[0] != "tile":
            raise FormatError(f"{path[:80]!r} is not a tile path")
        if parts[1] == "entries":
            level = -1
        elif _LEVEL.fullmatch(parts[1]) and int(parts[1]) <= MAX_LEVEL:
            level = int(parts[1])
        else:
            raise FormatError(f"tile level {parts[1][:10]!r} is not 'entries' or 0 to {MAX_LEVEL}")
        rest, w = parts[2:], TILE_WIDTH
        if len(rest) >= 2 and rest[-2].endswith(".p"):
            if not _WIDTH.fullmatch(rest[-1]) or int(rest[-1]) >= TILE_WIDTH:
                raise FormatError(f"partial tile width {rest[-1][:10]!r} is not 1 to 255")
            w = int(rest[-1])
            rest = [*rest[:-2], rest[-2].removesuffix(".p")]
        return cls(level=level, n=decode_index(rest), w=w)


def encode_index(n: int) -> str:
    """A tile index as path elements of three digits, all but the last prefixed by ``x`` (1234067:
    ``x001/x234/067``)."""
    if n < 0:
        raise FormatError(f"tile index {n} is negative")
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def decode_index(parts: Sequence[str]) -> int:
    """The inverse of :func:`encode_index`, split into its elements; only its own (canonical) output."""
    if (
        not parts
        or not _LAST_PART.fullmatch(parts[-1])
        or not all(_INDEX_PART.fullmatch(p) for p in parts[:-1])
    ):
        raise FormatError(f"tile index {'/'.join(parts)[:40]!r} is not x-prefixed groups of three digits")
    if len(parts) > 1 and parts[0] == "x000":
        raise FormatError("tile index has a leading x000 group")
    n = 0
    for p in parts:
        n = n * 1000 + int(p.removeprefix("x"))
    return n


def tiles_for(level: int, start: int, end: int, tree_size: int) -> list[Tile]:
    """The tiles of ``level`` (``-1``: entry bundles) holding hashes ``[start, end)`` of that level, at the
    widths a tree of ``tree_size`` has them."""
    stored = tree_size >> (TILE_HEIGHT * max(level, 0))  # hashes of this level in the tree
    if not 0 <= start <= end <= stored:
        raise ValueError(f"hashes [{start}, {end}) of level {level} are not in a tree of size {tree_size}")
    out = []
    for n in range(start // TILE_WIDTH, (end + TILE_WIDTH - 1) // TILE_WIDTH):
        out.append(Tile(level=level, n=n, w=min(TILE_WIDTH, stored - n * TILE_WIDTH)))
    return out


# --- tile and bundle contents ----------------------------------------------------------------------


def split_hashes(tile: Tile, data: bytes) -> list[bytes]:
    """The hashes of a tile's bytes; raises FormatError unless it is exactly ``w`` hashes."""
    if len(data) != tile.w * HASH_SIZE:
        raise FormatError(
            f"{tile.path()} is {len(data)} bytes, expected {tile.w * HASH_SIZE} ({tile.w} hashes)",
            details={"tile": tile.path()},
        )
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry prefixed by its length as a big-endian uint16."""
    out = bytearray()
    for e in entries:
        if len(e) > MAX_ENTRY:
            raise FormatError(
                f"a log entry of {len(e)} bytes does not fit an entry bundle (at most {MAX_ENTRY})"
            )
        out += len(e).to_bytes(2, "big") + e
    return bytes(out)


def decode_bundle(tile: Tile, data: bytes) -> list[bytes]:
    """The entries of an entry bundle; raises FormatError unless it holds exactly ``w`` entries."""
    entries: list[bytes] = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise FormatError(f"{tile.path()} ends inside a length prefix", details={"tile": tile.path()})
        n = int.from_bytes(data[i : i + 2], "big")
        if i + 2 + n > len(data):
            raise FormatError(
                f"{tile.path()} ends inside entry {len(entries)}", details={"tile": tile.path()}
            )
        entries.append(data[i + 2 : i + 2 + n])
        i += 2 + n
    if len(entries) != tile.w:
        raise FormatError(
            f"{tile.path()} holds {len(entries)} entries, expected {tile.w}", details={"tile": tile.path()}
        )
    return entries


# --- tree hashes from tiles ------------------------------------------------------------------------


def _perfect_subtrees(size: int) -> Iterator[tuple[int, int]]:
    """(start, height) of the perfect subtrees whose roots, folded right to left, give MTH of ``size``."""
    start = 0
    for height in range(size.bit_length() - 1, -1, -1):
        if size >> height & 1:
            yield start, height
            start += 1 << height


def _mth(hashes: Sequence[bytes], hasher: TreeHasher) -> bytes:
    """MTH over a power-of-two count of sibling hashes."""
    level = list(hashes)
    while len(level) > 1:
        level = [hasher.node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def tree_hash(
    size: int, tile_hashes: Callable[[Tile], list[bytes]], *, tree_size: int, hasher: TreeHasher = SM3_HASHER
) -> bytes:
    """MTH of the first ``size`` leaves, from the tiles a tree of ``tree_size`` (>= size) has.

    Each perfect subtree of height ``8L + r`` is MTH of ``2**r`` consecutive hashes of one level-L tile, so
    at most one tile per level and subtree is read (``tile_hashes`` fetches and splits a tile).
    """
    if not 0 <= size <= tree_size:
        raise ValueError(f"size {size} is not within tree size {tree_size}")
    if size == 0:
        return hasher.empty_root()
    roots = []
    for start, height in _perfect_subtrees(size):
        level, r = divmod(height, TILE_HEIGHT)
        first = start >> (TILE_HEIGHT * level)  # index of the subtree's first hash at this level
        [tile] = tiles_for(level, first, first + (1 << r), tree_size)
        hashes = tile_hashes(tile)
        offset = first - tile.n * TILE_WIDTH
        roots.append(_mth(hashes[offset : offset + (1 << r)], hasher))
    root = roots[-1]
    for left in reversed(roots[:-1]):
        root = hasher.node(left, root)
    return root


class CompactRange:
    """The roots of the perfect subtrees of a tree's leaves so far (RFC 9162 shape): append leaves one at a
    time, read the root at any size; ``on_node`` hears of every complete subtree as it closes."""

    def __init__(
        self,
        *,
        size: int = 0,
        nodes: Sequence[bytes] = (),
        hasher: TreeHasher = SM3_HASHER,
        on_node: Callable[[int, int, bytes], None] | None = None,
    ) -> None:
        if len(nodes) != size.bit_count():
            raise ValueError(
                f"a range of {size} leaves has {size.bit_count()} subtree roots, not {len(nodes)}"
            )
        self.size = size
        self.nodes = list(nodes)  # left to right, heights decreasing (the set bits of size, high to low)
        self._hasher = hasher
        self._on_node = on_node

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash."""
        node, height, index = leaf, 0, self.size
        self.size += 1
        while index & 1:  # the leaf closes subtrees as long as it is a right child
            node = self._hasher.node(self.nodes.pop(), node)
            height += 1
            index >>= 1
            if self._on_node is not None:
                self._on_node(height, index, node)
        self.nodes.append(node)

    def root(self) -> bytes:
        """MTH of the leaves appended."""
        if not self.nodes:
            return self._hasher.empty_root()
        root = self.nodes[-1]
        for left in reversed(self.nodes[:-1]):
            root = self._hasher.node(left, root)
        return root
