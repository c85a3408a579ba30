"""Who holds a tree's apply lock, and breaking a stale one."""

from __future__ import annotations

import logging

from zkdrift.app import App
from zkdrift.reconcile.planning import load_tree
from zkdrift.zk import client as zk
from zkdrift.zk.lock import LockHolder, LockStatus, break_lock, lock_status

log = logging.getLogger(__name__)


def tree_lock_status(app: App, name: str) -> LockStatus:
    tree = load_tree(app, name)
    with zk.session(app.target(tree)) as client:
        return lock_status(client, app.lock_path(tree))


def break_tree_lock(app: App, name: str, *, everyone: bool = False) -> list[LockHolder]:
    """Remove a stale holder's lock node (every contender's with ``everyone``)."""
    tree = load_tree(app, name)
    with zk.session(app.target(tree)) as client:
        removed = break_lock(client, app.lock_path(tree), everyone=everyone)
    for holder in removed:
        log.warning("broke the lock of tree %s held by %s", name, holder.describe())
    return removed
