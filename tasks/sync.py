"""Sync one tree's desired state from its Git repository (before its drift is checked)."""

from __future__ import annotations

from prefect import task

from zkdrift import desired as desired_lib
from zkdrift.tasks.results import SyncSummary
from zkdrift.tasks.retry import retry_options
from zkdrift.tasks.runtime import open_app, run_logger, tree_slot


@task(name="sync-desired", task_run_name="sync-{tree}", **retry_options())
def sync_tree_desired(tree: str, author: str = "prefect") -> SyncSummary:
    """Fetch the tree's desired source; a new commit becomes a new desired revision.

    A commit whose content breaks a rule fails this step, naming the file;
    the previous revision stays current and the drift check still runs
    against it.
    """
    logger = run_logger()
    with open_app() as app, tree_slot(tree):
        result = desired_lib.sync_desired(app, tree, author=author)
    revision = result.revision
    if revision is None:
        logger.info(
            "tree %s: desired source %s still at commit %s; nothing to sync",
            tree,
            result.source,
            result.commit[:12],
        )
    else:
        logger.warning(
            "tree %s: synced %s; commit %s is desired revision %d (+%d -%d ~%d): %s",
            tree,
            result.source,
            result.commit[:12],
            revision.revision,
            revision.added,
            revision.removed,
            revision.modified,
            revision.origin,
        )
    return SyncSummary(
        tree=tree,
        source=result.source,
        commit=result.commit,
        revision=None if revision is None else revision.revision,
        origin="" if revision is None else revision.origin,
    )
