"""Capture one tree's live state into the store."""

from __future__ import annotations

from prefect import task

from zkdrift import snapshot as snapshot_lib
from zkdrift.store.snapshots import SnapshotResult
from zkdrift.tasks.retry import retry_options
from zkdrift.tasks.runtime import log_endpoints, open_app, run_logger, tree_slot


@task(name="snapshot-tree", task_run_name="snapshot-{tree}", **retry_options())
def snapshot_tree(tree: str) -> SnapshotResult:
    with open_app() as app, tree_slot(tree):
        log_endpoints(app, tree)
        result = snapshot_lib.take_snapshot(app, tree, source="flow")
    run_logger().info("%s", result.describe())
    return result
