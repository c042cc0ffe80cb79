"""Witnessing: each new checkpoint goes to the configured witnesses, and their cosignatures are published.

One thread runs an event loop with one task per witness, so a witness that is slow or down delays only its
own cosignatures: never another witness's, never the acceptance of records (the write path does not wait for
witnesses at all). Each task sends the newest signed checkpoint with a consistency proof from the size that
witness last cosigned (C2SP tlog-witness ``add-checkpoint``); a 409 names that size and the task retries with
the proof from it. A cosignature is stored only once it verifies with the witness's key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import Session, col, select

from gateway.core.config import WitnessEndpoint
from gateway.core.db import Database
from gateway.models import CheckpointCosignature, CheckpointRow
from gateway.services.sqllog import merkle_log
from provenance.errors import CheckpointInvalid, FormatError
from provenance.log.checkpoint import NoteSignature, open_note
from provenance.log.cosignature import WitnessKey
from provenance.log.tlog_witness import Conflict, Cosigned, add_checkpoint

log = logging.getLogger("gateway.witnessing")

CATCH_UP = 8  # checkpoints a witness may be behind before it is sent the newest instead of the next


@dataclass
class WitnessStatus:
    """What the gateway knows of one witness (read by /healthz and /metrics)."""

    key: WitnessKey
    url: str
    held: int | None = None  # the size it last cosigned, once it told us (a 200 or a 409)
    cosigned: int = 0  # the newest size whose cosignature is stored
    up: bool = True
    last_error: str = ""
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class Witnessing(threading.Thread):
    """Submits the newest checkpoint to every witness, each on its own task; stores verified cosignatures."""

    def __init__(
        self, *, db: Database, witnesses: Sequence[WitnessEndpoint], timeout: float, retry: float, idle: float
    ) -> None:
        super().__init__(name="witnessing", daemon=True)
        self._db = db
        self._timeout = timeout
        self._retry = retry
        self._idle = idle
        self.status = [
            WitnessStatus(key=WitnessKey.from_vkey(w.vkey, org=w.org), url=w.url.rstrip("/"))
            for w in witnesses
        ]
        self._loop = asyncio.new_event_loop()
        self._stopping = False

    def metrics(self) -> list[str]:
        """Prometheus lines: per witness, the newest size it cosigned and whether it answers."""
        if not self.status:
            return []
        return [
            "# HELP prov_gw_witness_cosigned_size The newest checkpoint size whose cosignature is stored.",
            "# TYPE prov_gw_witness_cosigned_size gauge",
            *(
                f'prov_gw_witness_cosigned_size{{witness="{st.key.name}"}} {st.cosigned}'
                for st in self.status
            ),
            "# TYPE prov_gw_witness_up gauge",
            *(f'prov_gw_witness_up{{witness="{st.key.name}"}} {int(st.up)}' for st in self.status),
        ]

    def wake(self) -> None:
        """A checkpoint was signed: every witness task looks at once (callable from any thread)."""
        if self.is_alive():
            self._loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for st in self.status:
            st.wake.set()

    def stop(self) -> None:
        self._stopping = True
        self.wake()

    def run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=len(self.status) + 1)
        async with httpx.AsyncClient(timeout=self._timeout, limits=limits) as client:
            await asyncio.gather(*(self._follow(client, st) for st in self.status))

    async def _follow(self, client: httpx.AsyncClient, st: WitnessStatus) -> None:
        st.cosigned = self._stored(st.key.name)  # after a restart: go on from the cosignatures kept
        while not self._stopping:
            st.wake.clear()
            # A witness cosigns only extensions of what it holds: checkpoints below that are past for it
            # (the one it holds may be sent again: it cosigns the same root again).
            nxt = self._next(max(st.cosigned, (st.held or 0) - 1))
            delay = self._idle
            if nxt is not None:
                try:
                    await self._submit(client, st, nxt)
                    st.up, st.last_error = True, ""
                except (httpx.HTTPError, OSError) as exc:
                    if st.up:
                        log.warning("witness %s at %s unreachable: %s", st.key.name, st.url, exc or type(exc))
                    st.up, st.last_error, delay = (
                        False,
                        f"unreachable: {exc or type(exc).__name__}",
                        self._retry,
                    )
                except _Refused as exc:
                    log.warning("witness %s refused size %d: %s", st.key.name, nxt.size, exc)
                    st.last_error, delay = str(exc), self._retry
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(st.wake.wait(), timeout=delay)

    def _next(self, cosigned: int) -> CheckpointRow | None:
        """The checkpoint to submit after size ``cosigned``: the next one, so that every checkpoint gets its
        cosignatures (the anchored one among them); the newest when more than CATCH_UP behind (a witness
        back from an outage cosigns the newest, which extends all it missed)."""
        after = select(CheckpointRow).where(col(CheckpointRow.size) > cosigned)
        with self._db.session() as s:
            newest = s.exec(after.order_by(col(CheckpointRow.size).desc()).limit(1)).first()
            if newest is None:
                return None
            behind = s.exec(select(func.count()).select_from(after.subquery())).one()
            if behind > CATCH_UP:
                return newest
            return s.exec(after.order_by(col(CheckpointRow.size)).limit(1)).first()

    def _stored(self, witness: str) -> int:
        """The newest size whose cosignature by ``witness`` is stored (0: none)."""
        with self._db.session() as s:
            size = s.exec(
                select(func.max(CheckpointCosignature.size)).where(CheckpointCosignature.witness == witness)
            ).one()
        return int(size or 0)

    def _proof(self, old: int, new: int) -> list[bytes]:
        with self._db.session() as s:
            return merkle_log(s).consistency_proof(old, new)

    async def _submit(self, client: httpx.AsyncClient, st: WitnessStatus, cp: CheckpointRow) -> None:
        old = st.held if st.held is not None else 0
        for _ in range(3):  # a 409 tells the size to prove from; a second one means it moved meanwhile
            if old > cp.size:
                if self._next(cp.size) is None:  # it holds more than this log ever signed
                    raise _Refused(
                        f"it holds size {old}, above the newest checkpoint {cp.size}: another view?"
                    )
                return  # it is past this checkpoint: the next round sends one it can cosign
            answer = await add_checkpoint(client, st.url, old, self._proof(old, cp.size), cp.note)
            if isinstance(answer, Cosigned):
                st.held = cp.size
                self._store(st, cp, answer.lines, answer.signatures)
                return
            if isinstance(answer, Conflict):
                if answer.size == old:  # the size matches, so its root does not: it saw another tree
                    raise _Refused(f"it cosigned another root for size {old} (409): a fork?")
                st.held = old = answer.size
                continue
            raise _Refused(f"HTTP {answer.status}: {answer.reason}")
        raise _Refused("it kept answering 409")

    def _store(
        self, st: WitnessStatus, cp: CheckpointRow, lines: str, signatures: Sequence[NoteSignature]
    ) -> None:
        body, _ = open_note(cp.note)
        best: tuple[int, str] | None = None
        for line, sig in zip(lines.splitlines(keepends=True), signatures, strict=True):
            if not st.key.matches(sig):
                continue  # signed-note: lines by other keys are ignored
            try:
                c = st.key.verify(body.encode("utf-8"), sig)
            except CheckpointInvalid as exc:
                raise _Refused(exc.message) from exc
            if best is None or c.timestamp > best[0]:
                best = (c.timestamp, line)
        if best is None:
            raise _Refused("its answer holds no cosignature by its key")
        with self._db.write() as s:
            if s.get(CheckpointCosignature, (cp.size, st.key.name)) is None:
                s.add(
                    CheckpointCosignature(
                        size=cp.size,
                        witness=st.key.name,
                        line=best[1],
                        timestamp=best[0],
                        received_at=time.time(),
                    )
                )
        st.cosigned = cp.size
        log.info("witness %s cosigned size %d", st.key.name, cp.size)


class _Refused(Exception):
    """A witness answered, but gave no usable cosignature (logged; tried again later)."""


# --- reads --------------------------------------------------------------------------------------------


def cosignatures(s: Session, size: int) -> list[CheckpointCosignature]:
    """The stored cosignatures of the checkpoint of ``size``, by witness name."""
    return list(
        s.exec(
            select(CheckpointCosignature)
            .where(CheckpointCosignature.size == size)
            .order_by(col(CheckpointCosignature.witness))
        ).all()
    )


def cosigned_note(s: Session, cp: CheckpointRow) -> str:
    """The checkpoint's note with every stored cosignature line after the log's signature."""
    return cp.note + "".join(c.line for c in cosignatures(s, cp.size))


def _witnessed(quorum: int) -> Any:
    """The sizes of checkpoints with at least ``quorum`` stored cosignatures (a subquery)."""
    return (
        select(CheckpointCosignature.size)
        .group_by(col(CheckpointCosignature.size))
        .having(func.count() >= quorum)
    )


def preferred_checkpoints(s: Session, quorum: int) -> list[CheckpointRow]:
    """The checkpoints evidence may cite, best first: the newest anchored one and the newest one; with a
    witness quorum (``quorum`` > 0) only among those with ``quorum`` cosignatures, since a verifier holding
    the policy refuses any other. A record's bundle cites the first that covers it."""
    newest = select(CheckpointRow).order_by(col(CheckpointRow.size).desc()).limit(1)
    if quorum > 0:
        newest = newest.where(col(CheckpointRow.size).in_(_witnessed(quorum)))
    out: list[CheckpointRow] = []
    for q in (newest.where(col(CheckpointRow.anchor_tx).is_not(None)), newest):
        row = s.exec(q).first()
        if row is not None and all(row.size != o.size for o in out):
            out.append(row)
    return out


def published(s: Session, quorum: int) -> CheckpointRow | None:
    """The checkpoint ``/tiles/checkpoint`` publishes: the newest evidence may cite."""
    return max(preferred_checkpoints(s, quorum), key=lambda c: c.size, default=None)


def check_endpoints(witnesses: Sequence[WitnessEndpoint], quorum: int) -> None:
    """Refuse settings that can never work: a bad verifier key, a quorum above the witnesses configured."""
    for w in witnesses:
        WitnessKey.from_vkey(w.vkey)
    if quorum > len(witnesses):
        raise FormatError(f"witness_quorum {quorum} is more than the {len(witnesses)} witnesses configured")
