"""Showing report frames to people: HTML tables, notes and the verdict banner.

One helper for both notebooks, whether papermill runs them for ``zkdrift
report`` or someone opens them in Jupyter. What it returns are small objects
with ``_repr_html_``, so ``display(...)`` (or the last expression of a cell)
shows them, and nothing here imports IPython.

Tables: no index column; times as UTC to the second with the zone named;
durations as ages (``3 h 12 min``); numbers with thousands separators and
aligned right; empty cells empty (never ``NaN``, ``<NA>`` or ``None``);
wide tables scroll sideways inside their own box and long paths and values
wrap, so nothing is cut off at the page edge.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from zkdrift.reports.detail import Verdict
from zkdrift.vocabulary import age_text, utc_text

# Columns that hold paths or values: monospace, wrapped anywhere, but never narrower
# than their longest cell or this many characters, whichever is less.
_PATHS = {"path", "subtree", "root", "hosts"}
_VALUES = {"desired", "live", "before", "after", "value"}
_MONO = _PATHS | _VALUES
_MIN_CHARS = {"path": 32, "value": 20}
_NUMBER = re.compile(r"^[-+]?[\d,]+(\.\d+)?( ?%)?$")
_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? UTC$")
_CODE = re.compile(r"`([^`]+)`")
_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? UTC")
_BYTES = re.compile(r"(\d) (bytes?)\b")
_EMPHASIS = re.compile(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])")
# Cells no longer than this never wrap (kinds, ages, short names).
_SHORT = 24

STYLE = """
.zk-report { font-size: 14px; line-height: 1.45; }
.zk-report h1 { font-size: 1.9em; margin: 0.2em 0 0.1em; }
.zk-meta { color: #4b5563; margin: 0.1em 0 0.6em; }
.zk-scroll { overflow-x: auto; max-width: 100%; margin: 0.3em 0 1.2em; }
.zk-scroll table.zk-table {
  border-collapse: collapse; font-size: 13px; margin: 0; table-layout: auto;
  width: auto; border: none;
}
.zk-scroll table.zk-table th {
  text-align: left; font-weight: 600; background: #f1f3f5; color: #1f2937;
  border-bottom: 2px solid #cfd4da; padding: 6px 12px; white-space: nowrap;
  vertical-align: bottom;
}
.zk-scroll table.zk-table td {
  text-align: left; padding: 5px 12px; border-bottom: 1px solid #e5e7eb;
  vertical-align: top; white-space: normal; overflow-wrap: break-word; max-width: 36em;
}
.zk-scroll table.zk-table tbody tr:nth-child(odd) { background: #ffffff; }
.zk-scroll table.zk-table tbody tr:nth-child(even) { background: #f9fafb; }
.zk-scroll table.zk-table tbody tr:hover { background: #eef2ff; }
.zk-scroll table.zk-table .zk-num {
  text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap;
}
.zk-scroll table.zk-table td.zk-short { white-space: nowrap; }
.zk-scroll table.zk-table td.zk-text { min-width: 14em; }
.zk-scroll table.zk-table td.zk-mono {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px;
  white-space: pre-wrap; overflow-wrap: anywhere; max-width: 40em;
}
.zk-scroll table.zk-facts th {
  background: none; border-bottom: 1px solid #e5e7eb; font-weight: 600; padding-right: 24px;
}
.zk-scroll table.zk-table td .zk-seg { white-space: nowrap; }
.zk-caption { color: #4b5563; margin: 0.2em 0 0.2em; }
.zk-note {
  margin: 0.4em 0 1em; padding: 8px 12px; border-left: 4px solid #9ca3af;
  background: #f9fafb; color: #374151;
}
.zk-note code, .zk-verdict code, .zk-caption code {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.95em;
  background: rgba(0, 0, 0, 0.06); padding: 1px 4px; border-radius: 3px;
}
.zk-verdict {
  margin: 0.6em 0 0.4em; padding: 12px 16px; border-radius: 6px; border-left: 8px solid;
  font-size: 17px;
}
.zk-verdict strong { letter-spacing: 0.02em; }
.zk-verdict code { white-space: nowrap; }
.zk-verdict.zk-bad { background: #fdecea; border-color: #c62828; color: #611a15; }
.zk-verdict.zk-good { background: #e8f5e9; border-color: #2e7d32; color: #1b4620; }
.zk-verdict.zk-info { background: #e8f0fe; border-color: #1a56db; color: #0b2f6b; }
.zk-verdict.zk-warn { background: #fff8e1; border-color: #b7791f; color: #5f3b00; }
"""


def inline(text: str) -> str:
    """``text`` as HTML: escaped, ```code``` spans as ``<code>``, ``*words*`` as ``<em>``."""
    parts = _CODE.split(html.escape(text, quote=False))
    # split() alternates text and code: emphasis only outside code spans.
    return "".join(
        f"<code>{part}</code>" if n % 2 else _EMPHASIS.sub(r"<em>\1</em>", part)
        for n, part in enumerate(parts)
    )


@dataclass(frozen=True)
class Html:
    """A piece of HTML that notebooks display as such."""

    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html


def style() -> Html:
    """The report's CSS (one ``<style>`` block); display it once at the top of a notebook."""
    return Html(f"<style>{STYLE}</style>")


def note(text: str) -> Html:
    """A sentence in a box: what a section has to say instead of a table or a chart."""
    return Html(f'<div class="zk-report zk-note">{inline(text)}</div>')


def caption(text: str) -> Html:
    return Html(f'<p class="zk-report zk-caption">{inline(text)}</p>')


def header(title: str, *facts: str) -> Html:
    """The report's title and a line of facts (tree, window, when it was made)."""
    meta = " · ".join(inline(f) for f in facts if f)
    return Html(
        f'<div class="zk-report"><h1>{html.escape(title)}</h1>'
        + (f'<p class="zk-meta">{meta}</p>' if meta else "")
        + "</div>"
    )


_TONES = {"in sync": "zk-good", "out of sync": "zk-bad", "observed only": "zk-info"}


def verdict_banner(verdict: Verdict) -> Html:
    """The verdict in a coloured box: ``OUT OF SYNC: 4 paths since ...; run ...``,
    and under it when the latest check ran."""
    head, _sep, rest = verdict.headline.partition(": ")
    tone = _TONES.get(verdict.state, "zk-warn")
    checked = verdict.checked_text
    return Html(
        f'<div class="zk-report"><div class="zk-verdict {tone}" role="status">'
        f"<strong>{html.escape(head)}</strong>: {inline(rest)}</div>"
        + (
            f'<p class="zk-meta">{inline(checked[:1].upper() + checked[1:])}.</p>'
            if checked
            else ""
        )
        + "</div>"
    )


# -- tables --------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        return bool(pd.isna(value)) if not isinstance(value, (str, bytes)) else False
    except (TypeError, ValueError):  # array-likes
        return False


def _number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:,.2f}"
    return f"{value:.3f}"


def cell_text(value: Any) -> str:
    """One value as a person reads it (see the module docstring); empty for nothing."""
    if _blank(value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp):
        return utc_text(value.to_pydatetime())
    if isinstance(value, dt.datetime):
        return utc_text(value)
    if isinstance(value, pd.Timedelta):
        return age_text(value.to_pytimedelta())
    if isinstance(value, dt.timedelta):
        return age_text(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return _number(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return cell_text(value.item())
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"  # never shown raw; callers render values first
    return str(value)


def column_label(name: Any) -> str:
    """``last_changed_by`` -> ``last changed by``."""
    return str(name).replace("_", " ")


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every cell as display text (:func:`cell_text`), index dropped."""
    out = pd.DataFrame(
        {col: [cell_text(v) for v in frame[col].tolist()] for col in frame.columns},
        columns=list(frame.columns),
        dtype=object,
    )
    return out.reset_index(drop=True)


def _cell_class(column: str, values: Iterable[str]) -> str:
    shown = [v for v in values if v]
    if column in _MONO:
        return "zk-mono"
    if shown and all(_NUMBER.match(v) for v in shown):
        return "zk-num"
    if shown and all(_TIME.match(v) for v in shown):
        return "zk-time"
    if all(len(v) <= _SHORT for v in shown):
        return "zk-short"
    if any(len(v) > 3 * _SHORT for v in shown):
        return "zk-text"  # long sentences: wide enough to read, wrapping at words
    return ""


@dataclass(frozen=True)
class Table:
    """A frame shown as a people-friendly HTML table (see :func:`table`)."""

    frame: pd.DataFrame
    header: bool = True
    row_labels: bool = False  # the first column labels its row (facts)

    def _repr_html_(self) -> str:
        text = as_text(self.frame)
        columns = [str(c) for c in text.columns]
        classes = [_cell_class(c, text[c].tolist()) for c in columns]
        css = "zk-table zk-facts" if self.row_labels else "zk-table"
        parts = [f'<div class="zk-report zk-scroll"><table class="{css}">']
        if self.header:
            heads = "".join(
                f"<th{_class_attr(cls if cls == 'zk-num' else '')}>"
                f"{html.escape(column_label(c))}</th>"
                for c, cls in zip(columns, classes, strict=True)
            )
            parts.append(f"<thead><tr>{heads}</tr></thead>")
        parts.append("<tbody>")
        attrs = [
            _class_attr(cls) + _min_width(c, text[c].tolist())
            if cls == "zk-mono"
            else _class_attr(cls)
            for c, cls in zip(columns, classes, strict=True)
        ]
        for row in text.itertuples(index=False):
            cells = [
                f"<td{attr}>{_cell_html(str(v), cls, c)}</td>"
                for v, attr, cls, c in zip(row, attrs, classes, columns, strict=True)
            ]
            if self.row_labels and cells:
                cells[0] = f'<th scope="row">{html.escape(str(row[0]), quote=False)}</th>'
            parts.append(f"<tr>{''.join(cells)}</tr>")
        parts.append("</tbody></table></div>")
        return "".join(parts)

    def __str__(self) -> str:
        return self._repr_html_()


def _path_html(path: str) -> str:
    """A path that wraps before a ``/`` when it must, never inside a name (``db-url``)."""
    if not path.startswith("/") or "\n" in path:
        return html.escape(path, quote=False)
    return "<wbr>".join(
        f'<span class="zk-seg">/{html.escape(part, quote=False)}</span>'
        for part in path[1:].split("/")
    )


def _cell_html(text: str, cls: str, column: str = "") -> str:
    if cls == "zk-mono" and column in _PATHS:
        return _path_html(text)
    escaped = html.escape(text, quote=False)
    if cls == "zk-time":  # a tight table may wrap a time after its date, never before UTC
        return escaped.replace(" UTC", "&nbsp;UTC")
    # Sentences wrap between words, never inside a time ("2026-" / "12-01") or a size.
    escaped = _STAMP.sub(lambda m: f'<span class="zk-seg">{m.group(0)}</span>', escaped)
    return _BYTES.sub(r"\1&nbsp;\2", escaped)


def _class_attr(cls: str) -> str:
    return f' class="{cls}"' if cls else ""


def _min_width(column: str, values: list[str]) -> str:
    """A monospace column keeps its longest cell on one line, up to a cap."""
    longest = max((len(line) for v in values for line in v.splitlines()), default=0)
    cap = _MIN_CHARS["path" if column in _PATHS else "value"]
    return f' style="min-width: {min(longest, cap) + 1}ch"' if longest else ""


def table(frame: pd.DataFrame, *, header: bool = True) -> Table:
    """``frame`` as an HTML table for people: no index, human times, ages and numbers,
    empty cells empty, scrolling sideways when wider than the page."""
    return Table(frame, header=header)


def facts(pairs: pd.DataFrame | Iterable[tuple[str, Any]]) -> Table:
    """Labelled facts, one per row (label, value), without a header row: a two-column
    frame such as :func:`~zkdrift.reports.summary_facts`, or (label, value) pairs."""
    rows = pairs.itertuples(index=False) if isinstance(pairs, pd.DataFrame) else pairs
    frame = pd.DataFrame([tuple(r) for r in rows], columns=["fact", "detail"], dtype=object)
    return Table(frame, header=False, row_labels=True)
