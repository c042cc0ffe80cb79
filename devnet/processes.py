"""Process bookkeeping for the devnet's supervisor: pid files that still name our process, stopping
processes that are or are not our children, free ports, log tails, and SIGINT/SIGTERM as an exception."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from devnet.layout import HOST, Layout
from provenance.files import write_public

# What /proc/<pid>/cmdline must hold for a pid file to still name our process (pids get reused).
PROCESS_MARKERS = {
    "devnet": ("devnet",),
    "node": ("chain_node", "anvil"),
    "gateway": ("gateway",),
    "witness": ("witness",),  # witness-<org>
}


class Stopped(BaseException):
    """Raised by the SIGINT/SIGTERM handler to unwind whatever the supervisor is doing."""


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent: init in many containers is slow or absent) is dead.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    return True


def ours(name: str, pid: int) -> bool:
    """True if ``pid`` is alive and still the process the pid file ``name`` was written for."""
    if not alive(pid):
        return False
    cmdline = _cmdline(pid)
    if cmdline is None:  # no /proc: trust the pid file
        return True
    return any(marker in cmdline for marker in PROCESS_MARKERS[name.partition("-")[0]])


def read_pid(layout: Layout, name: str) -> int | None:
    """The pid in the pid file ``name``, if any."""
    try:
        return int(layout.pid_file(name).read_text().strip())
    except (OSError, ValueError):
        return None


def write_pid(layout: Layout, name: str, pid: int) -> None:
    """Write the pid file ``name``."""
    write_public(layout.pid_file(name), f"{pid}\n".encode())


def running(layout: Layout, name: str) -> int | None:
    """The pid of process ``name`` over ``layout`` if its pid file names a live process of ours."""
    pid = read_pid(layout, name)
    return pid if pid is not None and ours(name, pid) else None


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM ``pid``, wait up to ``timeout`` s, then SIGKILL (for processes that are not our children)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` of the devnet's host now."""
    with socket.socket() as s:
        # As the servers do: a port whose last connections linger in TIME_WAIT is free to listen on.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def tail(path: Path, n: int = 2000) -> str:
    """The last ``n`` characters of a log, for an error message."""
    try:
        return path.read_text(errors="replace")[-n:].strip()
    except OSError:
        return ""


def clear_stale(layout: Layout, timeout: float) -> None:
    """After a supervisor died without cleaning up (kill -9), stop its orphans and drop its run files."""
    for name in layout.children():
        pid = running(layout, name)
        if pid is not None:
            terminate(pid, timeout)
    if layout.run_dir.exists():
        shutil.rmtree(layout.run_dir)


@contextlib.contextmanager
def signals_stop() -> Iterator[None]:
    """Turn SIGINT/SIGTERM into :class:`Stopped` once; later signals are ignored while we clean up."""

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Stopped

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
