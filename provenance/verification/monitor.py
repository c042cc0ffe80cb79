"""``provenance monitor``: follow the log through its tiles and check everything it publishes.

From the state of its last run (a checkpoint it verified and the compact range of that tree), each step
reads ``<tiles>/checkpoint`` and checks, naming whatever is wrong:

- the checkpoint's SM2 signature by the pinned log key, and the witness quorum if the trust file sets one;
- that it extends the checkpoint held: same size, same root; a smaller size or a tree that does not contain
  the one held is a fork (``LOG_FORK``);
- the new entries: each entry bundle against its level-0 tile, the tree recomputed from the entries against
  the checkpoint root, every higher tile hash against the subtree it stands for (``TILE_INVALID``);
- every new entry: a canonical signed record whose SM2 signature verifies with a key its organisation held
  at the record's time (``ENTRY_INVALID``).

The state moves on only past a checkpoint that passed every check.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provenance.errors import (
    CheckpointInvalid,
    FormatError,
    ProvenanceError,
    SignatureInvalid,
    VerificationError,
    WitnessQuorumMissing,
)
from provenance.files import read_bytes
from provenance.log.checkpoint import Checkpoint, NoteVerifier, verify_checkpoint
from provenance.log.merkle import leaf_hash
from provenance.log.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    CompactRange,
    Tile,
    decode_bundle,
    split_hashes,
    tiles_for,
)
from provenance.log.tiles import tree_hash as tiles_tree_hash
from provenance.records import SignedRecord, load_json
from provenance.timestamps import parse_timestamp
from provenance.verification.trust import TrustStore

STATE_VERSION = 1


class LogForked(VerificationError, code="LOG_FORK", step="consistency"):
    """The log serves a checkpoint that does not extend the one the monitor verified before."""


class TileInvalid(VerificationError, code="TILE_INVALID", step="tiles"):
    """A tile or entry bundle that is missing, malformed, or disagrees with the checkpoint's tree."""


class EntryInvalid(VerificationError, code="ENTRY_INVALID", step="entries"):
    """An entry that is not a canonical signed record, or whose SM2 signature no key of its org verifies."""


Fetch = Callable[[str], bytes]  # a path below the tiles prefix -> the resource's bytes (raise if absent)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise FormatError("monitor state holds a non-text hash")
    return base64.b64decode(text, validate=True)


