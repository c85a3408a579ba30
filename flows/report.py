"""Report flow: render each tree's HTML report and link it from the Prefect UI."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture

from zkdrift.flows.common import finish, upstream
from zkdrift.flows.params import ReportParams
from zkdrift.tasks.artifacts import publish_report_link
from zkdrift.tasks.report import render_tree_report
from zkdrift.tasks.results import TreeOutcome
from zkdrift.tasks.trees import registered_trees


@flow(name="zkdrift-report")
def report_flow(params: ReportParams = ReportParams()) -> list[TreeOutcome]:
    """Render the drift and history report of each tree."""
    refs = registered_trees(params.trees)
    futures: dict[str, dict[str, PrefectFuture[Any]]] = {}
    for ref in refs:
        report = render_tree_report.submit(ref.name, since=params.since)
        futures[ref.name] = {"report": report, "link": publish_report_link.submit(upstream(report))}
    return finish("report", "zkdrift report", futures)
