"""Acceptance receipts: one SM2 signature per group of records accepted together, not one per record.

A bulk request's accepted items are signed as one batch. Single submissions are grouped the way databases
group commits: the first caller signs whatever is queued, callers arriving meanwhile queue up and the next
of them signs their group when it is done. No caller waits for a timer; with one request at a time every
receipt is a plain signed receipt, under load groups form by themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from provenance.receipt import AcceptanceReceipt


@dataclass(slots=True)
class _Slot:
    receipt: AcceptanceReceipt
    done: bool = False
    note: str = ""
    error: BaseException | None = None


class GroupSigner:
    """Signs receipts of concurrent callers together (``sign_many`` gives each caller its own receipt)."""

    def __init__(self, sign_many: Callable[[Sequence[AcceptanceReceipt]], list[str]]) -> None:
        self._sign_many = sign_many
        self._cond = threading.Condition()
        self._queue: list[_Slot] = []
        self._signing = False

    def sign(self, receipt: AcceptanceReceipt) -> str:
        """This record's receipt, signed alone or with the receipts of callers queued beside it."""
        slot = _Slot(receipt)
        with self._cond:
            self._queue.append(slot)
            while self._signing and not slot.done:
                self._cond.wait()
            if not slot.done:  # nobody is signing: lead, with everything queued so far
                self._signing = True
                group, self._queue = self._queue, []
        if not slot.done:
            try:
                notes: list[str] | None = self._sign_many([s.receipt for s in group])
                error = None
            except BaseException as exc:  # every caller of the group sees the failure
                notes, error = None, exc
            with self._cond:
                for i, s in enumerate(group):
                    s.done, s.error = True, error
                    if notes is not None:
                        s.note = notes[i]
                self._signing = False
                self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.note
