"""Prefect artifacts: what the UI shows for each run, keyed per tree for history.

Keys are ``drift-<tree>`` (markdown summary), ``drift-paths-<tree>`` (table
of drifted paths), ``report-<tree>`` (link to the HTML report) and
``<flow>-summary`` for a whole run. Tables carry paths, classifications,
sizes and short digests: never a value.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from zkdrift.tasks.report import existing_report
from zkdrift.tasks.results import DriftSummary, ReconcileSummary, ReportSummary, TreeOutcome
from zkdrift.tasks.runtime import artifact_key

# The markdown summary names this many paths; the table lists them all.
SUMMARY_PATHS = 15


def drift_markdown(summary: DriftSummary, report: ReportSummary | None = None) -> str:
    lines = [f"# Drift: {summary.tree}", ""]
    if not summary.has_differences:
        lines.append(f"Live ZooKeeper matches the desired state (drift run {summary.run_id}).")
    else:
        lines += [
            f"**{summary.total}** difference(s) in drift run {summary.run_id}:",
            "",
            "| drift | pending | conflict |",
            "|---:|---:|---:|",
            f"| {summary.drift} | {summary.pending} | {summary.conflict} |",
            "",
        ]
        for row in summary.rows[:SUMMARY_PATHS]:
            lines.append(f"- `{row.path}`: {row.classification}, {row.kind}")
        if len(summary.rows) > SUMMARY_PATHS:
            lines.append(f"- ... and {len(summary.rows) - SUMMARY_PATHS} more (see the table)")
    if report is not None:
        lines += ["", f"HTML report: [{report.path}]({report.url})"]
    return "\n".join(lines) + "\n"


@task(name="publish-drift-artifacts", task_run_name="artifacts-{summary.tree}")
def publish_drift(summary: DriftSummary) -> list[str]:
    """The markdown summary, the table of drifted paths and the report link of one tree.

    The link points at the tree's latest HTML report when one has been rendered.
    """
    report = existing_report(summary.tree)
    keys = [artifact_key("drift", summary.tree), artifact_key("drift-paths", summary.tree)]
    create_markdown_artifact(
        key=keys[0],
        markdown=drift_markdown(summary, report),
        description=f"Drift summary of tree {summary.tree}",
    )
    create_table_artifact(
        key=keys[1],
        table=[row.as_table_row() for row in summary.rows],
        description=f"Drifted paths of tree {summary.tree} (values redacted)",
    )
    if report is not None:
        keys.append(publish_report_link.fn(report))
    return keys


@task(name="publish-report-link", task_run_name="report-link-{report.tree}")
def publish_report_link(report: ReportSummary) -> str:
    key = artifact_key("report", report.tree)
    create_link_artifact(
        key=key,
        link=report.url,
        link_text=f"{report.tree} report",
        description=f"HTML drift and history report of tree {report.tree}",
    )
    return key


def _reconcile_cell(rec: ReconcileSummary | None) -> str:
    if rec is None:
        return ""
    if rec.mode == "apply":
        return f"applied {rec.applied}/{rec.operations}"
    return f"dry run: {rec.operations} planned"


def outcomes_markdown(title: str, outcomes: Sequence[TreeOutcome]) -> str:
    failed = [o for o in outcomes if not o.ok]
    lines = [
        f"# {title}",
        "",
        f"{len(outcomes) - len(failed)} of {len(outcomes)} tree(s) succeeded.",
        "",
        "| tree | snapshot | nodes | changed | drift | pending | conflict | reconcile | status |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for o in outcomes:
        snap, drift = o.snapshot, o.drift
        status = "ok" if o.ok else f"failed at {o.failed_step}: {o.error}"
        lines.append(
            "| "
            + " | ".join(
                [
                    o.tree,
                    str(snap.snapshot_id) if snap else "",
                    str(snap.node_count) if snap else "",
                    str(snap.changed) if snap else "",
                    str(drift.drift) if drift else "",
                    str(drift.pending) if drift else "",
                    str(drift.conflict) if drift else "",
                    _reconcile_cell(o.reconcile),
                    status.replace("|", "\\|").replace("\n", " "),
                ]
            )
            + " |"
        )
    reports = [o.report for o in outcomes if o.report is not None]
    if reports:
        lines += ["", "Reports:", ""]
        lines += [f"- {r.tree}: `{r.path}`" for r in reports]
    return "\n".join(lines) + "\n"


@task(name="publish-run-summary")
def publish_summary(flow_key: str, title: str, outcomes: Sequence[TreeOutcome]) -> str:
    key = f"{flow_key}-summary"
    create_markdown_artifact(
        key=key, markdown=outcomes_markdown(title, outcomes), description=title
    )
    return key
