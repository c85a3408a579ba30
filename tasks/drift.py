"""Compare one tree's desired state with live ZooKeeper and record the drift run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import task

from zkdrift import desired as desired_lib
from zkdrift import drift as drift_lib
from zkdrift import vocabulary
from zkdrift.app import App
from zkdrift.diff import DriftItem
from zkdrift.drift import DriftReport, NoDesiredStateError
from zkdrift.model import ChangeKind, DriftClass
from zkdrift.redact import Redactor
from zkdrift.reports.drift import open_drift
from zkdrift.store.snapshots import SnapshotResult
from zkdrift.tasks.results import DriftRow, DriftSummary, shown_value
from zkdrift.tasks.retry import retry_options
from zkdrift.tasks.runtime import log_endpoints, open_app, run_logger, tree_slot

# How many drifted paths are named in the run log; the table artifact has them all.
LOGGED_PATHS = 20


def _data(node: Any) -> bytes | None:
    return None if node is None else bytes(node.data)


def _acl_text(node: Any) -> str:
    if node is None:
        return ""
    return "ACL " + (", ".join(a.render() for a in node.acl) if node.acl else "(none read)")


def _row(item: DriftItem, redactor: Redactor) -> DriftRow:
    if item.kind is ChangeKind.ACL_CHANGED:
        desired, live = _acl_text(item.desired), _acl_text(item.live)
    else:
        desired = shown_value(
            redactor, item.path, None if item.desired is None else item.desired.data
        )
        live = shown_value(redactor, item.path, None if item.live is None else item.live.data)
    return DriftRow(
        path=item.path,
        kind=vocabulary.drift_kind(item.kind),
        classification=vocabulary.DRIFT_CLASSES[item.classification],
        desired=desired,
        live=live,
    )


def summarise(
    tree: str,
    report: DriftReport,
    redactor: Redactor,
    since: dt.datetime | None = None,
    desired_from: str | None = None,
) -> DriftSummary:
    """A DriftReport as counts and rows of display text (secrets as their placeholder)."""
    counts = {cls: 0 for cls in DriftClass}
    for item in report.items:
        counts[item.classification] += 1
    return DriftSummary(
        tree=tree,
        run_id=report.run_id,
        drift=counts[DriftClass.DRIFT],
        pending=counts[DriftClass.PENDING],
        conflict=counts[DriftClass.CONFLICT],
        rows=tuple(sorted((_row(i, redactor) for i in report.items), key=lambda r: r.path)),
        since=since if report.items else None,
        desired_from=desired_from,
    )


def drifting_since(app: App, tree: str) -> dt.datetime | None:
    """When the oldest difference the latest check still reports was first seen."""
    frame = open_drift(app, tree)
    if frame.empty:
        return None
    first: dt.datetime = frame["detected_at"].min().to_pydatetime()
    return first


@task(name="check-drift", task_run_name="drift-{tree}", **retry_options())
def check_tree_drift(tree: str, snapshot: SnapshotResult | None = None) -> DriftSummary:
    """Drift of ``tree`` against ``snapshot`` when given, else against a fresh live read."""
    snapshot_id = snapshot.snapshot_id if snapshot is not None else None
    logger = run_logger()
    with open_app() as app, tree_slot(tree):
        log_endpoints(app, tree)
        try:
            report = drift_lib.check_drift(app, tree, source="flow", snapshot_id=snapshot_id)
        except NoDesiredStateError:
            logger.info("%s", vocabulary.observed_line(tree))
            return DriftSummary(
                tree=tree, run_id=None, drift=0, pending=0, conflict=0, observed=True
            )
        origin = desired_lib.revision_origin(app, tree, report.desired_revision)
        summary = summarise(tree, report, app.redactor(), drifting_since(app, tree), origin)
    if summary.desired_from:
        logger.info("tree %s: %s", tree, summary.desired_from)
    if not summary.has_differences:
        logger.info("tree %s: live matches desired (drift run %s)", tree, summary.run_id)
        return summary
    logger.warning(
        "tree %s: %s (%d drift, %d pending, %d conflict; drift run %s)",
        tree,
        summary.headline,
        summary.drift,
        summary.pending,
        summary.conflict,
        summary.run_id,
    )
    for row in summary.rows[:LOGGED_PATHS]:
        logger.info("tree %s: %s (%s) %s", tree, row.kind, row.classification, row.path)
    if len(summary.rows) > LOGGED_PATHS:
        logger.info("tree %s: ... and %d more", tree, len(summary.rows) - LOGGED_PATHS)
    return summary
