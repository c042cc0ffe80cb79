"""Tests for provenance.log.tiles: C2SP tlog-tiles paths, widths, entry bundles, tree hashes from tiles."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.errors import FormatError
from provenance.log.merkle import MerkleLog, leaf_hash, root_from_leaf_hashes
from provenance.log.tiles import (
    TILE_WIDTH,
    CompactRange,
    Tile,
    decode_bundle,
    encode_bundle,
    encode_index,
    split_hashes,
    tiles_for,
    tree_hash,
)


def tile_contents(leaves: list[bytes], tile: Tile) -> list[bytes]:
    """What a log serves for ``tile``: MTH of each complete subtree of 256**L leaves it covers."""
    span = TILE_WIDTH**tile.level
    first = tile.n * TILE_WIDTH
    return [root_from_leaf_hashes(leaves[(first + i) * span : (first + i + 1) * span]) for i in range(tile.w)]


def test_index_encoding_is_the_c2sp_one() -> None:
    assert encode_index(1234067) == "x001/x234/067"
    assert encode_index(0) == "000" and encode_index(999) == "999" and encode_index(1000) == "x001/000"
    assert Tile(level=0, n=1234067).path() == "tile/0/x001/x234/067"
    assert Tile(level=2, n=5, w=17).path() == "tile/2/005.p/17"
    assert Tile(level=-1, n=1000, w=3).path() == "tile/entries/x001/000.p/3"


@given(
    st.integers(min_value=-1, max_value=63), st.integers(min_value=0, max_value=10**12), st.integers(1, 256)
)
@settings(max_examples=300, deadline=None)
def test_paths_round_trip(level: int, n: int, w: int) -> None:
    tile = Tile(level=level, n=n, w=w)
    assert Tile.parse(tile.path()) == tile


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/1",
        "tile/0/0001",
        "tile/0/x000/001",
        "tile/0/001/x002",
        "tile/00/001",
        "tile/64/001",
        "tile/0/001.p/256",
        "tile/0/001.p/0",
        "tile/0/001.p/07",
        "tile/data/001",
        "tiles/0/001",
        "tile/0",
        "tile/0/x1/001",
    ],
)
def test_non_canonical_paths_are_refused(path: str) -> None:
    with pytest.raises(FormatError):
        Tile.parse(path)


def test_widths_of_the_c2sp_example_tree() -> None:
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level 0 tile of
    # width 112, one full level 1 tile, one partial level 1 tile of width 17, and one partial level 2 tile
    # of width 1."
    level0 = tiles_for(0, 0, 70_000, 70_000)
    assert (
        len(level0) == 274
        and all(t.w == 256 for t in level0[:-1])
        and level0[-1] == Tile(level=0, n=273, w=112)
    )
    assert tiles_for(1, 0, 70_000 >> 8, 70_000) == [Tile(level=1, n=0), Tile(level=1, n=1, w=17)]
    assert tiles_for(2, 0, 1, 70_000) == [Tile(level=2, n=0, w=1)]
    assert tiles_for(1, 0, 1, 256) == [Tile(level=1, n=0, w=1)]


def test_bundles_round_trip_and_refuse_bad_lengths() -> None:
    entries = [b"", b"a", b"x" * 300]
    tile = Tile(level=-1, n=0, w=3)
    data = encode_bundle(entries)
    assert data[:2] == b"\x00\x00" and data[2:4] == b"\x00\x01" and data[5:7] == (300).to_bytes(2, "big")
    assert decode_bundle(tile, data) == entries
    with pytest.raises(FormatError, match="holds 3 entries, expected 4"):
        decode_bundle(Tile(level=-1, n=0, w=4), data)
    with pytest.raises(FormatError, match="ends inside entry 2"):
        decode_bundle(tile, data[:-1])
    with pytest.raises(FormatError, match="ends inside a length prefix"):
        decode_bundle(tile, data + b"\x00")
    with pytest.raises(FormatError, match="does not fit an entry bundle"):
        encode_bundle([bytes(65536)])
    with pytest.raises(FormatError, match="is 64 bytes, expected 96"):
        split_hashes(Tile(level=0, n=0, w=3), bytes(64))


@pytest.mark.parametrize("size", [1, 2, 3, 255, 256, 257, 511, 512, 513, 65535, 65536, 65537, 70_000])
def test_tree_hash_from_tiles_and_compact_range_match_the_log(size: int) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    log = MerkleLog.in_memory()
    for h in leaves:
        log.append_leaf_hash(h)
    served: dict[Tile, list[bytes]] = {}

    def read(tile: Tile) -> list[bytes]:
        served[tile] = tile_contents(leaves, tile)
        return served[tile]

    for smaller in sorted({size, size - 1, size // 2, 1, 256, 257} & set(range(1, size + 1))):
        assert tree_hash(smaller, read, tree_size=size) == log.root(smaller)
    assert len(served) <= 12  # a handful of tiles, not the leaves
    closed: list[tuple[int, int]] = []
    cr = CompactRange(on_node=lambda h, i, _n: closed.append((h, i)))
    for h in leaves[: size // 2]:
        cr.append(h)
    resumed = CompactRange(size=cr.size, nodes=cr.nodes, on_node=lambda h, i, _n: closed.append((h, i)))
    for h in leaves[size // 2 :]:
        resumed.append(h)
    assert resumed.root() == log.root()
    assert len(closed) == size - size.bit_count()  # one node per merge: every complete internal subtree


@given(st.text(max_size=60))
@settings(max_examples=400, deadline=None)
def test_any_path_parses_or_is_refused_cleanly(path: str) -> None:
    try:
        tile = Tile.parse(path)
    except FormatError:
        return
    assert tile.path() == path  # only canonical paths parse


@given(st.binary(max_size=600), st.integers(1, 256))
@settings(max_examples=400, deadline=None)
def test_any_bundle_bytes_decode_or_are_refused_cleanly(data: bytes, w: int) -> None:
    tile = Tile(level=-1, n=0, w=w)
    try:
        entries = decode_bundle(tile, data)
    except FormatError:
        return
    assert len(entries) == w and encode_bundle(entries) == data
