"""Group commit: concurrent callers' items done as one batch, without waiting on a timer.

The first caller runs the batch of whatever is queued; callers that arrive while it runs queue up, and the
next of them runs their batch when it is done. One caller at a time gets a batch of one; under load batches
form by themselves. The gateway groups two things this way: the acceptance receipts of concurrent single
submissions (one SM2 signature per group) and their database transactions (one commit per group).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(slots=True)
class _Slot(Generic[_T, _R]):
    item: _T
    done: bool = False
    result: _R | None = None
    error: BaseException | None = None


class GroupRunner(Generic[_T, _R]):
    """Runs ``run_many`` over the items of concurrent callers together; each caller gets its own result."""

    def __init__(self, run_many: Callable[[Sequence[_T]], Sequence[_R]]) -> None:
        self._run_many = run_many
        self._cond = threading.Condition()
        self._queue: list[_Slot[_T, _R]] = []
        self._running = False

    def run(self, item: _T) -> _R:
        """``item``'s result, computed alone or with the items of callers queued beside it. An exception of
        ``run_many`` is raised to every caller of that batch."""
        slot: _Slot[_T, _R] = _Slot(item)
        with self._cond:
            self._queue.append(slot)
            while self._running and not slot.done:
                self._cond.wait()
            lead = not slot.done  # nobody is running a batch: lead one, of everything queued so far
            if lead:
                self._running = True
                batch, self._queue = self._queue, []
        if lead:
            try:
                results: Sequence[_R] | None = self._run_many([s.item for s in batch])
                error = None
            except BaseException as exc:
                results, error = None, exc
            with self._cond:
                for i, s in enumerate(batch):
                    s.done, s.error = True, error
                    if results is not None:
                        s.result = results[i]
                self._running = False
                self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # set with done, when no error
