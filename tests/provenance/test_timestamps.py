"""provenance.timestamps: the one module every RFC 3339 parse and format goes through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from provenance.errors import RecordInvalid
from provenance.timestamps import (
    MAX_UNIX,
    chain_time,
    format_rfc3339,
    format_timestamp,
    from_unix,
    optional_chain_time,
    parse_rfc3339,
    parse_timestamp,
    sortable,
    to_unix,
)


def test_envelope_timestamps_are_strict_utc_and_round_trip_at_milliseconds() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)
    assert format_timestamp(at) == "2026-01-02T03:04:05.678Z"
    assert format_timestamp(at.astimezone(timezone(timedelta(hours=8)))) == "2026-01-02T03:04:05.678Z"
    assert parse_timestamp("2026-01-02T03:04:05.678Z") == at.replace(microsecond=678_000)
    for bad in (
        "2026-01-02T03:04:05+00:00",
        "2026-01-02t03:04:05Z",
        "2026-01-02T03:04:05.1234567Z",
        "2026-02-30T00:00:00Z",
        "2026-01-02T03:04:05Z\n",
        "２０２６-01-02T03:04:05Z",
    ):
        with pytest.raises(RecordInvalid) as info:
            parse_timestamp(bad)
        assert info.value.details == {"field": "timestamp"}, bad
    with pytest.raises(RecordInvalid):
        format_timestamp(datetime(2026, 1, 1))  # naive: no instant at all


def test_rfc3339_strict_and_lenient_forms() -> None:
    at = parse_rfc3339("2026-11-25T09:30:00.123456789+08:00")
    assert at == datetime(2026, 11, 25, 1, 30, 0, 123_456, tzinfo=UTC)  # nanoseconds dropped, not rounded
    assert parse_rfc3339("2026-11-25T01:30:00Z") == datetime(2026, 11, 25, 1, 30, tzinfo=UTC)
    for lenient_only in ("2026-11-25t01:30:00Z", "2026-11-25 01:30:00Z", "2026-11-25T01:30:00z"):
        with pytest.raises(ValueError, match="not an RFC 3339 date-time"):
            parse_rfc3339(lenient_only)
        assert parse_rfc3339(lenient_only, lenient=True) == datetime(2026, 11, 25, 1, 30, tzinfo=UTC)
    for never in ("2026-11-25T01:30:00", "2026-11-25", "2026-11-25T01:30Z", "2026-13-01T00:00:00Z"):
        with pytest.raises(ValueError):
            parse_rfc3339(never, lenient=True)
    assert to_unix("1970-01-01T08:00:01+08:00") == 1


def test_formats_of_other_instants_and_chain_times() -> None:
    assert format_rfc3339(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00Z"
    assert format_rfc3339(datetime(2026, 1, 1, 0, 0, 0, 500, tzinfo=UTC)) == "2026-01-01T00:00:00.000500Z"
    assert format_rfc3339(datetime(99, 1, 1, tzinfo=UTC)) == "0099-01-01T00:00:00Z"  # not glibc's "99"
    # Whatever a raw transaction put on chain reads as a time, never an error.
    assert chain_time(0) == "1970-01-01T00:00:00Z"
    assert chain_time(2**64 - 1) == chain_time(MAX_UNIX) == "9999-12-31T23:59:59Z"
    assert from_unix(-5) == datetime(1970, 1, 1, tzinfo=UTC)
    assert optional_chain_time(0) is None and optional_chain_time(1) == datetime(
        1970, 1, 1, 0, 0, 1, tzinfo=UTC
    )


def test_sortable_keys_sort_as_the_instants_do() -> None:
    base = datetime(2026, 5, 6, 7, 8, 5, tzinfo=UTC)
    instants = [base + timedelta(microseconds=us) for us in (0, 100_000, 250_000, 999_999, 1_000_000)]
    keys = [sortable(a) for a in instants]
    assert keys == [
        "2026-05-06T07:08:05",
        "2026-05-06T07:08:05.1",
        "2026-05-06T07:08:05.25",
        "2026-05-06T07:08:05.999999",
        "2026-05-06T07:08:06",
    ]
    assert sorted(keys) == keys
