"""The witness over HTTP: every C2SP tlog-witness answer, its durable state, and atomic check-and-store."""

from __future__ import annotations

import base64
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provenance.crypto import SM2PrivateKey
from provenance.log.checkpoint import Checkpoint, open_note, sign_checkpoint, verify_checkpoint
from provenance.log.cosignature import WitnessPolicy
from provenance.log.tlog_witness import Conflict, Cosigned, encode_add_checkpoint, read_answer
from tests.kit.witness import SigningLog, WitnessServer

NAME = "shancheng.test/witness/regulator"


@pytest.fixture
def log() -> SigningLog:
    lg = SigningLog()
    lg.grow(10)
    return lg


@pytest.fixture
def server(tmp_path: Path, log: SigningLog) -> Iterator[WitnessServer]:
    w = WitnessServer(folder=tmp_path / "w", name=NAME, logs=log.pinned, org="regulator")
    yield w
    w.stop()


def post(server: WitnessServer, old: int, proof: list[bytes], note: str) -> httpx.Response:
    body = encode_add_checkpoint(old, proof, note)
    return httpx.post(f"{server.url}/add-checkpoint", content=body, timeout=10)


def held(server: WitnessServer) -> int:
    doc = httpx.get(f"{server.url}/healthz", timeout=10).json()
    return int(next(lg["size"] for lg in doc["logs"]))


def test_200_cosigns_a_checkpoint_that_extends_the_last_one(server: WitnessServer, log: SigningLog) -> None:
    policy = WitnessPolicy(witnesses=(server.public,), quorum=1)
    cp, note = log.checkpoint(4)
    r = post(server, 0, [], note)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    answer = read_answer(r.status_code, r.content)
    assert isinstance(answer, Cosigned) and len(answer.signatures) == 1
    cosigned = note + r.text
    [c] = policy.check(cosigned)  # the line verifies against the witness key
    assert c.witness == NAME
    assert verify_checkpoint(cosigned, log.verifier, origin=log.origin) == cp
    # From 4 to 10 with the proof: cosigned; the same checkpoint again: cosigned again.
    _, note10 = log.checkpoint()
    assert post(server, 4, log.proof(4, 10), note10).status_code == 200
    again = post(server, 10, [], note10)
    assert again.status_code == 200 and policy.check(note10 + again.text)
    assert held(server) == 10


def test_409_answers_the_size_held_and_a_retry_with_that_proof_succeeds(
    server: WitnessServer, log: SigningLog
) -> None:
    assert post(server, 0, [], log.checkpoint(3)[1]).status_code == 200
    _, note = log.checkpoint(9)
    r = post(server, 0, [], note)  # a client that does not know the witness's size
    assert r.status_code == 409
    assert r.headers["content-type"] == "text/x.tlog.size"
    assert r.content == b"3\n"
    assert read_answer(r.status_code, r.content) == Conflict(size=3)
    assert post(server, 5, log.proof(5, 9), note).status_code == 409  # a wrong old size, too
    assert post(server, 3, log.proof(3, 9), note).status_code == 200
    assert held(server) == 9


def test_409_for_another_root_at_the_size_cosigned_and_it_is_kept_as_evidence(
    server: WitnessServer, log: SigningLog
) -> None:
    _, note = log.checkpoint(6)
    assert post(server, 0, [], note).status_code == 200
    fork = Checkpoint(origin=log.origin, size=6, root=bytes(32))
    r = post(server, 6, [], sign_checkpoint(fork, log.key_name, log.key))
    assert r.status_code == 409 and r.content == b"6\n"
    assert held(server) == 6
    assert server.witness is not None
    assert server.witness.state.refused(log.origin) == [(6, bytes(32), "SIZE_CONFLICT")]


def test_422_for_a_proof_that_does_not_verify(server: WitnessServer, log: SigningLog) -> None:
    assert post(server, 0, [], log.checkpoint(3)[1]).status_code == 200
    _, note = log.checkpoint(10)
    proof = log.proof(3, 10)
    bad = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    for p in (bad, proof[:-1], [*proof, bytes(32)]):
        r = post(server, 3, p, note)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "CONSISTENCY_INVALID"
    # A log that rewrote leaf 1 has no proof from the cosigned size 3 to its new tree.
    forked = SigningLog(origin=log.origin, key_name=log.key_name)
    forked.key = log.key
    forked.tree.append(b"entry 0")
    forked.tree.append(b"rewritten 1")
    forked.grow(8)
    _, forked_note = forked.checkpoint()
    assert post(server, 3, forked.proof(3, 10), forked_note).status_code == 422
    assert held(server) == 3
    assert server.witness is not None
    assert [r[2] for r in server.witness.state.refused(log.origin)] == ["CONSISTENCY_INVALID"] * 4


