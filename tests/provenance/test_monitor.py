"""Tests for provenance.verification.monitor over the tiles a log serves (the gateway's:
tests/gateway/test_witnessing.py).

The log here is real (SM2-signed records in an SM3 tree, checkpoints signed with an SM2 log key); its tiles
are computed from the tree, as the gateway stores them, and read through the monitor's fetch function.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provenance.crypto import SM2PrivateKey
from provenance.errors import CheckpointInvalid, WitnessQuorumMissing
from provenance.log.checkpoint import Checkpoint, sign_checkpoint
from provenance.log.merkle import MerkleLog, root_from_leaf_hashes
from provenance.log.tiles import Tile, encode_bundle
from provenance.verification.monitor import LogForked, Monitor, MonitorState
from tests.kit.tiles import LOG_NAME, ORIGIN, ServedLog, signed_entry, trust


@pytest.fixture(scope="module")
def entries() -> list[bytes]:
    return [signed_entry(i, "station-1" if i % 3 else "station-2") for i in range(600)]


def test_follows_the_log_across_partial_tiles_and_resumes_from_its_state(
    entries: list[bytes], tmp_path: Path
) -> None:
    served = ServedLog(entries[:100])
    mon = Monitor(fetch=served.fetch, trust=trust(policy=True))
    report = mon.step()
    assert report.ok and (report.old_size, report.size, report.entries_checked) == (0, 100, 100)
    assert mon.state is not None
    mon.state.save(tmp_path / "state.json")
    # The next run starts from the file: 100 -> 600 crosses tiles 0 (partial, then full) to 2, and level 1.
    served.entries = list(entries)
    served.publish()
    again = Monitor(
        fetch=served.fetch, trust=trust(policy=True), state=MonitorState.load(tmp_path / "state.json")
    )
    report = again.step()
    assert report.ok, [p.message for p in report.problems]
    assert (report.old_size, report.size, report.entries_checked) == (100, 600, 500)
    assert again.state is not None and again.state.root == reference_root(entries)
    assert again.step().entries_checked == 0  # nothing new


def reference_root(entries: list[bytes]) -> bytes:
    log = MerkleLog.in_memory()
    for e in entries:
        log.append(e)
    return log.root()


def test_a_tampered_level0_tile_is_named(entries: list[bytes]) -> None:
    served = ServedLog(entries[:600])
    tile = Tile(level=0, n=1)
    data = bytearray(served.fetch(tile.path()))
    data[5 * 32] ^= 1  # hash 5 of tile 1: leaf 261
    served.overrides[tile.path()] = bytes(data)
    mon = Monitor(fetch=served.fetch, trust=trust())
    report = mon.step()
    assert not report.ok and mon.state is None  # the state does not move past a bad step
    [problem] = report.problems
    assert problem.code == "TILE_INVALID" and problem.details == {"tile": "tile/0/001", "leaf_index": 261}
    assert "the tile is wrong" in problem.message


def test_a_tampered_upper_tile_is_named(entries: list[bytes]) -> None:
    served = ServedLog(entries[:600])
    tile = Tile(level=1, n=0, w=2)
    data = bytearray(served.fetch(tile.path()))
    data[-1] ^= 1
    served.overrides[tile.path()] = bytes(data)
    [problem] = Monitor(fetch=served.fetch, trust=trust()).step().problems
    assert problem.code == "TILE_INVALID" and problem.details == {"tile": "tile/1/000.p/2", "index": 1}
    assert "is not the root of tile/0/001" in problem.message


def test_a_tampered_entry_bundle_is_named(entries: list[bytes]) -> None:
    served = ServedLog(entries[:300])
    bundle = Tile(level=-1, n=1, w=44)
    swapped = list(entries[256:300])
    swapped[3] = signed_entry(999)  # another validly signed record in place of leaf 259
    served.overrides[bundle.path()] = encode_bundle(swapped)
    [problem] = Monitor(fetch=served.fetch, trust=trust()).step().problems
    assert problem.code == "TILE_INVALID" and problem.details == {
        "tile": "tile/entries/001.p/44",
        "leaf_index": 259,
    }
    assert "the entry bundle is wrong" in problem.message


def test_entries_without_a_valid_signature_are_named(entries: list[bytes]) -> None:
    stranger = SM2PrivateKey.generate()
    bad = [*entries[:10], signed_entry(10, "station-1", stranger), signed_entry(11, "ghost-org", stranger)]
    served = ServedLog([*bad, b"not json"])
    report = Monitor(fetch=served.fetch, trust=trust()).step()
    assert [(p.code, p.details["leaf_index"]) for p in report.problems] == [
        ("ENTRY_INVALID", 10),
        ("ENTRY_INVALID", 11),
        ("ENTRY_INVALID", 12),
    ]
    msgs = [p.message for p in report.problems]
    assert "station-1" in msgs[0] and "no key of it valid then verifies it" in msgs[0]
    assert "the organisation is not in the trust file" in msgs[1]
    assert "is not a signed record" in msgs[2]


def test_a_missing_tile_is_named(entries: list[bytes]) -> None:
    served = ServedLog(entries[:300])

    def fetch(path: str) -> bytes:
        if path == "tile/0/000":
            raise CheckpointInvalid("HTTP 404")
        return served.fetch(path)

    [problem] = Monitor(fetch=fetch, trust=trust()).step().problems
    assert problem.code == "TILE_INVALID" and "tile/0/000 cannot be read" in problem.message


def test_forks_are_named(entries: list[bytes]) -> None:
    served = ServedLog(entries[:300])
    mon = Monitor(fetch=served.fetch, trust=trust(policy=True))
    assert mon.step().ok
    # The same size with another root (the log key signed two trees of 300 leaves).
    other = ServedLog([*entries[:299], signed_entry(300)])
    mon._fetch = other.fetch
    with pytest.raises(LogForked, match=r"fork: checkpoint 300 .* another root for the same size") as info:
        mon.step()
    assert info.value.details["held_size"] == 300 and info.value.details["note"] == other.note
    # A smaller checkpoint.
    smaller = ServedLog(entries[:299])
    mon._fetch = smaller.fetch
    with pytest.raises(LogForked, match="smaller size than verified before"):
        mon.step()
    # A bigger tree that rewrote leaf 7: its tiles give another root for the size held.
    rewritten = ServedLog([*entries[:7], signed_entry(7), *entries[8:400]])
    mon._fetch = rewritten.fetch
    report = mon.step()
    [fork] = report.problems
    assert isinstance(fork, LogForked) and "its tiles give root" in fork.message
    assert mon.state is not None and mon.state.size == 300


def test_a_fork_is_named_before_the_missing_quorum_and_quorum_is_required(entries: list[bytes]) -> None:
    served = ServedLog(entries[:50])
    mon = Monitor(fetch=served.fetch, trust=trust(policy=True))
    assert mon.step().ok
    other = ServedLog([*entries[:49], signed_entry(51)])
    other.publish(cosigners=(2,))
    mon._fetch = other.fetch
    with pytest.raises(LogForked):
        mon.step()
    served.entries = entries[:60]
    served.publish(cosigners=(2,))
    mon._fetch = served.fetch
    with pytest.raises(WitnessQuorumMissing, match=r"cosigned by: shancheng.test/witness/2\)"):
        mon.step()
    assert mon.state is not None and mon.state.size == 50


def test_a_checkpoint_not_signed_by_the_log_key_is_refused(entries: list[bytes]) -> None:
    served = ServedLog(entries[:5])
    cp = Checkpoint(origin=ORIGIN, size=5, root=root_from_leaf_hashes(served.leaves))
    served.note = sign_checkpoint(cp, LOG_NAME, SM2PrivateKey.generate())
    with pytest.raises(CheckpointInvalid, match="does not verify"):
        Monitor(fetch=served.fetch, trust=trust()).step()
