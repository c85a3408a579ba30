"""What every task needs: an App built from Settings, a run logger, artifact keys."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.logging import get_run_logger

from zkdrift import trees as trees_lib
from zkdrift.app import App
from zkdrift.model import slug
from zkdrift.settings import Settings

# Opening the database may run Alembic (SQLite upgrades itself), and Alembic's
# migration context is process-global: tasks running in threads take turns.
_OPEN_LOCK = threading.Lock()


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
