"""The report's charts, from the raw frames, readable at a glance.

Counts are bars or steps on integer axes; time is a real date axis in UTC
with concise labels; separate events (changes, one snapshot each) are bars,
never joined by lines; states that hold until the next measurement (drift
at each check, the tree's size) are steps. Every chart has a title and
labelled axes.

Charts are built with matplotlib's object API (no pyplot state) and shown
with :func:`image`: a PNG inlined in HTML with alt text, the same whether
papermill runs the notebook or someone opens it in Jupyter.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import io
import struct
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from zkdrift.reports.display import Html
from zkdrift.reports.views import bytes_text
from zkdrift.vocabulary import DRIFT_CLASSES, history_kind, write_verb

WIDTH = 10.5  # inches; at DPI, about 1,050 pixels: fits a laptop screen and the page
DPI = 100
# Pixels per displayed pixel: sharp on high-density screens.
SCALE = 2

CLASS_COLORS = {"drift": "#d9480f", "pending": "#1971c2", "conflict": "#a61e4d"}
KIND_COLORS = {"created": "#2f9e44", "deleted": "#e03131", "changed": "#1971c2"}
BAR_COLOR = "#1971c2"
LINE_COLOR = "#364fc7"

_RC: dict[str, Any] = {
    "font.size": 10.5,
    "axes.titlesize": 12.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dee2e6",
    "grid.linewidth": 0.8,
    "legend.frameon": False,
}


P = ParamSpec("P")
R = TypeVar("R")


def styled(build: Callable[P, R]) -> Callable[P, R]:
    """Run a chart builder in the report's style (rc settings), leaving the
    caller's matplotlib settings as they were."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with matplotlib.rc_context(cast(Any, _RC)):
            return build(*args, **kwargs)

    return wrapper


