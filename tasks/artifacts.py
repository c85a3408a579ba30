"""Prefect artifacts: what the UI shows for each run, keyed per tree for history.

Keys are ``drift-<tree>`` (the headline and what drifted), ``drift-paths-<tree>``
(table of drifted paths with desired -> live values), ``report-<tree>`` (link
to the HTML report, served over HTTP) and ``<flow>-summary`` for a whole run.
Values are display text from the redactor: a secret path shows its
placeholder, never the value.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from zkdrift import vocabulary
from zkdrift.tasks.report import existing_report
from zkdrift.tasks.results import (
    DriftRow,
    DriftSummary,
    ReconcileSummary,
    ReportSummary,
    TreeOutcome,
)
from zkdrift.tasks.runtime import artifact_key

# The markdown summary names this many paths; the table lists them all.
SUMMARY_PATHS = 15
# Errors longer than this are cut in the summary table and shown whole below it.
TABLE_ERROR_CHARS = 80


def _code(text: str) -> str:
    """``text`` as inline code in markdown, whatever backticks it holds."""
    if not text:
        return "(empty)"
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _one_line(text: str, limit: int = TABLE_ERROR_CHARS) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _change(row: DriftRow) -> str:
    if row.kind == "missing live":
        return f"desired {_code(row.desired)}"
    if row.kind == "live only":
        return f"live {_code(row.live)}"
    return f"{_code(row.desired)} -> {_code(row.live)}"


def drift_markdown(summary: DriftSummary, report: ReportSummary | None = None) -> str:
    """The headline, then what drifted with desired -> live values (secrets redacted)."""
    lines = [f"# {summary.tree}: {summary.status}", "", f"**{summary.headline}**", ""]
    if summary.desired_from:
        lines += [f"Desired state: {summary.desired_from}", ""]
    if summary.has_differences:
        lines += [
            f"{summary.total} difference(s) in drift run {summary.run_id}"
            f" ({summary.drift} drift, {summary.pending} pending, {summary.conflict} conflict):",
            "",
        ]
        for row in summary.rows[:SUMMARY_PATHS]:
            lines.append(f"- `{row.path}` ({row.kind}, {row.classification}): {_change(row)}")
        if len(summary.rows) > SUMMARY_PATHS:
            lines.append(f"- ... and {len(summary.rows) - SUMMARY_PATHS} more (see the table)")
    elif not summary.observed:
        lines.append(f"Live ZooKeeper matches the desired state (drift run {summary.run_id}).")
    if report is not None:
        lines += ["", f"[Open the HTML report of {summary.tree}]({report.url})"]
    return "\n".join(lines) + "\n"


@task(name="publish-drift-artifacts", task_run_name="artifacts-{summary.tree}")
def publish_drift(summary: DriftSummary, *, link_report: bool = True) -> list[str]:
    """The headline and the table of drifted paths of one tree.

    With ``link_report`` (a drift check on its own), the headline links the
    tree's latest HTML report and a report link artifact is published; the
    pipeline leaves that to its report step, so a run has one report card.
    """
    report = existing_report(summary.tree) if link_report else None
    keys = [artifact_key("drift", summary.tree)]
    create_markdown_artifact(
        key=keys[0],
        markdown=drift_markdown(summary, report),
        description=f"{summary.tree}: {summary.status}",
    )
    if not summary.observed:
        keys.append(artifact_key("drift-paths", summary.tree))
        create_table_artifact(
            key=keys[1],
            table=[row.as_table_row() for row in summary.rows],
            description=f"Drifted paths of tree {summary.tree}: desired -> live (secrets redacted)",
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
        link_text=f"{report.tree} drift and history report",
        description=f"HTML drift and history report of tree {report.tree}",
    )
    return key


def _reconcile_cell(rec: ReconcileSummary | None) -> str:
    if rec is None or rec.outcome in ("", vocabulary.OBSERVED_ONLY):
        return ""
    if rec.mode == "apply":
        return f"{rec.outcome}: {rec.applied} of {rec.operations} applied"
    return f"dry run: {rec.operations} planned"


def outcomes_markdown(title: str, outcomes: Sequence[TreeOutcome]) -> str:
    """The run summary: one line per tree, errors cut in the table and whole below it."""
    failed = [o for o in outcomes if not o.ok]
    lines = [
        f"# {title}",
        "",
        f"{len(outcomes) - len(failed)} of {len(outcomes)} tree(s) succeeded.",
        "",
        "| tree | status | snapshot | nodes | changed | reconcile | report |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for o in outcomes:
        snap = o.snapshot
        status = o.status if o.ok else f"{o.status}: {_one_line(o.error or '')}"
        report = f"[open]({o.report.url})" if o.report is not None else ""
        cells = [
            o.tree,
            status,
            str(snap.snapshot_id) if snap else "",
            str(snap.node_count) if snap else "",
            str(snap.changed) if snap else "",
            _reconcile_cell(o.reconcile),
            report,
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if failed:
        lines += ["", "## Errors", ""]
        for o in failed:
            lines += [
                f"**{o.tree}** (failed at {o.failed_step}):",
                "",
                "```",
                o.error or "",
                "```",
                "",
            ]
    return "\n".join(lines).rstrip("\n") + "\n"


@task(name="publish-run-summary", task_run_name="run-summary")
def publish_summary(flow_key: str, title: str, outcomes: Sequence[TreeOutcome]) -> str:
    key = f"{flow_key}-summary"
    create_markdown_artifact(
        key=key, markdown=outcomes_markdown(title, outcomes), description=title
    )
    return key
