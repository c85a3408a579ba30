"""Render one tree's HTML drift and history report."""

from __future__ import annotations

import datetime as dt

from prefect import task

from zkdrift.reports.render import render_report, report_path
from zkdrift.reports.serving import report_url
from zkdrift.settings import Settings
from zkdrift.tasks.results import ReportSummary
from zkdrift.tasks.retry import retry_options
from zkdrift.tasks.runtime import open_app, run_logger


def existing_report(tree: str) -> ReportSummary | None:
    settings = Settings()
    path = report_path(settings, tree)
    if not path.is_file():
        return None
    return ReportSummary(tree=tree, path=str(path), url=report_url(settings, tree))


@task(name="render-report", task_run_name="report-{tree}", **retry_options())
def render_tree_report(tree: str, since: dt.datetime | None = None) -> ReportSummary:
    with open_app() as app:
        output = report_path(app.settings, tree)
        written = render_report(app, tree, since=since, output=output)
        url = report_url(app.settings, tree)
    run_logger().info("tree %s: report written to %s (served at %s)", tree, written, url)
    return ReportSummary(tree=tree, path=str(written), url=url)
