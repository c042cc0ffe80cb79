"""Instants as text: every RFC 3339 parse and format of the project goes through here.

Three forms are written: envelope timestamps (UTC, milliseconds, ``Z``: :func:`format_timestamp`), other
instants in UTC (:func:`format_rfc3339`: ``Z``, a fraction only when there is one; trust files, facts, chain
times), and the sortable key the gateway's database compares (:func:`sortable`). Two are read: envelope
timestamps, strictly (:func:`parse_timestamp`), RFC 3339 date-times with ``Z`` or an offset
(:func:`parse_rfc3339`), and FHIR R4 ``dateTime`` values, partial dates included, as the span of time they
name (:func:`parse_fhir_datetime`). Times the chain holds (unix seconds, any uint64) convert through
:func:`from_unix`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from provenance.errors import RecordInvalid

# RFC 3339 in UTC only ("Z"), so that two readers never disagree on the instant or the bytes. ASCII digits
# only: Python's \d also matches other scripts' digits, ECMA 262's (the page's) does not.
_TS_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")

# RFC 3339 date-time (section 5.6): a fraction of any length up to nanoseconds, "Z" or a numeric offset. The
# RFC allows "t", "z" and (by application choice) a space; ``lenient`` readers take them.
_RFC3339_RE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})(?P<sep>[Tt ])(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?P<frac>\.[0-9]{1,9})?(?P<off>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)

# FHIR R4 dateTime, the specification's own regex (datatypes.html#dateTime) with its parts named: YYYY,
# YYYY-MM, YYYY-MM-DD, or a date-time to the second with an optional fraction and a mandatory zone ("If hours
# and minutes are specified, a time zone SHALL be populated"). Year 0000, hour 24, month 13 never match;
# second 60 (a leap second) does. ASCII digits only (see _TS_RE).
_FHIR_DATETIME_RE = re.compile(
    r"(?P<year>[0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
    r"(-(?P<month>0[1-9]|1[0-2])(-(?P<day>0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T(?P<hms>([01][0-9]|2[0-3]):[0-5][0-9]):(?P<sec>[0-5][0-9]|60)(?P<frac>\.[0-9]+)?"
    r"(?P<off>Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)

# The last second a ``datetime`` can hold (9999-12-31T23:59:59Z): chain times beyond it read as it.
MAX_UNIX = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())


def format_timestamp(ts: datetime) -> str:
    """RFC 3339 UTC form used in envelopes (milliseconds, ``Z``)."""
    if ts.tzinfo is None:
        raise RecordInvalid("timestamp must be timezone-aware")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def utc_now() -> str:
    """The current instant as an envelope timestamp."""
    return format_timestamp(datetime.now(UTC))


def parse_timestamp(value: str) -> datetime:
    """Parse an envelope timestamp (RFC 3339, UTC, ``Z``, at most microseconds)."""
    if not isinstance(value, str) or not _TS_RE.fullmatch(value):
        raise RecordInvalid(
            "timestamp must be RFC 3339 UTC like 2026-01-02T03:04:05.678Z", details={"field": "timestamp"}
        )
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RecordInvalid(
            f"timestamp is not a valid date-time: {value}", details={"field": "timestamp"}
        ) from exc


def parse_rfc3339(value: str, *, lenient: bool = False) -> datetime:
    """An RFC 3339 date-time with ``Z`` or an offset as an aware datetime; ``ValueError`` otherwise.

    Strict by default (``T`` and ``Z`` upper case); ``lenient`` also takes ``t``, ``z`` and a space. Digits
    beyond the sixth of the fraction are dropped, not rounded (``datetime`` holds microseconds).
    """
    m = _RFC3339_RE.fullmatch(value) if isinstance(value, str) else None
    if m is None or (not lenient and (m["sep"] != "T" or m["off"] == "z")):
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    off = "+00:00" if m["off"] in ("Z", "z") else m["off"]
    return datetime.fromisoformat(f"{m['date']}T{m['time']}{(m['frac'] or '')[:7]}{off}")


@dataclass(frozen=True)
class TimeSpan:
    """What a FHIR ``dateTime`` names: from ``start`` (inclusive) to ``end`` (exclusive). A date-time names
    one instant (``end == start``); a date, a month or a year the whole of it in the reader's time zone."""

    start: datetime
    end: datetime
    precision: str  # "year", "month", "day" or "second"

    @property
    def partial(self) -> bool:
        """Whether the value is a date without a time (a day, month or year)."""
        return self.precision != "second"


