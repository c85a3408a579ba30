"""Report windows: when a report starts and ends, in words and as naive UTC datetimes."""

from __future__ import annotations

import datetime as dt
import re

from zkdrift.errors import InvalidInputError

When = dt.datetime | dt.date | str | None

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def parse_when(value: When, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """A window bound as a naive UTC datetime.

    Accepts a datetime (aware ones are converted to UTC), a date (its
    midnight), an ISO 8601 string, or a relative age such as ``30m``,
    ``12h``, ``7d`` or ``2w`` (that long before ``now``).
    """
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    match = _RELATIVE.match(value)
    if match:
        amount, unit = float(match.group(1)), match.group(2)
        return (now or utcnow()) - dt.timedelta(**{_UNITS[unit]: amount})
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInputError(
            f"cannot read {value!r} as a time: use ISO 8601 (2024-06-01, "
            "2024-06-01T12:00) or an age such as 30m, 12h, 7d, 2w"
        ) from None
    return parse_when(parsed)


def describe_window(since: When = None, until: When = None) -> str:
    """The window in words, for report headers."""
    lo, hi = parse_when(since), parse_when(until)

    def fmt(value: dt.datetime) -> str:
        return value.isoformat(sep=" ", timespec="minutes") + " UTC"

    if lo and hi:
        return f"{fmt(lo)} to {fmt(hi)}"
    if lo:
        return f"since {fmt(lo)}"
    if hi:
        return f"until {fmt(hi)}"
    return "all history"
