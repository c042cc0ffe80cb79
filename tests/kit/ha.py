"""Several gateway processes on one PostgreSQL database, for the failover test and the soak bench.

``HaNet`` is a ``ProcNet`` whose gateway is N ``python -m gateway serve`` processes on one database. Its
``url`` plays the load balancer: each call names the next instance whose process is alive, so a client of it
(``Load``, ``Auditor``) fails over the way one behind a health-checking balancer does.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, make_url, text

from devnet.embedded import free_port
from devnet.engines import stop_process
from tests.kit.procnet import ProcNet, wait_until


def fresh_database(pg_url: str, suffix: str) -> str:
    """A new empty database ``<database>_<suffix>`` beside ``pg_url``'s (dropped first if it exists)."""
    base = make_url(pg_url)
    name = f"{base.database}_{suffix}"
    with create_engine(base, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    return base.set(database=name).render_as_string(hide_password=False)


class HaNet(ProcNet):
    """Embedded node + contracts + ``instances`` gateway processes sharing ``db_url`` (PostgreSQL)."""

    def __init__(self, root: Path, *, instances: int, gateway: dict[str, str], db_url: str) -> None:
        super().__init__(root, gateway=gateway, db_url=db_url)
        self.ports = [free_port() for _ in range(instances)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * instances
        self._next = itertools.cycle(range(instances))

    def start_gateway(self) -> None:
        for i in range(len(self.ports)):
            self.start_instance(i)

    def start_instance(self, i: int) -> None:
        """Start instance ``i`` (``ProcNet.start_gateway`` on its own port and log) and wait for /healthz."""
        self.gateway_port = self.ports[i]
        try:
            super().start_gateway()
        finally:
            self.procs[i] = self.gateway
            self.gateway = None

    def alive(self) -> list[int]:
        return [i for i, p in enumerate(self.procs) if p is not None and p.poll() is None]

    @property
    def url(self) -> str:
        live = self.alive()
        for _ in range(len(self.ports)):
            i = next(self._next)
            if i in live:
                return self.instance_url(i)
        return self.instance_url(0)  # none alive: requests fail as they would behind a balancer

    def instance_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def health(self, i: int) -> dict[str, object] | None:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            r = httpx.get(f"{self.instance_url(i)}/healthz", timeout=2.0)
            if r.status_code == 200:
                data: dict[str, object] = r.json()
                return data
        return None

    def owners(self) -> list[int]:
        """The instances that say they run the workers."""
        return [i for i in self.alive() if (self.health(i) or {}).get("workers") == "owner"]

    def wait_owner(self, *, timeout: float, exclude: int | None = None) -> int:
        """The one instance that owns the workers (never two), waited for."""

        def one() -> int | None:
            found = [i for i in self.owners() if i != exclude]
            assert len(found) <= 1, f"two owners at once: {found}"
            return found[0] + 1 if found else None  # +1: instance 0 is truthy too

        found: int = wait_until(one, timeout=timeout, what="an instance owning the workers", every=0.02)
        return found - 1

    def kill_instance(self, i: int) -> None:
        """SIGKILL instance ``i``."""
        proc = self.procs[i]
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def kill_gateway(self) -> None:
        for i in self.alive():
            self.kill_instance(i)

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None:
                stop_process(proc, 15)
        super().stop()

    def rss(self, field: str = "VmRSS") -> tuple[int, int]:
        from tests.kit.procnet import rss_kib

        gw = sum(rss_kib(p.pid, field) for p in self.procs if p is not None and p.poll() is None)
        node = self.engine.process.pid if self.engine is not None and self.engine.process is not None else 0
        return gw, rss_kib(node, field)


def takeover(net: HaNet, *, timeout: float) -> tuple[int, int, float]:
    """Kill -9 the owner; (killed, new owner, seconds from the kill until the new owner says so)."""
    owner = net.wait_owner(timeout=timeout)
    t0 = time.monotonic()
    net.kill_instance(owner)
    new = net.wait_owner(timeout=timeout, exclude=owner)
    return owner, new, time.monotonic() - t0
