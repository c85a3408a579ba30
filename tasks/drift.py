"""Compare one tree's desired state with live ZooKeeper and record the drift run."""

from __future__ import annotations

from typing import Any

from prefect import task

from zkdrift import drift as drift_lib
from zkdrift.drift import DriftReport
from zkdrift.redact import Redactor
from zkdrift.store.snapshots import SnapshotResult
from zkdrift.tasks.results import DriftRow, DriftSummary, short_digest
from zkdrift.tasks.retry import retry_options
from zkdrift.tasks.runtime import log_endpoints, open_app, run_logger, tree_slot

# How many drifted paths are named in the run log; the table artifact has them all.
LOGGED_PATHS = 20


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))


def _data(node: Any) -> bytes | None:
    return None if node is None else bytes(node.data)


def summarise(tree: str, report: DriftReport, redactor: Redactor) -> DriftSummary:
    """A DriftReport reduced to counts and redacted rows (sizes and short digests only,
    keyed for secret paths)."""
    rows = []
    for item in report.items:
        desired, live = _data(item.desired), _data(item.live)
        rows.append(
            DriftRow(
                path=item.path,
                classification=_text(item.classification),
                kind=_text(item.kind),
                desired_size=None if desired is None else len(desired),
                live_size=None if live is None else len(live),
                desired_digest=short_digest(redactor, item.path, desired),
                live_digest=short_digest(redactor, item.path, live),
            )
        )
    counts = {"drift": 0, "pending": 0, "conflict": 0}
    for row in rows:
        counts[row.classification] = counts.get(row.classification, 0) + 1
    return DriftSummary(
        tree=tree,
        run_id=report.run_id,
        drift=counts["drift"],
        pending=counts["pending"],
        conflict=counts["conflict"],
        rows=tuple(sorted(rows, key=lambda r: r.path)),
    )


@task(name="check-drift", task_run_name="drift-{tree}", **retry_options())
def check_tree_drift(tree: str, snapshot: SnapshotResult | None = None) -> DriftSummary:
    """Drift of ``tree`` against ``snapshot`` when given, else against a fresh live read."""
    snapshot_id = snapshot.snapshot_id if snapshot is not None else None
    with open_app() as app, tree_slot(tree):
        log_endpoints(app, tree)
        report = drift_lib.check_drift(app, tree, source="flow", snapshot_id=snapshot_id)
        summary = summarise(tree, report, app.redactor())
    logger = run_logger()
    if not summary.has_differences:
        logger.info("tree %s: live matches desired (drift run %s)", tree, summary.run_id)
        return summary
    logger.warning(
        "tree %s: %d difference(s): %d drift, %d pending, %d conflict (drift run %s)",
        tree,
        summary.total,
        summary.drift,
        summary.pending,
        summary.conflict,
        summary.run_id,
    )
    for row in summary.rows[:LOGGED_PATHS]:
        logger.info("tree %s: %s %s %s", tree, row.classification, row.kind, row.path)
    if len(summary.rows) > LOGGED_PATHS:
        logger.info("tree %s: ... and %d more", tree, len(summary.rows) - LOGGED_PATHS)
    return summary