def new_figure(height: float = 3.4, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    """A figure WIDTH wide with ``ncols`` axes side by side (call it under :func:`styled`)."""
    fig = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.set_axisbelow(True)
    return fig, axes


def date_numbers(times: Any) -> np.ndarray[Any, Any]:
    """Times (naive UTC) as matplotlib date numbers (days)."""
    stamps = pd.to_datetime(pd.Series(list(times))).dt.to_pydatetime()
    return np.asarray(mdates.date2num(stamps), dtype=float)  # type: ignore[no-untyped-call]


# ConciseDateFormatter's levels: years, months, days, hours, minutes, seconds.
# Days read "Nov 29" (not a bare "29"); the offset names the rest, in UTC.
_TICK_FORMATS = ["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%S"]
_ZERO_FORMATS = ["", "%Y", "%b", "%b %d", "%H:%M", "%H:%M"]
_OFFSET_FORMATS = ["", "%Y", "%Y", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"]


def date_axis(ax: Axes, times: Any = None) -> None:
    """Time on the x axis: UTC, concise labels, padded so single points show."""
    locator = mdates.AutoDateLocator(tz=dt.UTC, minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(  # type: ignore[no-untyped-call]
        locator,
        tz=dt.UTC,
        formats=_TICK_FORMATS,
        zero_formats=_ZERO_FORMATS,
        offset_formats=[f"{f} UTC" if f else "" for f in _OFFSET_FORMATS],
    )
    ax.xaxis.set_major_formatter(formatter)
    if times is not None and len(times):
        nums = date_numbers(times)
        lo, hi = float(np.min(nums)), float(np.max(nums))
        pad = max((hi - lo) * 0.04, 30 / 86_400)  # at least 30 seconds either side
        ax.set_xlim(lo - pad, hi + pad)


class _BinaryLocator(MaxNLocator):
    """Byte ticks at powers of two times 1, 2 or 5 (512 bytes, 1 KiB, 1.5 KiB, ...)."""

    def tick_values(self, vmin: float, vmax: float) -> Any:
        span = max(vmax, 1.0)
        step = 1.0
        while span / step > 6:
            step *= 2
        return np.arange(0, span + step, step)


def integer_axis(ax: Axes, axis: str = "y") -> None:
    """Counts: whole numbers only, from zero."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(MaxNLocator(integer=True, min_n_ticks=2))
    if axis == "y":
        ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1))
    else:
        ax.set_xlim(left=0, right=max(ax.get_xlim()[1], 1))


@styled
def image(fig: Figure, alt: str) -> Html:
    """The figure as an inline PNG with alt text, sharp on dense screens."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI * SCALE, facecolor="white")
    data = buffer.getvalue()
    width, height = struct.unpack(">II", data[16:24])  # the PNG's IHDR
    encoded = base64.b64encode(data).decode("ascii")
    alt_text = alt.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return Html(
        f'<img alt="{alt_text}" width="{width // SCALE}" height="{height // SCALE}" '
        f'style="max-width: 100%; height: auto;" src="data:image/png;base64,{encoded}">'
    )


# -- the charts ----------------------------------------------------------------------


@styled
def drift_over_time(
    frame: pd.DataFrame, tree: str, applies: pd.DataFrame | None = None
) -> Figure | None:
    """Paths differing from desired at each check, by classification, as steps.

    ``frame`` is :func:`zkdrift.reports.drift_over_time`. Pending and conflict
    are drawn only when some check had them. With ``applies``
    (:func:`zkdrift.reports.apply_audit`), each apply and adopt that ran (dry
    runs left out) is a dotted line labelled with its number and actor: what
    ended a run of drift is in sight. None when there are no checks.
    """
    if frame.empty:
        return None
    wide = frame.pivot_table(
        index="checked_at", columns="classification", values="count", aggfunc="last"
    ).fillna(0)
    fig, (ax,) = new_figure(3.2)
    times = pd.to_datetime(wide.index)
    top = 0
    for cls, label in DRIFT_CLASSES.items():
        key = cls.value
        if key not in wide.columns or (key != "drift" and not wide[key].any()):
            continue
        values = wide[key].astype(int).to_numpy()
        top = max(top, int(values.max()))
        color = CLASS_COLORS[key]
        ax.step(times, values, where="post", color=color, linewidth=2, label=label)
        ax.plot(times, values, "o", color=color, markersize=4)
    date_axis(ax, times)
    ax.set_ylim(0, max(top * 1.25, top + 1))
    integer_axis(ax)
    if applies is not None and not applies.empty:
        _mark_applies(ax, applies, times)
    ax.set_title(f"Drift at each check: {tree}")
    ax.set_xlabel("drift check (UTC)")
    ax.set_ylabel("paths differing from desired")
    _legend(ax)
    return fig


def _legend(ax: Axes) -> None:
    """The legend above the plot, right-aligned, clear of the data and of the title."""
    ax.legend(
        loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=4, borderaxespad=0.2, fontsize=9.5
    )


def _mark_applies(ax: Axes, applies: pd.DataFrame, times: pd.DatetimeIndex) -> None:
    """Dotted lines at the applies and adopts within the chart's time span."""
    ran = applies[~applies["dry_run"].astype(bool)]
    lo, hi = times.min(), times.max()
    top = ax.get_ylim()[1]
    shown = False
    for row in ran.to_dict("records"):
        when: Any = pd.Timestamp(row["started_at"])
        if when < lo or when > hi:
            continue
        verb = write_verb(row["direction"])
        x = float(date_numbers([when])[0])
        ax.axvline(x, color="#495057", linestyle=":", linewidth=1.2, zorder=1)
        ax.annotate(
            f"{verb} #{row['apply_id']} {row['actor']}",
            (x, top),
            xytext=(3, -3),
            textcoords="offset points",
            fontsize=8.5,
            color="#495057",
            va="top",
            rotation=90,
        )
        shown = True
    if shown:
        ax.plot([], [], color="#495057", linestyle=":", linewidth=1.2, label="apply / adopt")


def _bar_width(nums: np.ndarray, span_nums: np.ndarray) -> float:
    """Bar width in days: 80% of the closest gap, at most 1/25 of the shown span."""
    lo, hi = float(np.min(span_nums)), float(np.max(span_nums))
    span = max(hi - lo, 60 / 86_400)
    width = span / 25
    if len(nums) > 1:
        gap = float(np.min(np.diff(np.sort(nums))))
        if gap > 0:
            width = min(width, gap * 0.8)
    return max(width, span / 400)


@styled
def changes_per_snapshot(snaps: pd.DataFrame, tree: str) -> Figure | None:
    """Nodes created, deleted and changed at each snapshot, as stacked bars.

    ``snaps`` is :func:`zkdrift.reports.snapshots_over_time`; the baseline
    is left out. None when no snapshot saw a change.
    """
    changed = snaps[~snaps["baseline"] & (snaps["changes"].fillna(0) > 0)]
    if changed.empty:
        return None
    fig, (ax,) = new_figure(3.2)
    nums = date_numbers(changed["taken_at"])
    all_nums = date_numbers(snaps["taken_at"])
    width = _bar_width(nums, all_nums)
    bottom = np.zeros(len(changed))
    for col, kind in (("added", "added"), ("removed", "removed"), ("modified", "data_changed")):
        label = history_kind(kind)
        values = changed[col].fillna(0).astype(int).to_numpy()
        if not values.any():
            continue
        ax.bar(
            nums,
            values,
            width=width,
            bottom=bottom,
            color=KIND_COLORS[label],
            edgecolor=KIND_COLORS[label],
            linewidth=0.6,
            label=label,
        )
        bottom = bottom + values
    ax.xaxis_date(tz=dt.UTC)
    date_axis(ax, pd.to_datetime(snaps["taken_at"]))
    top = int(bottom.max())
    ax.set_ylim(0, max(top * 1.15, top + 1))
    integer_axis(ax)
    ax.set_title(f"Changes per snapshot: {tree}")
    ax.set_xlabel("snapshot (UTC)")
    ax.set_ylabel("nodes changed")
    _legend(ax)
    return fig


@styled
def snapshot_size(snaps: pd.DataFrame, tree: str) -> Figure | None:
    """The tree's node count and bytes at each snapshot, as steps from zero."""
    if snaps.empty:
        return None
    fig, (left, right) = new_figure(3.0, ncols=2)
    times = pd.to_datetime(snaps["taken_at"])
    for ax, col, title, label in (
        (left, "nodes", "Nodes", "nodes"),
        (right, "bytes", "Data size", "size"),
    ):
        values = snaps[col].fillna(0).astype(int).to_numpy()
        ax.step(times, values, where="post", color=LINE_COLOR, linewidth=2)
        ax.plot(times, values, "o", color=LINE_COLOR, markersize=3.5)
        date_axis(ax, times)
        top = int(values.max()) if len(values) else 0
        ax.set_ylim(0, max(top * 1.12, 1))
        ax.set_title(f"{title}: {tree}")
        ax.set_xlabel("snapshot (UTC)")
        ax.set_ylabel(label)
    integer_axis(left)
    right.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: bytes_text(v)))
    right.yaxis.set_major_locator(_BinaryLocator())
    right.set_ylim(0, max(int(snaps["bytes"].max() or 0) * 1.12, 1))
    return fig


@styled
def churn_by_subtree(subtrees: pd.DataFrame, tree: str) -> Figure | None:
    """Changes per subtree as horizontal bars, the most changed on top, counts labelled."""
    if subtrees.empty:
        return None
    rows = subtrees.iloc[::-1]
    fig, (ax,) = new_figure(max(2.0, 0.34 * len(rows) + 1.2))
    ax.grid(False, axis="y")
    bars = ax.barh(
        rows["subtree"].astype(str).tolist(),
        rows["changes"].astype(int).tolist(),
        color=BAR_COLOR,
        height=0.6,
    )
    ax.bar_label(bars, padding=3, fontsize=9.5)
    top = int(rows["changes"].max())
    ax.set_xlim(0, max(top * 1.12, top + 1))
    integer_axis(ax, "x")
    ax.set_title(f"Changes per subtree: {tree}")
    ax.set_xlabel("changes between snapshots")
    return fig