def parse_fhir_datetime(value: str, zone: tzinfo) -> TimeSpan:
    """A FHIR R4 ``dateTime`` as the span it names; ``ValueError`` for anything else.

    A date without a time has no zone in FHIR: it is read as the calendar day (month, year) in ``zone``, the
    deployment's. Leap second 60 reads as the next instant after second 59; fraction digits beyond the sixth
    are dropped (``datetime`` holds microseconds). Dates must exist (no February 30), and the span must lie
    within what a ``datetime`` holds in UTC (years 0001 to 9999).
    """
    m = _FHIR_DATETIME_RE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"not a FHIR dateTime: {value!r}")
    year, month, day = int(m["year"]), int(m["month"] or 1), int(m["day"] or 1)
    try:
        if m["hms"] is not None:
            leap = m["sec"] == "60"
            off = "+00:00" if m["off"] == "Z" else m["off"]
            frac = (m["frac"] or "")[:7]
            at = datetime.fromisoformat(f"{value[:10]}T{m['hms']}:{'59' if leap else m['sec']}{frac}{off}")
            at = (at + timedelta(seconds=1) if leap else at).astimezone(UTC)
            return TimeSpan(at, at, "second")
        start = datetime(year, month, day, tzinfo=zone)
        if m["day"] is not None:
            precision, end = "day", start + timedelta(days=1)
        elif m["month"] is not None:
            precision = "month"
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
        else:
            precision, end = "year", datetime(year + 1, 1, 1, tzinfo=zone)
        # A wall-clock day in the zone, converted through UTC (a DST change makes it 23 or 25 hours long).
        start, end = start.astimezone(UTC), end.astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # February 30; a span beyond 0001 to 9999 in UTC
        raise ValueError(f"not a valid FHIR dateTime: {value!r} ({exc})") from exc
    return TimeSpan(start, end, precision)


def format_rfc3339(at: datetime) -> str:
    """An aware datetime as RFC 3339 in UTC with ``Z``, its fraction only when it has one."""
    # Not strftime: glibc writes year 99 as "99", and it has no "fraction if any".
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def from_unix(seconds: int | float) -> datetime:
    """Unix seconds as an aware UTC datetime, clamped to what ``datetime`` holds (1970 to 9999).

    The chain holds whatever a transaction put there (2^64 - 1 through a raw transaction): such a time reads
    as 9999-12-31T23:59:59Z, never as an error."""
    return datetime.fromtimestamp(min(max(seconds, 0), MAX_UNIX), UTC)


def chain_time(seconds: int) -> str:
    """A time read from the chain (unix seconds, any uint64) as RFC 3339 UTC (whole seconds)."""
    return format_rfc3339(from_unix(int(seconds)))


def optional_chain_time(seconds: int) -> datetime | None:
    """A bound the chain stores as unix seconds with 0 for "none" (key windows, revocations)."""
    return from_unix(int(seconds)) if seconds else None


def to_unix(value: str) -> int:
    """Whole seconds since the epoch of an RFC 3339 instant (``Z`` or an offset)."""
    return int(parse_rfc3339(value, lenient=True).timestamp())


def sortable(at: datetime) -> str:
    """An instant as the gateway's database compares timestamps: UTC, no ``Z``, the fraction without
    trailing zeros. Envelope timestamps carry 0 to 6 fraction digits before ``Z``; with the ``Z`` dropped,
    plain string order is time order (``…05`` < ``…05.1`` < ``…05.25`` < ``…06``)."""
    at = at.astimezone(UTC)
    frac = f"{at.microsecond:06d}".rstrip("0")
    return at.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "")
