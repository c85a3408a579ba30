"""Tables, notes and charts for people: what a cell reads, what a page may not hold."""

from __future__ import annotations

import datetime as dt
import re

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from zkdrift.reports import display, plots
from zkdrift.reports.detail import Verdict


def test_cells_read_as_people_write_them() -> None:
    when = dt.datetime(2026, 12, 1, 14, 12, 5, 313381)
    assert display.cell_text(pd.Timestamp(when)) == "2026-12-01 14:12:05 UTC"
    assert display.cell_text(pd.Timedelta(seconds=15.313381)) == "15 s"
    assert display.cell_text(dt.timedelta(hours=3, minutes=12, seconds=9)) == "3 h 12 min"
    assert display.cell_text(np.int64(12_345)) == "12,345"
    assert display.cell_text(0.0227) == "0.023"
    assert display.cell_text(2.0) == "2"
    assert display.cell_text(True) == "yes"
    for nothing in (None, float("nan"), pd.NA, pd.NaT, np.nan):
        assert display.cell_text(nothing) == ""


def test_a_table_has_no_index_and_escapes_what_zookeeper_holds() -> None:
    frame = pd.DataFrame(
        {
            "path": ["/app/<b>x</b>", "/app/db-url"],
            "live": ['<img src=x onerror="alert(1)">', None],
            "count": pd.array([3, None], dtype="Int64"),
        },
        index=[10, 11],
    )

    page = display.table(frame)._repr_html_()

    assert page.startswith('<div class="zk-report zk-scroll"><table')
    assert re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", page) == ["path", "live", "count"]
    assert "<img" not in page and "<b>" not in page
    assert "&lt;img src=x onerror=" in page
    assert ">10<" not in page and ">11<" not in page  # no index
    assert "<wbr>" in page and '<span class="zk-seg">/db-url</span>' in page
    assert re.search(r'<td class="zk-num"[^>]*></td>', page)  # an empty count is empty


def test_notes_render_code_and_emphasis_and_escape_the_rest() -> None:
    assert display.inline("run `zkdrift apply <t> --yes`; *since* a & b") == (
        "run <code>zkdrift apply &lt;t&gt; --yes</code>; <em>since</em> a &amp; b"
    )


def test_the_verdict_banner_leads_with_the_state() -> None:
    now = dt.datetime(2026, 12, 1, 15, 0)
    verdict = Verdict(
        tree="demo",
        state="out of sync",
        headline="OUT OF SYNC: 4 paths since 12:48 UTC; run `zkdrift apply demo --yes`",
        open_paths=4,
        since=now - dt.timedelta(hours=2),
        checked_at=now - dt.timedelta(minutes=5),
        desired_revision=3,
        as_of=now,
    )

    banner = display.verdict_banner(verdict).html

    assert '<div class="zk-verdict zk-bad" role="status"><strong>OUT OF SYNC</strong>: ' in banner
    assert "<code>zkdrift apply demo --yes</code>" in banner
    assert "Latest drift check 2026-12-01 14:55:00 UTC (5 min ago)" in banner


def test_charts_count_on_integer_axes_over_utc_dates_and_events_are_bars() -> None:
    times = pd.to_datetime(["2026-11-28 10:00", "2026-11-29 16:00", "2026-12-01 07:00"])
    checks = pd.DataFrame(
        {
            "run_id": [1, 1, 1, 2, 2, 2, 3, 3, 3],
            "checked_at": times.repeat(3),
            "classification": ["conflict", "drift", "pending"] * 3,
            "count": [0, 1, 0, 0, 0, 0, 0, 4, 0],
        }
    )
    snaps = pd.DataFrame(
        {
            "taken_at": times,
            "baseline": [True, False, False],
            "nodes": [116, 116, 117],
            "bytes": [2_400, 2_410, 2_517],
            "added": [116, 0, 1],
            "removed": [0, 0, 0],
            "modified": [0, 1, 3],
            "changes": [116, 1, 4],
        }
    )

    drift = plots.drift_over_time(checks, "demo")
    changes = plots.changes_per_snapshot(snaps, "demo")
    size = plots.snapshot_size(snaps, "demo")

    assert drift is not None and changes is not None and size is not None
    for fig in (drift, changes, size):
        for ax in fig.axes:
            assert (
                ax.get_title(loc="left") and ax.get_xlabel().endswith("(UTC)") and ax.get_ylabel()
            )
            assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
            assert isinstance(ax.yaxis.get_major_locator(), MaxNLocator)
    ticks = drift.axes[0].yaxis.get_major_locator().tick_values(0, 4)
    assert all(float(t).is_integer() for t in ticks)
    (ax,) = changes.axes
    assert len(ax.patches) == 4  # two snapshots with changes: created + changed bars
    assert not [line for line in ax.get_lines() if len(line.get_xdata())]  # no joined lines
    assert [label for label in drift.axes[0].get_legend_handles_labels()[1]] == ["drift"]
    image = plots.image(changes, "Changes per snapshot of demo").html
    assert image.startswith('<img alt="Changes per snapshot of demo" width="')
    assert 'src="data:image/png;base64,' in image
