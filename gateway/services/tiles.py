"""The log as C2SP tlog-tiles, read from the tree the sequencer stores (the format: ``provenance.log.tiles``).

The sequencer writes every leaf hash and every complete subtree's hash (``log_leaf``, ``log_node``) in the
transaction that sequences the records, so a tile is a range read: level 0 is leaf hashes, level L the nodes
of height 8L, and an entry bundle the signed records of the level-0 range. Only tiles within the newest
signed checkpoint are served; within it, no stored hash ever changes, so every tile is immutable.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from gateway.models import CheckpointRow, LogLeaf, LogNode, Record
from gateway.services.workers import signed_record
from provenance.errors import NotFound
from provenance.log.tiles import TILE_HEIGHT, TILE_WIDTH, Tile, encode_bundle


def tile_bytes(s: Session, tile: Tile) -> bytes:
    """The bytes of ``tile``; NOT_FOUND beyond the newest signed checkpoint."""
    signed = int(s.exec(select(func.max(CheckpointRow.size))).one() or 0)
    level = max(tile.level, 0)
    first, end = tile.n * TILE_WIDTH, tile.n * TILE_WIDTH + tile.w
    if end << (TILE_HEIGHT * level) > signed:
        raise NotFound(
            f"{tile.path()} is not within the newest signed checkpoint (size {signed})",
            details={"tile": tile.path(), "checkpoint_size": signed},
        )
    if tile.entries:
        rows = s.exec(
            select(Record)
            .where(col(Record.leaf_index) >= first, col(Record.leaf_index) < end)
            .order_by(col(Record.leaf_index))
        ).all()
        data = encode_bundle([signed_record(r).leaf_entry() for r in rows])
        found = len(rows)
    elif tile.level == 0:
        leaves = s.exec(
            select(LogLeaf.hash)
            .where(col(LogLeaf.index) >= first, col(LogLeaf.index) < end)
            .order_by(col(LogLeaf.index))
        ).all()
        data, found = b"".join(leaves), len(leaves)
    else:
        nodes = s.exec(
            select(LogNode.hash)
            .where(
                LogNode.level == TILE_HEIGHT * tile.level,
                col(LogNode.index) >= first,
                col(LogNode.index) < end,
            )
            .order_by(col(LogNode.index))
        ).all()
        data, found = b"".join(nodes), len(nodes)
    if found != tile.w:  # only if storage lost rows the checkpoint covers
        raise NotFound(
            f"{tile.path()}: the log holds {found} of its {tile.w} hashes", details={"tile": tile.path()}
        )
    return data
