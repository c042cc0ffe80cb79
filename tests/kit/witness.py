"""Helpers of the witness tests (and the gateway's): a witness under uvicorn, and a small signing log."""

from __future__ import annotations

import threading
from pathlib import Path

import uvicorn

from devnet.engines import free_port
from provenance.crypto import SM2PrivateKey
from provenance.log.checkpoint import Checkpoint, NoteVerifier, sign_checkpoint
from provenance.log.cosignature import WitnessKey
from provenance.log.merkle import MerkleLog
from tests.kit.gateway import serve_in_thread
from witness.app import create_app
from witness.service import Witness
from witness.state import WitnessState


class WitnessServer:
    """One witness (its own SM2 key and SQLite state) served by uvicorn in a thread; stop and start again."""

    def __init__(
        self, *, folder: Path, name: str, logs: dict[str, list[NoteVerifier]], org: str = "", port: int = 0
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        key_file = folder / "witness.sm2.pem"
        if not key_file.exists():
            key_file.write_bytes(SM2PrivateKey.generate().to_pem())
        self.key = SM2PrivateKey.from_pem(key_file.read_bytes())
        self.name, self.org, self.logs = name, org, logs
        self.port = port or free_port()
        self.witness: Witness | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def public(self) -> WitnessKey:
        return WitnessKey(name=self.name, public_key=self.key.public_key(), org=self.org)

    def start(self) -> None:
        state = WitnessState(self.folder / "witness.db")
        self.witness = Witness(name=self.name, key=self.key, logs=self.logs, state=state, org=self.org)
        self._server, self._thread = serve_in_thread(
            uvicorn.Config(
                create_app(witness=self.witness), host="127.0.0.1", port=self.port, log_level="warning"
            ),
            "witness",
        )

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=30)


class SigningLog:
    """An in-memory SM3 log whose checkpoints are signed with an SM2 log key: what a witness is shown."""

    def __init__(self, *, origin: str = "shancheng.test/log", key_name: str = "shancheng-test-log") -> None:
        self.origin, self.key_name = origin, key_name
        self.key = SM2PrivateKey.generate()
        self.tree = MerkleLog.in_memory()

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(name=self.key_name, public_key=self.key.public_key())

    @property
    def pinned(self) -> dict[str, list[NoteVerifier]]:
        return {self.origin: [self.verifier]}

    def grow(self, n: int) -> None:
        start = self.tree.size
        for i in range(start, start + n):
            self.tree.append(f"entry {i}".encode())

    def checkpoint(self, size: int | None = None) -> tuple[Checkpoint, str]:
        size = self.tree.size if size is None else size
        cp = Checkpoint(origin=self.origin, size=size, root=self.tree.root(size))
        return cp, sign_checkpoint(cp, self.key_name, self.key)

    def proof(self, old: int, new: int) -> list[bytes]:
        return self.tree.consistency_proof(old, new)
