"""Render one tree's HTML drift and history report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import task

from tasks.results import ReportSummary
from tasks.retry import retry_options
from tasks.runtime import key_part, open_app, run_logger
from zkdrift import reports as reports_lib
from zkdrift.settings import Settings


def report_path(settings: Settings, tree: str) -> Path:
    """Where a tree's latest report lives (the flows link to it from the UI)."""
    return settings.reports_dir / f"{key_part(tree)}.html"


def existing_report(tree: str) -> ReportSummary | None:
    path = report_path(Settings(), tree)
    return ReportSummary(tree=tree, path=str(path)) if path.is_file() else None


@task(name="render-report", task_run_name="report-{tree}", **retry_options())
def render_tree_report(tree: str, since: dt.datetime | None = None) -> ReportSummary:
    with open_app() as app:
        output = report_path(app.settings, tree)
        output.parent.mkdir(parents=True, exist_ok=True)
        written = reports_lib.render_report(app, tree, since=since, output=output)
    run_logger().info("tree %s: report written to %s", tree, written)
    return ReportSummary(tree=tree, path=str(written))
