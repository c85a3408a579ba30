"""Capture one tree's live state into the store."""

from __future__ import annotations

from prefect import task

from tasks.results import SnapshotSummary
from tasks.retry import retry_options
from tasks.runtime import log_endpoints, open_app, run_logger
from zkdrift import snapshot as snapshot_lib


@task(name="snapshot-tree", task_run_name="snapshot-{tree}", **retry_options())
def snapshot_tree(tree: str) -> SnapshotSummary:
    with open_app() as app:
        log_endpoints(app, tree)
        result = snapshot_lib.take_snapshot(app, tree, source="flow")
    summary = SnapshotSummary(
        tree=tree,
        snapshot_id=result.snapshot_id,
        node_count=result.node_count,
        added=result.added,
        removed=result.removed,
        modified=result.modified,
    )
    run_logger().info(
        "tree %s: snapshot %d, %d nodes, %d changed since the last one (+%d -%d ~%d)",
        tree,
        summary.snapshot_id,
        summary.node_count,
        summary.changed,
        summary.added,
        summary.removed,
        summary.modified,
    )
    return summary