@dataclass(frozen=True, kw_only=True)
class MonitorState:
    """What the monitor verified last: the checkpoint, and enough of its tree to extend it."""

    origin: str
    size: int = 0
    root: bytes = b""
    note: str = ""
    nodes: tuple[bytes, ...] = ()  # the compact range of the tree of ``size`` leaves
    partial: tuple[bytes, ...] = ()  # leaf hashes of the last, incomplete level-0 tile
    entries_checked: int = 0
    updated_at: float = 0.0

    @classmethod
    def load(cls, path: Path) -> MonitorState:
        """Read a state file written by :meth:`save`; raises FormatError."""
        doc = load_json(read_bytes(path, what="monitor state"), what="monitor state")
        try:
            if doc["version"] != STATE_VERSION:
                raise FormatError(f"monitor state version {doc['version']!r}, expected {STATE_VERSION}")
            return cls(
                origin=doc["origin"],
                size=int(doc["size"]),
                root=_unb64(doc["root"]),
                note=doc["note"],
                nodes=tuple(_unb64(h) for h in doc["nodes"]),
                partial=tuple(_unb64(h) for h in doc["partial"]),
                entries_checked=int(doc["entries_checked"]),
                updated_at=float(doc["updated_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"monitor state {path} is malformed: {exc}") from exc

    def save(self, path: Path) -> None:
        """Write the state atomically: a complete new file replaces the old one, or nothing changes."""
        doc = {
            "version": STATE_VERSION,
            "origin": self.origin,
            "size": self.size,
            "root": _b64(self.root),
            "note": self.note,
            "nodes": [_b64(h) for h in self.nodes],
            "partial": [_b64(h) for h in self.partial],
            "entries_checked": self.entries_checked,
            "updated_at": self.updated_at,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            f.write(json.dumps(doc, indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)


@dataclass(slots=True)
class StepReport:
    """One step's outcome: the checkpoint seen, the entries checked, and every problem found."""

    old_size: int
    size: int
    entries_checked: int = 0
    tiles_read: int = 0
    problems: list[VerificationError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Monitor:
    """Checks one log's tiles against the trust file; ``step()`` moves the state to the served checkpoint."""

    def __init__(
        self,
        *,
        fetch: Fetch,
        trust: TrustStore,
        state: MonitorState | None = None,
        workers: int = 2,
    ) -> None:
        logs = [lk for lk in trust.logs if lk.origin]
        if not logs:
            raise FormatError("the trust file pins no log with an origin to monitor")
        # Every key of each log (a rotated key: several under one name) but those whose window has ended:
        # the served checkpoint is today's, which a retired log key no longer vouches for.
        now = datetime.now(UTC)
        self._logs = [
            (lk.origin, NoteVerifier(name=lk.name, public_key=lk.public_key))
            for lk in logs
            if lk.signs_after(now)
        ]
        self._fetch = fetch
        self._trust = trust
        self.state = state
        self._workers = workers

    # --- one step ---------------------------------------------------------------------------------------

    def step(self) -> StepReport:
        """Read the served checkpoint and check everything up to it; the state moves only if all held.

        A checkpoint the log key did not sign, a fork or a missing quorum raises (nothing past it can be
        trusted); a fork is named before a missing quorum, since it proves the log key signed two histories.
        Tile and entry problems are collected in the report, every one named.
        """
        note = self._fetch("checkpoint").decode("utf-8", "replace")
        cp = self._checkpoint(note)
        held = self.state or MonitorState(origin=cp.origin)
        if cp.origin != held.origin:
            raise CheckpointInvalid(f"the tiles serve log {cp.origin!r}, the state follows {held.origin!r}")
        report = StepReport(old_size=held.size, size=cp.size)
        if cp.size < held.size:
            raise self._fork(held, cp, note, "a smaller size than verified before (rolled back)")
        if cp.size == held.size and cp.root != held.root and held.size > 0:
            raise self._fork(held, cp, note, "another root for the same size")
        quorum = self._quorum(note)
        if cp.size > held.size:
            new = _Step(self, held, cp, note, report)
            new.run()
        if quorum is not None:
            if report.ok:
                raise quorum
            report.problems.append(quorum)
        if report.ok and cp.size > held.size:
            self.state = MonitorState(
                origin=cp.origin,
                size=cp.size,
                root=cp.root,
                note=note,
                nodes=tuple(new.range.nodes),
                partial=tuple(new.last_partial),
                entries_checked=held.entries_checked + report.entries_checked,
                updated_at=time.time(),
            )
        return report

    def _checkpoint(self, note: str) -> Checkpoint:
        errors = []
        for origin, verifier in self._logs:
            try:
                return verify_checkpoint(note, verifier, origin=origin)
            except CheckpointInvalid as exc:
                errors.append(exc.message)
        raise CheckpointInvalid(f"the served checkpoint does not verify: {'; '.join(errors)}")

    def _quorum(self, note: str) -> WitnessQuorumMissing | None:
        """The trust policy's verdict on the checkpoint's cosignatures (a bad trusted cosignature raises)."""
        if self._trust.witnesses is None:
            return None
        try:
            self._trust.witnesses.check(note)
        except WitnessQuorumMissing as exc:
            return exc
        return None

    @staticmethod
    def _fork(held: MonitorState, cp: Checkpoint, note: str, why: str) -> LogForked:
        return LogForked(
            f"fork: checkpoint {cp.size} ({_b64(cp.root)}) does not extend checkpoint {held.size} "
            f"({_b64(held.root)}) verified before: {why}",
            details={
                "held_size": held.size,
                "held_root": _b64(held.root),
                "served_size": cp.size,
                "served_root": _b64(cp.root),
                "held_note": held.note,
                "note": note,
            },
        )

    def check_entry(self, index: int, entry: bytes) -> EntryInvalid | None:
        """The problem with one log entry, if any: not a canonical signed record, or no valid signature."""
        where = {"leaf_index": index}
        try:
            signed = SignedRecord.from_dict(load_json(entry, what=f"entry {index}"))
        except ProvenanceError as exc:
            return EntryInvalid(f"entry {index} is not a signed record: {exc.message}", details=where)
        where["record"] = signed.record_id  # type: ignore[assignment]
        if signed.leaf_entry() != entry:
            return EntryInvalid(f"entry {index} is not in canonical form", details=where)
        env = signed.envelope
        keys = self._trust.org_keys_at(env.org, parse_timestamp(env.timestamp))
        for key in keys:
            try:
                key.verify(env.canonical(), signed.signature)
                return None
            except SignatureInvalid:
                continue
        why = "no key of it valid at that time" if not keys else "no key of it valid then verifies it"
        if env.org not in self._trust.orgs:
            why = "the organisation is not in the trust file"
        return EntryInvalid(
            f"entry {index} (record {signed.record_id}, {env.org} at {env.timestamp}): SM2 signature "
            f"not verified: {why}",
            details={**where, "org": env.org},
        )

    def check_entries(self, first: int, entries: Sequence[bytes]) -> list[EntryInvalid]:
        """:meth:`check_entry` for consecutive entries from leaf ``first``, on ``workers`` threads (the
        SM2 verifications run in OpenSSL without the GIL)."""
        if self._workers <= 1 or len(entries) < 64:
            found = [self.check_entry(first + i, e) for i, e in enumerate(entries)]
        else:
            with ThreadPoolExecutor(self._workers) as pool:
                found = list(pool.map(self.check_entry, range(first, first + len(entries)), entries))
        return [p for p in found if p is not None]


class _Step:
    """The checks of one new checkpoint (from ``held`` to ``cp``), reading each tile once."""

    def __init__(
        self, monitor: Monitor, held: MonitorState, cp: Checkpoint, note: str, report: StepReport
    ) -> None:
        self.m, self.held, self.cp, self.note, self.report = monitor, held, cp, note, report
        self.tiles: dict[Tile, list[bytes]] = {}
        # (level-0 tile, its entry bundle, leaf index) where an entry does not hash to the tile's hash
        self._mismatch: list[tuple[Tile, Tile, int]] = []
        self.closed: dict[tuple[int, int], bytes] = {}  # (level, index) -> hash, for tiles above level 0
        self.range = CompactRange(size=held.size, nodes=held.nodes, on_node=self._closed)
        self.last_partial: list[bytes] = []

    def _closed(self, height: int, index: int, node: bytes) -> None:
        if height % TILE_HEIGHT == 0:
            self.closed[(height // TILE_HEIGHT, index)] = node

    def _read(self, tile: Tile) -> bytes:
        try:
            data = self.m._fetch(tile.path())
        except ProvenanceError as exc:
            raise TileInvalid(
                f"{tile.path()} cannot be read: {exc.message}", details={"tile": tile.path()}
            ) from exc
        self.report.tiles_read += 1
        return data

    def hashes(self, tile: Tile) -> list[bytes]:
        got = self.tiles.get(tile)
        if got is None:
            try:
                got = split_hashes(tile, self._read(tile))
            except FormatError as exc:
                raise TileInvalid(exc.message, details=exc.details) from exc
            self.tiles[tile] = got
        return got

    def _problem(self, exc: VerificationError) -> None:
        self.report.problems.append(exc)

    def run(self) -> None:
        held, cp = self.held, self.cp
        entry_leaves: list[bytes] = []  # leaves held.size .. cp.size, from the entries
        tile_leaves: list[bytes] = []  # the same, from the level-0 tiles
        new_entries: list[bytes] = []
        for tile in tiles_for(0, held.size, cp.size, cp.size):
            try:
                hashes = self.hashes(tile)
                bundle = Tile(level=-1, n=tile.n, w=tile.w)
                try:
                    entries = decode_bundle(bundle, self._read(bundle))
                except FormatError as exc:
                    raise TileInvalid(exc.message, details=exc.details) from exc
            except TileInvalid as exc:
                self._problem(exc)
                return
            start = tile.n * TILE_WIDTH
            skip = max(held.size - start, 0)
            if tile.n == held.size // TILE_WIDTH and list(hashes[:skip]) != list(held.partial[:skip]):
                self._problem(
                    TileInvalid(
                        f"{tile.path()} changed leaf hashes below size {held.size} verified before",
                        details={"tile": tile.path()},
                    )
                )
            leaves = [leaf_hash(e) for e in entries]
            for i in range(skip, tile.w):
                if leaves[i] != hashes[i]:
                    self._mismatch.append((tile, bundle, start + i))
            entry_leaves += leaves[skip:]
            tile_leaves += hashes[skip:]
            new_entries += entries[skip:]
            if tile.w < TILE_WIDTH:
                self.last_partial = hashes
        for leaf in entry_leaves:
            self.range.append(leaf)
        if self.range.root() != cp.root:
            self._diagnose(tile_leaves)
            return
        self._blame_mismatches(tile_wrong=True)
        self._check_upper_tiles()
        self.report.problems += self.m.check_entries(held.size, new_entries)
        self.report.entries_checked = len(new_entries)

    def _blame_mismatches(self, *, tile_wrong: bool) -> None:
        """One problem per leaf where the level-0 tile and the entry bundle disagree, naming the side that
        is wrong: the one whose hashes do not lead to the checkpoint root."""
        for tile, bundle, index in self._mismatch:
            if tile_wrong:
                path = tile.path()
                message = (
                    f"{path}: hash {index - tile.n * TILE_WIDTH} is not the leaf of entry {index} "
                    "(the entries hash to the checkpoint root: the tile is wrong)"
                )
            else:
                path = bundle.path()
                message = (
                    f"{path}: entry {index} does not hash to its leaf in the level-0 tile "
                    "(the tiles hash to the checkpoint root: the entry bundle is wrong)"
                )
            self._problem(TileInvalid(message, details={"tile": path, "leaf_index": index}))

    def _diagnose(self, tile_leaves: list[bytes]) -> None:
        """The entries do not hash to the checkpoint root: a wrong entry bundle, or a log that forked."""
        held, cp = self.held, self.cp
        from_tiles = CompactRange(size=held.size, nodes=held.nodes)
        for leaf in tile_leaves:
            from_tiles.append(leaf)
        if from_tiles.root() == cp.root and self._mismatch:
            self._blame_mismatches(tile_wrong=False)
            return
        if held.size > 0:
            try:
                served = tiles_tree_hash(held.size, self.hashes, tree_size=cp.size)
            except TileInvalid as exc:
                self._problem(exc)
                return
            if served != held.root:
                self._problem(
                    Monitor._fork(
                        held, cp, self.note, f"its tiles give root {_b64(served)} for size {held.size}"
                    )
                )
                return
        self._problem(
            LogForked(
                f"checkpoint {cp.size}'s root {_b64(cp.root)} is not the root of the entries the log serves "
                f"({_b64(self.range.root())})",
                details={"served_size": cp.size, "served_root": _b64(cp.root)},
            )
        )

    def _check_upper_tiles(self) -> None:
        by_level: dict[int, list[int]] = {}
        for level, index in self.closed:
            by_level.setdefault(level, []).append(index)
        for level, indexes in sorted(by_level.items()):
            for tile in tiles_for(level, min(indexes), max(indexes) + 1, self.cp.size):
                try:
                    hashes = self.hashes(tile)
                except TileInvalid as exc:
                    self._problem(exc)
                    continue
                for i, h in enumerate(hashes):
                    want = self.closed.get((level, tile.n * TILE_WIDTH + i))
                    if want is not None and h != want:
                        below = Tile(level=level - 1, n=tile.n * TILE_WIDTH + i)
                        self._problem(
                            TileInvalid(
                                f"{tile.path()}: hash {i} is not the root of {below.path()} "
                                "(recomputed from the entries)",
                                details={"tile": tile.path(), "index": i},
                            )
                        )
