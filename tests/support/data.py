"""Sample trees and histories the integration and e2e tests build on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient

from tests.support.zk import create_tree
from zkdrift.app import App
from zkdrift.drift import check_drift
from zkdrift.model import TreeState
from zkdrift.policy import TreePolicy
from zkdrift.reconcile import apply_tree
from zkdrift.snapshot import take_snapshot
from zkdrift.store import desired as desired_store
from zkdrift.store import trees as tree_store
from zkdrift.trees import TreeSpec, add_tree

# -- a tree to plan and apply: live and desired differ in every way ------------------

LIVE = {
    "/app": b"",
    "/app/db": b"",
    "/app/db/url": b"jdbc:old",
    "/app/db/pool": b"10",
    "/app/db/password": b"hunter2-live",
    "/app/cache": b"",
    "/app/cache/ttl": b"60",
    "/app/legacy": b"remove me",
}

DESIRED = {
    "/app": b"",
    "/app/db": b"",
    "/app/db/url": b"jdbc:new",
    "/app/db/pool": b"10",
    "/app/db/password": b"hunter2-desired",
    "/app/cache": b"",
    "/app/cache/ttl": b"120",
    "/app/feature": b"",
    "/app/feature/flag": b"on",
}


def setup_tree(
    app: App,
    zk: KazooClient,
    hosts: str,
    live: dict[str, bytes] | None = None,
    desired: dict[str, bytes] | None = None,
    **policy: Any,
) -> None:
    """Tree ``app`` at ``/app``: ``live`` in ZooKeeper, ``desired`` as its desired state."""
    create_tree(zk, LIVE if live is None else live)
    spec = TreeSpec(name="app", hosts=hosts, root="/app", policy=TreePolicy(**policy))
    add_tree(app, spec)
    set_desired(app, DESIRED if desired is None else desired)


def set_desired(app: App, nodes: dict[str, bytes], author: str = "test") -> None:
    with app.db.session() as session:
        tree = tree_store.get_tree(session, "app")
        desired_store.write_revision(
            session, tree, TreeState.of("/app", nodes), author=author, message="", source="test"
        )


# -- a history to report on ----------------------------------------------------------

SECRET_1 = b"hunter2-original-db-secret"
SECRET_2 = b"rotated-db-secret-value-XYZ"

CONFIG = {
    "/app": b"",
    "/app/billing": b"",
    "/app/billing/url": b"https://billing.internal",
    "/app/billing/timeout": b"30",
    "/app/search": b"",
    "/app/search/size": b"10",
    "/app/db": b"",
    "/app/db/password": SECRET_1,
}


# --------------------------------------------------------------------------- history


def check(app: App, name: str) -> int:
    """A drift check through the drift service: a fresh snapshot and a recorded run."""
    return check_drift(app, name).run_id


def apply(app: App, name: str, *, actor: str, reason: str) -> int:
    """Make live equal desired through the apply service (audited)."""
    result = apply_tree(app, name, yes=True, prune=True, force=True, actor=actor, reason=reason)
    assert result.outcome == "applied", result.message
    return result.apply_id


@dataclass
class History:
    runs: list[int]
    apply_id: int


def build_drift(app: App, zk: KazooClient, hosts: str) -> list[int]:
    """Baseline, desired = baseline, then hand edits seen by two drift checks: timeout
    (45, then 60), retries created, password rotated. Returns the checks."""
    create_tree(zk, CONFIG)
    add_tree(app, TreeSpec(name="app", hosts=hosts, root="/app"))
    take_snapshot(app, "app")
    with app.db.session() as session:
        tree = tree_store.get_tree(session, "app")
        written = desired_store.write_revision(
            session,
            tree,
            TreeState.of("/app", CONFIG),
            author="alice",
            message="initial",
            source="test",
        )
        assert written is not None
        desired_store.mark_applied(session, tree, written[0])

    zk.set("/app/billing/timeout", b"45")
    zk.create("/app/billing/retries", b"3")
    zk.set("/app/db/password", SECRET_2)
    runs = [check(app, "app")]
    zk.set("/app/billing/timeout", b"60")
    runs.append(check(app, "app"))
    return runs


def build_history(app: App, zk: KazooClient, hosts: str) -> History:
    """:func:`build_drift`, then an apply, and fresh drift.

    Changes between snapshots: timeout 3 (45, 60, back to 30), password 2,
    retries 2 (added, removed), size 1: 8 in all. Checks 1-2 report timeout,
    retries and password (fixed by the apply); checks 3-4 report size (open).
    """
    runs = build_drift(app, zk, hosts)
    apply_id = apply(app, "app", actor="bob", reason="revert hand edits")
    zk.set("/app/search/size", b"20")
    runs.append(check(app, "app"))
    runs.append(check(app, "app"))
    return History(runs, apply_id)
