"""What one unauthenticated JSON-RPC request may cost: body, nesting, batch work, call gas and time.

The JSON-RPC port answers anyone who can reach it, so every request is bounded before it costs much:
- the body: size (HTTP 413) and JSON nesting (checked by a scan before the decoder recurses into it);
- a batch: its number of requests, the gas of its calls summed, and the bytes of its answer;
- ``eth_call`` / ``eth_estimateGas``: a gas cap (geth's ``--rpc.gascap``) and a deadline (geth's
  ``--rpc.evmtimeout``), run on a pool of worker threads beside the event loop, so that block production
  and every other request keep being answered while a call runs.
Settings: ``chain_node/config.py`` (``rpc_*``); design: ``docs/design/node-rpc-limits.md``.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from chain_node.errors import Code, RpcError
from chain_node.interrupt import CallTimeout, Job
from provenance.limits import json_depth_exceeds

T = TypeVar("T")
_GRACE = 0.5  # seconds past a deadline before the caller is answered without waiting for the thread


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_body(body: bytes, *, max_depth: int) -> Any:
    """The request in ``body``, or RpcError: too deep (-32005, before decoding), not JSON (-32700)."""
    if json_depth_exceeds(body, max_depth):
        raise RpcError(
            Code.LIMIT_EXCEEDED,
            f"request nests deeper than {max_depth} levels",
            {"code": "BODY_TOO_DEEP", "limit": max_depth},
        )
    try:
        # NaN and Infinity are not JSON (and would be echoed back as invalid JSON in an id)
        return json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RpcError(Code.PARSE_ERROR) from None


def valid_id(rid: Any) -> bool:
    """JSON-RPC 2.0: an id is a string, a number or null (booleans, arrays, objects are not)."""
    if rid is None or isinstance(rid, str):
        return True
    if isinstance(rid, bool):
        return False
    return isinstance(rid, int) or (isinstance(rid, float) and math.isfinite(rid))


class BatchBudget:
    """What is left of one batch's allowance; shared by its requests (calls on the pool's threads)."""

    def __init__(self, *, gas: int, response_bytes: int, deadline: float, batch: bool = True) -> None:
        self.gas = gas
        self.response_bytes = response_bytes
        self.batch = batch  # False: a single request (its answer alone is bounded)
        self.deadline = deadline  # time.monotonic() by which every call of the batch is answered
        self._lock = threading.Lock()

    def check_gas(self) -> None:
        """Before a call starts: RpcError -32005 once the batch's calls have burned its gas."""
        if self.gas <= 0:
            raise RpcError(Code.LIMIT_EXCEEDED, "batch call gas exceeded", {"code": "BATCH_GAS_EXCEEDED"})

    def spend_gas(self, gas: int) -> None:
        """After a call: charge the gas its executions burned."""
        with self._lock:
            self.gas -= gas

    def take_bytes(self, n: int) -> bool:
        """Charge an answer's size; False once the batch's answer would be too large (then it is full)."""
        if n > self.response_bytes:
            self.response_bytes = 0
            return False
        self.response_bytes -= n
        return True


# -- calls beside the loop, under a deadline ---------------------------------------------------------------


def timeout_error(seconds: float) -> RpcError:
    """geth's answer to a call past ``--rpc.evmtimeout``, with a stable code in ``data``."""
    return RpcError(
        Code.EXECUTION_ERROR,
        f"execution aborted (timeout = {seconds:g}s)",
        {"code": "EXECUTION_TIMEOUT", "timeout": seconds},
    )


class CallPool:
    """Worker threads for what nothing cheap bounds (calls, estimates, index scans), each under a deadline.

    On a deadline the caller is answered with the timeout error at once and the call is stopped in its
    thread; a call still queued when its deadline passes does not start.
    """

    def __init__(self, *, workers: int, timeout: float) -> None:
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="call")
        self._jobs: set[Job] = set()

    def deadline(self) -> float:
        """The deadline of a call arriving now."""
        return time.monotonic() + self.timeout

    async def run(self, fn: Callable[[], T], deadline: float) -> T:
        """``fn()`` on a worker thread; RpcError (timeout) if it is not done by ``deadline``."""
        loop = asyncio.get_running_loop()
        job = Job(deadline)
        self._jobs.add(job)
        fut = loop.run_in_executor(self._pool, job.run, fn)
        left = max(0.0, deadline - time.monotonic())
        timer = loop.call_later(left, job.interrupt)
        try:
            # the grace covers a C call (a big modexp) that the interrupt waits for; the thread then
            # ends on its own, and the client has its answer meanwhile
            return await asyncio.wait_for(fut, left + _GRACE)
        except (CallTimeout, TimeoutError):
            raise timeout_error(self.timeout) from None
        finally:
            timer.cancel()
            self._jobs.discard(job)

    def close(self) -> None:
        """Stop the workers: queued calls are dropped, running ones interrupted now (the event loop that
        would interrupt them at their deadline is the one waiting here)."""
        for job in list(self._jobs):
            job.interrupt()
        self._pool.shutdown(wait=True, cancel_futures=True)
