"""What every task needs: an App built from Settings, a run logger, artifact keys,
and the tree's write slot."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists
from prefect.logging import get_run_logger

from zkdrift import trees as trees_lib
from zkdrift.app import App
from zkdrift.model import slug
from zkdrift.settings import Settings

# Opening the database may run Alembic (SQLite upgrades itself), and Alembic's
# migration context is process-global: tasks running in threads take turns.
_OPEN_LOCK = threading.Lock()

# How long a step waits for another step writing the same tree (then it fails, saying so).
TREE_SLOT_WAIT = 3600.0
_ensured: set[str] = set()


@contextmanager
def open_app() -> Iterator[App]:
    """A fresh App for this task from the environment's settings, closed afterwards."""
    application = App(Settings())
    try:
        with _OPEN_LOCK:
            _ = application.db
        yield application
    finally:
        application.close()


def run_logger() -> logging.Logger | logging.LoggerAdapter[Any]:
    """The Prefect run logger (shown in the UI), or a plain logger outside a run."""
    try:
        return get_run_logger()
    except Exception:  # outside a flow or task run
        return logging.getLogger("zkdrift.flows")


def log_endpoints(app: App, tree_name: str) -> None:
    """Say which ZooKeeper and which database this step uses (never credentials)."""
    tree = trees_lib.get_tree(app, tree_name)
    run_logger().info(
        "tree %s: ZooKeeper %s (root %s), database %s",
        tree_name,
        tree.hosts,
        tree.root,
        app.db.safe_url,
    )


def artifact_key(kind: str, tree_name: str) -> str:
    """``drift-<tree>``, ``drift-paths-<tree>``, ``report-<tree>``: one history per tree."""
    return f"{kind}-{slug(tree_name)}"


def tree_limit_name(tree_name: str) -> str:
    """The Prefect global concurrency limit that serialises the steps writing one tree."""
    return f"zkdrift-tree-{slug(tree_name)}"


def _ensure_limit(name: str) -> None:
    if name in _ensured:
        return
    # ObjectAlreadyExists: another run created it a moment ago.
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.upsert_global_concurrency_limit_by_name(name, 1)
    _ensured.add(name)


@contextmanager
def tree_slot(tree_name: str) -> Iterator[None]:
    """Hold the tree's write slot while the block runs.

    Snapshot, drift and reconcile steps all write the tree's history; Prefect
    runs one of them per tree at a time, whichever flow run or deployment
    started them (a per-tree deployment overlapping the all-trees pipeline).
    The database serialises them again per tree, for writers outside Prefect.
    """
    name = tree_limit_name(tree_name)
    _ensure_limit(name)
    with concurrency(name, occupy=1, timeout_seconds=TREE_SLOT_WAIT, strict=True):
        yield
