"""What every task needs: an App built from Settings, a run logger, artifact keys."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.logging import get_run_logger

from zkdrift.app import App
from zkdrift.settings import Settings
from zkdrift.store import trees as tree_store

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
    with app.db.session() as session:
        tree = tree_store.get_tree(session, tree_name)
        target = app.target(tree)
    run_logger().info(
        "tree %s: ZooKeeper %s (root %s), database %s",
        tree_name,
        target.safe_hosts,
        tree.root,
        app.db.safe_url,
    )


_UNSAFE = re.compile(r"[^a-z0-9]+")


def key_part(name: str) -> str:
    """A tree name as it may appear in an artifact key (lowercase letters, digits, dashes).

    Names that change when cleaned get a short digest of the original, so
    ``App`` and ``app`` (or ``a_b`` and ``a.b``) never share artifacts.
    """
    cleaned = _UNSAFE.sub("-", name.lower()).strip("-")
    if cleaned != name:
        suffix = hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).hexdigest()[:6]
        cleaned = f"{cleaned}-{suffix}" if cleaned else suffix
    return cleaned


def artifact_key(kind: str, tree_name: str) -> str:
    """``drift-<tree>``, ``drift-paths-<tree>``, ``report-<tree>``: one history per tree."""
    return f"{kind}-{key_part(tree_name)}"
