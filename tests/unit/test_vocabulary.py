"""The words and time formats people read."""

from __future__ import annotations

import datetime as dt

import pytest

from zkdrift import vocabulary as v
from zkdrift.model import ChangeKind


def test_drift_kinds_name_where_the_path_is() -> None:
    assert v.drift_kind(ChangeKind.ADDED) == "missing live"  # an apply would create it
    assert v.drift_kind("removed") == "live only"  # an apply would delete it
    assert v.drift_kind(ChangeKind.DATA_CHANGED) == "changed"


def test_history_kinds_say_what_happened_live() -> None:
    assert [v.history_kind(k) for k in ("added", "removed", "data_changed", "acl_changed")] == [
        "created",
        "deleted",
        "changed",
        "ACL changed",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (59.9, "59 s"),
        (60, "1 min"),
        (3600, "1 h"),
        (11_520, "3 h 12 min"),
        (86_400 * 2 + 3600 * 4 + 59, "2 d 4 h"),
        (86_400, "1 d"),
        (None, ""),
    ],
)
def test_ages_read_like_a_person_would_say_them(seconds: float | None, text: str) -> None:
    assert v.age_text(seconds) == text


def test_times_are_utc_to_the_second_with_the_zone_named() -> None:
    naive = dt.datetime(2026, 12, 1, 14, 12, 5, 313381)  # the store keeps naive UTC
    paris = dt.datetime(2026, 12, 1, 15, 12, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert v.utc_text(naive) == v.utc_text(paris) == "2026-12-01 14:12:05 UTC"
    assert v.iso(naive) == "2026-12-01T14:12:05+00:00"
    assert v.utc_text(None) == "" and v.iso(None) is None


def test_the_headline_gives_the_count_the_time_and_the_next_step() -> None:
    since = dt.datetime.now(dt.UTC).replace(hour=12, minute=48)
    assert v.headline("demo", 4, since) == (
        "OUT OF SYNC: 4 paths since 12:48 UTC;"
        " run `zkdrift apply demo --yes` or `zkdrift adopt demo`"
    )
    assert v.headline("demo", 0, None).startswith("IN SYNC")
    assert v.drift_status(0, since) == "in sync"
    assert v.drift_status(1, since) == "1 drifted since 12:48 UTC"
    yesterday = since - dt.timedelta(days=1)
    assert v.drift_status(2, yesterday).endswith(yesterday.strftime("%Y-%m-%d 12:48 UTC"))


def test_a_tree_without_desired_state_is_observed_only_with_the_commands_to_manage_it() -> None:
    assert v.observed_headline("demo") == (
        "NO DESIRED STATE: this tree is observed only; to manage it, run `zkdrift adopt demo` "
        "(accept live as desired) or `zkdrift desired import demo FILE`"
    )
    assert v.observed_only("demo").startswith("no desired state: this tree is observed only")
    assert v.unchecked_headline("demo", 3) == (
        "NOT CHECKED: demo has a desired state (revision 3) but no drift check yet; "
        "run `zkdrift diff demo`"
    )
