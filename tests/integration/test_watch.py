"""The watcher against a real ZooKeeper: changes seen as they happen, drift kept exact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.support.db import make_app
from tests.support.watch import resynced, status_of, wait_for, watching
from tests.support.zk import create_tree
from zkdrift import desired
from zkdrift.app import App
from zkdrift.drift import check_drift
from zkdrift.reconcile import adopt
from zkdrift.store import trees as tree_store
from zkdrift.store import watch as watch_store
from zkdrift.trees import TreeSpec, add_tree

LIVE = {"/app/a": b"1", "/app/b": b"2", "/app/c/d": b"3", "/app/skip/x": b"4"}


@pytest.fixture
def fast_app(sqlite_url: str, tmp_path: Path) -> Iterator[App]:
    application = make_app(sqlite_url, tmp_path / "home", watch_poll_seconds=0.2)
    try:
        yield application
    finally:
        application.close()


def register(app: App, hosts: str, **kw: object) -> None:
    add_tree(app, TreeSpec(name="app", hosts=hosts, root="/app", **kw), check=False)  # type: ignore[arg-type]


def drift_of(app: App) -> list[tuple[str, str, str]]:
    """The tree's drift as a full read finds it now (recorded as a check of its own)."""
    report = check_drift(app, "app")
    return sorted((i.path, str(i.kind), str(i.classification)) for i in report.items)


def recorded_drift(app: App) -> list[tuple[str, str, str]]:
    from sqlalchemy import select

    from zkdrift.store.models import DriftItem, DriftRun

    with app.db.session() as session:
        tree = tree_store.get_tree(session, "app")
        run = session.scalar(
            select(DriftRun)
            .where(DriftRun.tree_id == tree.id, DriftRun.against == "desired")
            .order_by(DriftRun.id.desc())
            .limit(1)
        )
        assert run is not None
        rows = session.scalars(select(DriftItem).where(DriftItem.run_id == run.id))
        return sorted((r.path, r.kind, r.classification) for r in rows)


def events(app: App) -> list[watch_store.WatchEvent]:
    with app.db.session() as session:
        tree = tree_store.get_tree(session, "app")
        return watch_store.events_of(session, tree)


def test_a_change_by_hand_shows_as_drift_and_as_an_event_while_a_write_to_desired_does_not(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot, excludes=["/app/skip"])
    adopt(app, "app")
    with watching(app, "app"):
        wait_for("the first resync", resynced(app, "app"))
        assert status_of(app, "app").watch == "watching"

        zk.set("/app/a", b"by hand")
        status = wait_for("drift", lambda: (s := status_of(app, "app")).drift and s)
        assert (status.drift, status.in_sync) == (1, False)
        assert status.last_event_at is not None and status.last_resync_at is not None

        zk.set("/app/skip/x", b"excluded")
        zk.set("/app/a", b"1")  # back to desired: no drift left
        wait_for("in sync", lambda: status_of(app, "app").in_sync)
        watched = recorded_drift(app)
    assert watched == drift_of(app) == []
    seen = [(e.path, e.kind) for e in events(app) if e.kind != watch_store.RESYNC]
    assert seen == [("/app/a", "changed"), ("/app/a", "changed")]
    versions = [e.version for e in events(app) if e.kind == "changed"]
    assert versions == [1, 2]
    assert status_of(app, "app").watch is None  # the watcher stopped


def test_creates_deletes_and_desired_changes_keep_the_recorded_drift_exact(
    fast_app: App, zk: KazooClient, zk_chroot: str
) -> None:
    app = fast_app
    create_tree(zk, LIVE)
    register(app, zk_chroot)
    adopt(app, "app")
    with watching(app, "app"):
        wait_for("the first resync", resynced(app, "app"))
        zk.create("/app/new/deep", b"n", makepath=True)
        zk.delete("/app/c", recursive=True)
        desired.set_value(app, "app", "/app/b", b"20")  # pending, picked up from the database
        wait_for(
            "the changes",
            lambda: len(recorded_drift(app)) == 5 and recorded_drift(app),
        )
        watched = recorded_drift(app)
    assert watched == drift_of(app)
    kinds = {(e.path, e.kind) for e in events(app)}
    assert {("/app/new", "created"), ("/app/new/deep", "created"), ("/app/c/d", "deleted")} <= kinds
