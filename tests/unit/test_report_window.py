"""Report windows: ISO times, dates and ages, read as naive UTC datetimes."""

from __future__ import annotations

import datetime as dt

import pytest

from zkdrift.errors import InvalidInputError
from zkdrift.reports.window import describe_window, parse_when


def test_parse_when_reads_iso_times_dates_and_ages() -> None:
    now = dt.datetime(2024, 6, 10, 12, 0)

    assert parse_when("7d", now=now) == dt.datetime(2024, 6, 3, 12, 0)
    assert parse_when("90m", now=now) == dt.datetime(2024, 6, 10, 10, 30)
    assert parse_when("2024-06-01") == dt.datetime(2024, 6, 1)
    assert parse_when("2024-06-01T12:00:00+02:00") == dt.datetime(2024, 6, 1, 10, 0)
    assert parse_when(dt.date(2024, 6, 1)) == dt.datetime(2024, 6, 1)
    assert parse_when(None) is None
    with pytest.raises(InvalidInputError, match="yesterday"):
        parse_when("yesterday")


def test_describe_window_names_both_ends_in_utc() -> None:
    assert describe_window() == "all history"
    assert describe_window("2024-06-01") == "since 2024-06-01 00:00 UTC"
    assert describe_window(None, "2024-06-02T10:30") == "until 2024-06-02 10:30 UTC"
    assert (
        describe_window("2024-06-01", "2024-06-02")
        == "2024-06-01 00:00 UTC to 2024-06-02 00:00 UTC"
    )
