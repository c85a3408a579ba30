"""Render one tree's HTML drift and history report."""

from __future__ import annotations

import datetime as dt

from prefect import task

from zkdrift.reports.render import render_report, report_path
from zkdrift.settings import Settings
from zkdrift.tasks.results import ReportSummary
from zkdrift.tasks.retry import retry_options
from zkdrift.tasks.runtime import open_app, run_logger


def existing_report(tree: str) -> ReportSummary | None:
    path = report_path(Settings(), tree)
    return ReportSummary(tree=tree, path=str(path)) if path.is_file() else None


@task(name="render-report", task_run_name="report-{tree}", **retry_options())
def render_tree_report(tree: str, since: dt.datetime | None = None) -> ReportSummary:
    with open_app() as app:
        output = report_path(app.settings, tree)
        written = render_report(app, tree, since=since, output=output)
    run_logger().info("tree %s: report written to %s", tree, written)
    return ReportSummary(tree=tree, path=str(written))
