"""Stopping Python code in another thread at a deadline: an asynchronous exception.

py-evm's loops and precompiles (blake2f rounds, pairings) are Python code, so an exception raised
asynchronously in their thread stops them at the next bytecode wherever they are: a cooperative check in
the interpreter loop could not reach into a precompile. A C call that holds the GIL (a big modexp's
``pow``) is stopped only when it returns. Used for calls (``chain_node/rpc_limits.py``) and for
transactions while a block is built (``chain_node/producer.py``).
"""

from __future__ import annotations

import ctypes
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
    """One thread that interrupts the job it watches once the job's deadline has passed (within ``poll``
    seconds): one job at a time (the caller serialises them). It polls instead of being woken per job,
    so a job costs its caller no thread hand-off (the producer runs one per block)."""

    def __init__(self, poll: float = 0.05) -> None:
        self.poll = poll
        self._job: Job | None = None
        self._thread: threading.Thread | None = None

    def run(self, fn: Callable[[], T], seconds: float) -> T:
        """``fn()`` in this thread, stopped by CallTimeout if it runs longer than ``seconds`` (the
        watchdog interrupts it: this thread may be the event loop's, which could not time itself)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
            self._thread.start()
        job = self._job = Job(time.monotonic() + seconds)
        try:
            return job.run(fn)
        finally:
            self._job = None

    def _watch(self) -> None:
        while True:
            time.sleep(self.poll)
            job = self._job
            if job is not None and time.monotonic() >= job.deadline:
                job.interrupt()  # a no-op once the job has ended
