"""``zkdrift report``: render a tree's drift and history report to HTML."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from zkdrift.cli.common import AsJson, TreeName, console, emit_json, err_console, state
from zkdrift.vocabulary import iso


def report(
    name: TreeName,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Window start: ISO time (2024-06-01) or an age (7d, 12h)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", help="Window end, exclusive (default: now); same forms as --since."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="HTML file to write (default: <ZKDRIFT_HOME>/reports/NAME.html).",
            dir_okay=False,
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Execute the drift and history notebooks and render them as one HTML report."""
    state.read_only()
    # pandas, papermill and nbconvert load only when a report is asked for.
    from zkdrift.reports.render import render_report, report_path
    from zkdrift.reports.window import describe_window, parse_when

    zk_app = state.app
    lo, hi = parse_when(since), parse_when(until)  # bad input fails before any kernel starts
    target = output if output is not None else report_path(zk_app.settings, name)
    if not as_json:
        err_console.print(f"rendering the report for {name} ({describe_window(lo, hi)})…")
    t0 = time.perf_counter()
    written = render_report(zk_app, name, since=lo, until=hi, output=target)
    seconds = time.perf_counter() - t0
    if as_json:
        emit_json(
            {
                "tree": name,
                "output": str(written),
                "since": iso(lo),
                "until": iso(hi),
                "seconds": round(seconds, 2),
            }
        )
        return
    console.print(f"report for [bold]{name}[/] written to {written} in {seconds:.1f}s")
