"""Stopping Python code in another thread at a deadline: an asynchronous exception.

py-evm's loops and precompiles (blake2f rounds, pairings) are Python code, so an exception raised
asynchronously in their thread stops them at the next bytecode wherever they are: a cooperative check in
the interpreter loop could not reach into a precompile. A C call that holds the GIL (a big modexp's
``pow``) is stopped only when it returns. Used for calls (``chain_node/rpc_limits.py``) and for
transactions while a block is built (``chain_node/producer.py``).
"""

from __future__ import annotations

import ctypes
import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class CallTimeout(BaseException):
    """Raised asynchronously in a call thread at its deadline (a BaseException: no ``except Exception``
    in py-evm may swallow it)."""


_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = [ctypes.c_ulong, ctypes.py_object]
_set_async_exc.restype = ctypes.c_int
_NULL = ctypes.py_object()  # as the exception: withdraw a pending one


class Job:
    """One piece of work on a thread; :meth:`interrupt` raises CallTimeout in that thread if it still runs.

    Where the exception lands is unknown, so whatever state it passes through is never used again (a
    call's runner, ``RunnerPool``; a block in progress, ``BlockProducer``); it is withdrawn if the job ends
    first.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self._lock = threading.Lock()
        self._tid: int | None = None
        self._fired = False

    def run(self, fn: Callable[[], T]) -> T:
        with self._lock:
            if time.monotonic() >= self.deadline:  # waited in the queue past its deadline
                raise CallTimeout
            self._tid = threading.get_ident()
        try:
            return fn()
        finally:
            with self._lock:
                if self._fired and self._tid is not None:
                    _set_async_exc(self._tid, _NULL)  # fired but not delivered yet: withdraw it
                self._tid = None

    def interrupt(self) -> None:
        with self._lock:
            if self._tid is None or self._fired:
                return
            self._fired = True
            _set_async_exc(self._tid, CallTimeout)


class Watchdog:
    """One thread that interrupts the job it watches once the job's thread has spent its CPU seconds
    (checked every ``poll`` seconds): one job at a time (the caller serialises them). CPU time, not the
    wall clock: on a loaded machine a block waits for a core, which is no reason to drop a transaction.
    It polls instead of being woken per job, so a job costs its caller no thread hand-off."""

    def __init__(self, poll: float = 0.05) -> None:
        self.poll = poll
        self._watched: tuple[Job, int, float] | None = None  # the job, its thread's CPU clock, the limit
        self._thread: threading.Thread | None = None

    def run(self, fn: Callable[[], T], cpu_seconds: float) -> T:
        """``fn()`` in this thread, stopped by CallTimeout once this thread has spent ``cpu_seconds`` of
        CPU in it (the watchdog interrupts it: this thread may be the event loop's, which could not time
        itself)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
            self._thread.start()
        job = Job(math.inf)
        clock = time.pthread_getcpuclockid(threading.get_ident())
        self._watched = (job, clock, time.thread_time() + cpu_seconds)
        try:
            return job.run(fn)
        finally:
            self._watched = None

    def _watch(self) -> None:
        while True:
            time.sleep(self.poll)
            watched = self._watched
            if watched is not None:
                job, clock, limit = watched
                if time.clock_gettime(clock) >= limit:
                    job.interrupt()  # a no-op once the job has ended
