"""Split view: a log operator signs two histories and shows each to different witnesses.

Two checkpoints of the same size never both reach a 2-of-3 quorum (every order tried), a smaller one that does
not extend is cosigned by nobody, a verifier holding the second history refuses it naming who cosigned, and
the monitor that followed the first names the fork.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import pytest

from provenance.errors import FormatError, WitnessQuorumMissing
from provenance.log.bundle import EvidenceBundle
from provenance.log.checkpoint import NoteVerifier
from provenance.log.cosignature import WitnessPolicy
from provenance.log.merkle import MerkleLog
from provenance.log.record_log import RecordLog
from provenance.log.tlog_witness import encode_add_checkpoint
from provenance.records import SignedRecord, load_json
from provenance.verification.monitor import LogForked, Monitor
from provenance.verification.verify import Verifier
from tests.kit.tiles import (
    LOG_KEY,
    LOG_NAME,
    ORG_KEYS,
    ORIGIN,
    WITNESS_KEYS,
    WITNESSES,
    ServedLog,
    signed_entry,
    trust,
)
from tests.kit.witness import WitnessServer
from witness.errors import SizeConflict
from witness.service import Witness
from witness.state import WitnessState

PINNED = {ORIGIN: [NoteVerifier(name=LOG_NAME, public_key=LOG_KEY.public_key())]}
POLICY = WitnessPolicy(witnesses=WITNESSES, quorum=2)
BASE = [signed_entry(i) for i in range(10)]
FORKS = {
    "A": ServedLog([*BASE, *(signed_entry(100 + i) for i in range(6))]),
    "B": ServedLog([*BASE, *(signed_entry(200 + i, "station-2") for i in range(6))]),
}
for _served in FORKS.values():
    _served.publish(cosigners=())  # the log's signature only: cosignatures are what the witnesses give


def tree(served: ServedLog) -> MerkleLog:
    log = MerkleLog.in_memory()
    for e in served.entries:
        log.append(e)
    return log


def request(served: ServedLog, old: int) -> bytes:
    new = served.size
    proof = tree(served).consistency_proof(old, new) if old <= new else []
    return encode_add_checkpoint(old, proof, served.note)


def witnesses(folder: Path) -> list[Witness]:
    ws = [
        Witness(name=w.name, key=k, logs=PINNED, state=WitnessState(folder / f"{i}.db"))
        for i, (w, k) in enumerate(zip(WITNESSES, WITNESS_KEYS, strict=True))
    ]
    base = ServedLog(BASE)
    base.publish(cosigners=())
    for w in ws:
        w.add_checkpoint(request(base, 0))  # every witness cosigned the shared history, size 10
    return ws


@pytest.mark.parametrize("first", ["".join(p) for p in itertools.product("AB", repeat=3)])
def test_two_checkpoints_of_one_size_never_both_reach_quorum(first: str, tmp_path: Path) -> None:
    lines: dict[str, list[str]] = {"A": [], "B": []}
    for w, fork in zip(witnesses(tmp_path), first, strict=True):
        other = "B" if fork == "A" else "A"
        lines[fork].append(w.add_checkpoint(request(FORKS[fork], 10)).line)
        # The operator then shows it the other history: from the old size, and from the size it now holds.
        for old in (10, 16):
            with pytest.raises(SizeConflict) as info:
                w.add_checkpoint(request(FORKS[other], old))
            assert info.value.size == 16
        assert [r[0] for r in w.state.refused(ORIGIN)] == [16, 16]  # the other history: evidence, twice
    met = []
    for fork in "AB":
        try:
            POLICY.check(FORKS[fork].note + "".join(lines[fork]))
            met.append(fork)
        except WitnessQuorumMissing:
            pass
    assert met == [max("AB", key=first.count)]  # exactly one: the history most witnesses saw first


def test_a_smaller_checkpoint_that_does_not_extend_is_cosigned_by_nobody(tmp_path: Path) -> None:
    ws = witnesses(tmp_path)
    for w in ws:
        w.add_checkpoint(request(FORKS["A"], 10))
    smaller = ServedLog(
        [*BASE[:8], *(signed_entry(300 + i) for i in range(4))]
    )  # 12 leaves, leaves 8.. differ
    smaller.publish(cosigners=())
    for w in ws:
        for old in (0, 10, 12):
            with pytest.raises(SizeConflict):
                w.add_checkpoint(request(smaller, old))
        with pytest.raises(FormatError, match="above the checkpoint"):
            w.add_checkpoint(request(smaller, 16))
        assert w.state.latest(ORIGIN) is not None and w.state.latest(ORIGIN).size == 16  # type: ignore[union-attr]


def _bundle(served: ServedLog, note: str, index: int) -> EvidenceBundle:
    log = RecordLog.in_memory(origin=ORIGIN, key_name=LOG_NAME, key=LOG_KEY)
    records = [SignedRecord.from_dict(load_json(e)) for e in served.entries]
    for r in records:
        log.append(r)
    signed = records[index]
    return log.bundle(
        signed=signed,
        leaf_index=index,
        signer_public_key_pem=ORG_KEYS[signed.envelope.org].public_key_pem().decode(),
        note=note,
        tree_size=served.size,
        include_payload=False,
    )


def test_split_view_through_the_witnesses_http_apis(tmp_path: Path) -> None:
    servers = [
        WitnessServer(folder=tmp_path / str(i), name=w.name, logs=PINNED, port=0)
        for i, w in enumerate(WITNESSES)
    ]
    try:
        for s, k in zip(
            servers, WITNESS_KEYS, strict=True
        ):  # the witnesses run with the keys the policy names
            s.stop()
            (s.folder / "witness.sm2.pem").write_bytes(k.to_pem())
            s.key = k
            s.start()

        def post(i: int, served: ServedLog, old: int) -> httpx.Response:
            return httpx.post(f"{servers[i].url}/add-checkpoint", content=request(served, old), timeout=10)

        base = ServedLog(BASE)
        base.publish(cosigners=())
        assert all(post(i, base, 0).status_code == 200 for i in range(3))
        a_lines = [post(i, FORKS["A"], 10).text for i in (0, 1)]
        b_lines = [post(2, FORKS["B"], 10).text]
        for i in (0, 1):  # the operator tries to get B past the witnesses that hold A
            assert post(i, FORKS["B"], 10).content == b"16\n"
            r = post(i, FORKS["B"], 16)
            assert r.status_code == 409 and r.content == b"16\n"
        note_a = FORKS["A"].note + "".join(a_lines)
        note_b = FORKS["B"].note + "".join(b_lines)

        # A verifier with the trust file's policy accepts A's bundle and refuses B's, naming who cosigned.
        verifier = Verifier(trust=trust(policy=True), require_anchor=False)
        verifier.verify(_bundle(FORKS["A"], note_a, 12))
        with pytest.raises(WitnessQuorumMissing) as info:
            verifier.verify(_bundle(FORKS["B"], note_b, 12))
        assert info.value.details["cosigned_by"] == [WITNESSES[2].name]
        assert f"cosigned by: {WITNESSES[2].name}" in info.value.message

        # The monitor that followed A is then served B: it names the fork (before the missing quorum).
        FORKS["A"].note = note_a
        mon = Monitor(fetch=FORKS["A"].fetch, trust=trust(policy=True))
        assert mon.step().ok
        FORKS["B"].note = note_b
        mon._fetch = FORKS["B"].fetch
        with pytest.raises(LogForked, match="another root for the same size") as fork:
            mon.step()
        assert fork.value.details["held_note"] == note_a and fork.value.details["note"] == note_b
    finally:
        for f in FORKS.values():
            f.publish(cosigners=())
        for s in servers:
            s.stop()
