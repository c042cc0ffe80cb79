"""A subject's records in date order (sixth attack, finding 7): a record's domain dates may not precede the
dates of the subject's earlier accepted records. The clock bounds a date from above (``DATE_IN_FUTURE``);
this bounds it from below. Each workflow keeps a *mark* in the subject's state (``MARK``: the latest
instant its accepted records were dated, and the kind of the record that dated it) and runs
:func:`check_order` inside its write transaction, so two records racing on one subject are ordered too.

Which dates count is the domain's (``docs/design/rx-chain.md``, ``docs/design/adapters.md``): the payload's
own dates of what happened (``authoredOn``, ``reviewed_at``, ``whenHandedOver``, ``revoked_at``,
``settled_at``; a member's ``effective_at`` and ``paid_at``; a request's ``requested_at``, ``granted_at``,
``revoked_at``; a dataset's ``collected_at`` or ``derived_at``, ``stored_at``, ``opened_at``). The
envelope's ``timestamp`` is when the organisation signed, which the gateway bounds by its own clock: later
records carry later ones, whatever their payload says, so it orders nothing.

A date without a time (FHIR ``date``, fact ``<name>_precision``) names its whole day: a new record is
before the mark only when the *end* of its day is (the day may hold the earlier record's instant), and a
date-only record sets the mark at the *start* of its day. Either way a day never refuses what it can hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from adapters.errors import DateBeforeSubject
from provenance.timestamps import format_rfc3339, parse_rfc3339

MARK = "dated"  # the state member holding the mark: {"at": RFC 3339 UTC, "kind": record kind}

# The longest a date without a time can last (its end, from its first instant): a day is 24 h in the
# deployment's zones (Asia/Shanghai has no daylight saving); a month or a year is bounded from above.
_SPANS = {
    "second": timedelta(0),
    "day": timedelta(days=1),
    "month": timedelta(days=31),
    "year": timedelta(days=366),
}


@dataclass(frozen=True)
class Dated:
    """When a record says it happened: from ``first`` to ``last`` (the same instant for a date-time)."""

    first: datetime
    last: datetime

    @classmethod
    def of(cls, facts: Mapping[str, Any], name: str) -> Dated:
        """The fact ``name`` (RFC 3339 UTC, a date's first instant) with its ``<name>_precision``."""
        first = parse_rfc3339(str(facts[name]), lenient=True)
        span = _SPANS.get(str(facts.get(f"{name}_precision", "second")), timedelta(0))
        return cls(first, first + span - timedelta.resolution if span else first)


def mark_of(data: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The subject's mark in a state's data (None: no dated record yet, or a state from before marks)."""
    mark = data.get(MARK) if data is not None else None
    return mark if isinstance(mark, Mapping) and isinstance(mark.get("at"), str) else None


def check_order(
    when: Dated,
    data: Mapping[str, Any] | None,
    kind: str,
    *,
    error: type[DateBeforeSubject] = DateBeforeSubject,
    details: Mapping[str, Any],
    name_mark: bool = True,
) -> dict[str, Any]:
    """Raise ``error`` if ``when`` lies before the mark in ``data`` (``details``, with the mark's instant as
    ``not_before`` unless ``name_mark`` is false); else the state members to write: the mark moved to
    ``when`` if it is later (a record's date never moves it back)."""
    mark = mark_of(data)
    if mark is None:
        return {MARK: {"at": format_rfc3339(when.first), "kind": kind}}
    at = parse_rfc3339(str(mark["at"]), lenient=True)
    if when.last < at:
        raise error(
            f"{details.get('field', 'the date')} is before the subject's earlier record "
            f"({mark.get('kind')}, dated {format_rfc3339(at)})",
            details={**details, **({"not_before": format_rfc3339(at)} if name_mark else {})},
        )
    later = when.first > at
    return {MARK: {"at": format_rfc3339(when.first), "kind": kind} if later else dict(mark)}
