"""The one date-order rule every workflow runs (``adapters.dated``): a record is out of order only when the
latest instant it can mean lies before the subject's mark; a date without a time counts to its day's end
and marks its day's start; the mark never moves back."""

from __future__ import annotations

import pytest

from adapters.dated import MARK, Dated, check_order
from adapters.errors import DateBeforeSubject
from adapters.rx.errors import RxSettledBeforeDispense

AUTHORED = "2026-12-06T02:00:00Z"  # 10:00 in Shanghai
DAY = {"at": "2026-12-05T16:00:00Z", "at_precision": "day"}  # 2026-12-06 in Shanghai, as rx facts hold it


def _mark(at: str, kind: str = "rx.issue") -> dict[str, object]:
    return {MARK: {"at": at, "kind": kind}}


def test_a_date_counts_to_its_days_end_and_marks_its_start() -> None:
    # A date-only hand-over on the day of the authoring: its day may hold it, accepted.
    moved = check_order(Dated.of(DAY, "at"), _mark(AUTHORED), "rx.dispense", details={"field": "at"})
    assert moved == _mark(AUTHORED)  # the mark stays at the later instant: the day's start is before it
    # The day before is wholly before the authoring.
    before = {"at": "2026-12-04T16:00:00Z", "at_precision": "day"}
    with pytest.raises(DateBeforeSubject) as err:
        check_order(Dated.of(before, "at"), _mark(AUTHORED), "rx.dispense", details={"field": "at"})
    assert (err.value.code, err.value.details) == (
        "DATE_BEFORE_SUBJECT",
        {"field": "at", "not_before": AUTHORED},
    )
    # A date-only first record marks its day's start: an instant of that day later is in order.
    first = check_order(Dated.of(DAY, "at"), None, "rx.issue", details={})
    assert first == _mark("2026-12-05T16:00:00Z")
    assert check_order(Dated.of({"at": "2026-12-05T16:00:00Z"}, "at"), first, "rx.review", details={})


def test_an_instant_before_the_mark_is_refused_and_the_mark_never_moves_back() -> None:
    later = {"at": "2026-12-06T03:00:00Z"}
    assert check_order(Dated.of(later, "at"), _mark(AUTHORED), "rx.review", details={}) == _mark(
        "2026-12-06T03:00:00Z", "rx.review"
    )
    same = check_order(Dated.of({"at": AUTHORED}, "at"), _mark(AUTHORED), "rx.review", details={})
    assert same == _mark(AUTHORED)  # equal is in order
    early = Dated.of({"at": "2026-12-06T01:59:59.999999Z"}, "at")
    with pytest.raises(RxSettledBeforeDispense) as err:
        check_order(early, _mark(AUTHORED), "rx.settle", error=RxSettledBeforeDispense,
                    details={"field": "settled_at"}, name_mark=False)  # fmt: skip
    assert err.value.details == {"field": "settled_at"}
    assert isinstance(err.value, DateBeforeSubject) and err.value.code == "RX_SETTLED_BEFORE_DISPENSE"
