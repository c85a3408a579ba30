"""Snapshot flow: capture each tree's live state into the store."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture

from zkdrift.flows.common import finish
from zkdrift.flows.params import SnapshotParams
from zkdrift.tasks.results import TreeOutcome
from zkdrift.tasks.snapshot import snapshot_tree
from zkdrift.tasks.trees import registered_trees


@flow(name="zkdrift-snapshot", log_prints=False)
def snapshot_flow(params: SnapshotParams = SnapshotParams()) -> list[TreeOutcome]:
    """Capture live ZooKeeper trees into the store, one snapshot per tree."""
    refs = registered_trees(params.trees)
    futures: dict[str, dict[str, PrefectFuture[Any]]] = {
        ref.name: {"snapshot": snapshot_tree.submit(ref.name)} for ref in refs
    }
    return finish("snapshot", "zkdrift snapshot", futures)