def test_403_when_no_signature_verifies_with_the_pinned_log_key(
    server: WitnessServer, log: SigningLog
) -> None:
    cp, note = log.checkpoint(5)
    impostor = sign_checkpoint(cp, log.key_name, SM2PrivateKey.generate())
    body, sig = note.split("\n\n")
    altered = body.replace(cp.body().decode().split("\n")[2], base64.b64encode(bytes(32)).decode())
    for bad in (impostor, altered + "\n\n" + sig):
        r = post(server, 0, [], bad)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "LOG_SIGNATURE_INVALID"
    assert held(server) == 0


def test_404_for_a_log_the_witness_does_not_know(server: WitnessServer) -> None:
    other = SigningLog(origin="other.example/log")
    other.grow(2)
    r = post(server, 0, [], other.checkpoint()[1])
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "LOG_UNKNOWN"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"old 1\n", "FORMAT_INVALID"),
        (b"old x\n\nnote\n", "FORMAT_INVALID"),
        (b"old 0\n\nnot a note\n", "CHECKPOINT_INVALID"),
    ],
)
def test_400_for_a_malformed_request(server: WitnessServer, body: bytes, code: str) -> None:
    r = httpx.post(f"{server.url}/add-checkpoint", content=body, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == code


def test_400_for_an_old_size_above_the_checkpoint(server: WitnessServer, log: SigningLog) -> None:
    r = post(server, 7, [], log.checkpoint(5)[1])
    assert r.status_code == 400 and "above the checkpoint" in r.json()["error"]["message"]


def test_413_for_a_body_past_the_largest_request(server: WitnessServer) -> None:
    r = httpx.post(f"{server.url}/add-checkpoint", content=b"old 0\n" + b"A" * (2 << 20), timeout=10)
    assert r.status_code == 413 and r.json()["error"]["code"] == "BODY_TOO_LARGE"


def test_state_is_on_disk_before_the_answer_and_survives_a_restart(
    server: WitnessServer, log: SigningLog
) -> None:
    assert post(server, 0, [], log.checkpoint(8)[1]).status_code == 200
    # Another connection to the file sees the new state as soon as the 200 is in.
    with sqlite3.connect(server.folder / "witness.db") as db:
        assert db.execute("SELECT size FROM log_state").fetchall() == [("8",)]
    server.stop()
    server.start()
    r = post(server, 0, [], log.checkpoint(10)[1])
    assert r.status_code == 409 and r.content == b"8\n"


def test_concurrent_submissions_from_one_size_cosign_exactly_one(
    server: WitnessServer, log: SigningLog
) -> None:
    # The race tlog-witness warns about: two requests checked against size 2 must not both be stored, or a
    # later store would roll the witness back. Here 8 requests race from size 2 to sizes 3..10.
    assert post(server, 0, [], log.checkpoint(2)[1]).status_code == 200
    results: dict[int, int] = {}

    def submit(size: int) -> None:
        results[size] = post(server, 2, log.proof(2, size), log.checkpoint(size)[1]).status_code

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(3, 11)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, status in results.items() if status == 200]
    assert len(winners) == 1 and sorted(results.values()) == [200] + [409] * 7
    assert held(server) == winners[0]


def test_the_cosignature_covers_extension_lines(server: WitnessServer, log: SigningLog) -> None:
    cp = Checkpoint(origin=log.origin, size=5, root=log.tree.root(5), extensions=("anchored 0xabc",))
    note = sign_checkpoint(cp, log.key_name, log.key)
    r = post(server, 0, [], note)
    assert r.status_code == 200
    body, sigs = open_note(note + r.text)
    assert body.endswith("anchored 0xabc\n") and len(sigs) == 2
    WitnessPolicy(witnesses=(server.public,), quorum=1).check(note + r.text)


def test_cli_prints_the_vkey_and_refuses_a_nameless_witness(
    tmp_path: Path, log: SigningLog, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from provenance.cli import main
    from provenance.log.cosignature import WitnessKey

    key = SM2PrivateKey.generate()
    (tmp_path / "w.pem").write_bytes(key.to_pem())
    trust = {
        "version": 1,
        "orgs": [],
        "logs": [
            {"name": log.key_name, "origin": log.origin, "public_key": log.key.public_key_pem().decode()}
        ],
    }
    (tmp_path / "trust.json").write_text(json.dumps(trust))
    monkeypatch.setenv("PROV_WITNESS_KEY_FILE", str(tmp_path / "w.pem"))
    monkeypatch.setenv("PROV_WITNESS_TRUST_FILE", str(tmp_path / "trust.json"))
    monkeypatch.setenv("PROV_WITNESS_STATE_FILE", str(tmp_path / "w.db"))
    assert main(["witness", "vkey"]) == 2
    assert "needs a name (PROV_WITNESS_NAME)" in capsys.readouterr().err
    monkeypatch.setenv("PROV_WITNESS_NAME", NAME)
    assert main(["witness", "vkey"]) == 0
    printed = capsys.readouterr().out.strip()
    assert WitnessKey.from_vkey(printed) == WitnessKey(name=NAME, public_key=key.public_key())
