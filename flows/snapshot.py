"""Snapshot flow: capture each tree's live state into the store."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture
from tasks.results import TreeOutcome
from tasks.snapshot import snapshot_tree
from tasks.trees import registered_trees

from flows.common import finish
from flows.params import SnapshotParams


@flow(name="zkdrift-snapshot", log_prints=False)
def snapshot_flow(params: SnapshotParams = SnapshotParams()) -> list[TreeOutcome]:
    """Capture live ZooKeeper trees into the store, one snapshot per tree."""
    refs = registered_trees(params.trees)
    futures: dict[str, dict[str, PrefectFuture[Any]]] = {
        ref.name: {"snapshot": snapshot_tree.submit(ref.name)} for ref in refs
    }
    return finish("snapshot", "zkdrift snapshot", futures)
