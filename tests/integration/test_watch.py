"""The watcher against a real ZooKeeper: changes seen as they happen, drift kept exact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from kazoo.client import KazooClient

from tests.support.db import make_app
from tests.support.proxy import FaultProxy
from tests.support.watch import resynced, status_of, wait_for, watching
from tests.support.zk import create_tree
from zkdrift import desired
from zkdrift.app import App
from zkdrift.devtools.zkserver import ZooKeeperServer
from zkdrift.drift import check_drift
from zkdrift.reconcile import adopt
from zkdrift.reports import (
    drift_over_time,
    drift_verdict,
    open_drift,
    open_drift_detail,
    watch_log,
)
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


def last_mzxid(app: App) -> int:
    from sqlalchemy import func, select

    from zkdrift.store.models import WatchEvent

    with app.db.session() as session:
        tree = tree_store.get_tree(session, "app")
        query = select(func.max(WatchEvent.mzxid)).where(WatchEvent.tree_id == tree.id)
        return int(session.scalar(query) or 0)


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
    wait_for("the watcher to say it stopped", lambda: status_of(app, "app").watch is None)


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
    # The reports read a run the watcher recorded (it names no snapshot) like any other.
    assert drift_verdict(app, "app").open_paths == 5
    assert set(open_drift(app, "app")["path"]) == {p for p, _k, _c in watched}
    detail = open_drift_detail(app, "app")
    assert set(detail["path"]) == {p for p, _k, _c in watched}
    assert len(drift_over_time(app, "app")) >= 1
    assert watched == drift_of(app)
    kinds = {(e.path, e.kind) for e in events(app)}
    assert {("/app/new", "created"), ("/app/new/deep", "created"), ("/app/c/d", "deleted")} <= kinds


def test_a_burst_of_writes_ends_in_the_exact_drift_with_every_path_in_the_event_log(
    fast_app: App, zk: KazooClient, zk_chroot: str
) -> None:
    app = fast_app
    paths = [f"/app/n{i:03d}" for i in range(400)]
    create_tree(zk, {p: b"0" for p in paths})
    register(app, zk_chroot)
    adopt(app, "app")
    with watching(app, "app"):
        wait_for("the first resync", resynced(app, "app"))
        writes = [zk.set_async(paths[i % 400], str(i).encode()) for i in range(2000)]
        for write in writes:
            write.get(timeout=30)
        last = zk.get(paths[-1])[1].mzxid
        wait_for("every write to be seen", lambda: last_mzxid(app) >= last)
        watched = recorded_drift(app)
    assert watched == drift_of(app)
    assert len(watched) == 400
    log = watch_log(app, "app")
    changed = log[log["kind"] == "changed"]
    assert set(changed["path"]) == set(paths)  # the change log shows every path
    # One row per notification the server sent; it sends one per write.
    assert len(changed) == 2000
    assert log["kind"].iloc[0] == "resync"


def test_a_server_without_add_watch_is_followed_by_polling_and_says_so(
    fast_app: App, zk: KazooClient, zk_chroot: str, zk_server: object
) -> None:
    app = fast_app
    app.settings.watch_fallback_seconds = 0.5
    create_tree(zk, LIVE)
    server = zk_server.connect_string  # type: ignore[attr-defined]
    host, port = server.split(":")
    proxy = FaultProxy((host, int(port)), old_server=True)
    try:
        chroot = zk_chroot[len(server) :]
        register(app, proxy.connect_string + chroot)
        adopt(app, "app")
        with watching(app, "app"):
            status = wait_for("polling", lambda: (s := status_of(app, "app")).watch and s)
            assert status.watch == "polling"
            zk.set("/app/b", b"by hand")
            wait_for("drift", lambda: status_of(app, "app").drift == 1)
        assert proxy.add_watches_refused >= 1
        assert recorded_drift(app) == drift_of(app)
    finally:
        proxy.close()


@pytest.fixture
def proxy(zk_server: object) -> Iterator[FaultProxy]:
    host, port = zk_server.connect_string.split(":")  # type: ignore[attr-defined]
    fault_proxy = FaultProxy((host, int(port)))
    try:
        yield fault_proxy
    finally:
        fault_proxy.close()


def through(proxy: FaultProxy, zk_chroot: str) -> str:
    """``zk_chroot``'s connect string, by way of ``proxy``."""
    return proxy.connect_string + "/" + zk_chroot.split("/", 1)[1]


def resync_reasons(app: App) -> list[str | None]:
    return [e.detail for e in events(app) if e.kind == watch_store.RESYNC]


def test_changes_made_while_the_connection_is_down_are_found_when_it_comes_back(
    fast_app: App, zk: KazooClient, zk_chroot: str, proxy: FaultProxy
) -> None:
    app = fast_app
    create_tree(zk, LIVE)
    register(app, through(proxy, zk_chroot))
    adopt(app, "app")
    with watching(app, "app"):
        wait_for("the first resync", resynced(app, "app"))
        with proxy.down():  # the session lives; no notification can arrive
            zk.set("/app/a", b"while away")
            zk.create("/app/e", b"new")
        wait_for("the resync after the reconnect", resynced(app, "app", 2))
        zk.set("/app/b", b"after")  # the watch was set again
        wait_for("drift", lambda: status_of(app, "app").drift == 3)
        watched = recorded_drift(app)
    assert watched == drift_of(app)
    assert resync_reasons(app)[1] == "reconnected after the connection dropped"
    kinds = {(e.path, e.kind) for e in events(app)}
    # The resync recorded what changed in the gap, from the mzxids it knew.
    assert {("/app/a", "changed"), ("/app/e", "created"), ("/app/b", "changed")} <= kinds


def test_an_expired_session_is_resynchronised_and_the_drift_stays_exact(
    fast_app: App, zk: KazooClient, zk_chroot: str, proxy: FaultProxy
) -> None:
    from tests.support.zk import expire_session

    app = fast_app
    create_tree(zk, LIVE)
    register(app, through(proxy, zk_chroot))
    adopt(app, "app")
    with watching(app, "app") as watcher:
        wait_for("the first resync", resynced(app, "app"))
        client = watcher.trees["app"].client
        assert client is not None
        session = SimpleNamespace(client_id=client.client_id)  # as it was before the cut
        with proxy.down():
            expire_session(cast(KazooClient, session), zk_chroot)
            zk.delete("/app/b")
        wait_for("the resync after expiry", resynced(app, "app", 2))
        zk.set("/app/a", b"after")
        wait_for("drift", lambda: status_of(app, "app").drift == 2)
        watched = recorded_drift(app)
    assert watched == drift_of(app)
    assert resync_reasons(app)[1] == "the ZooKeeper session expired"


def test_a_server_killed_and_started_again_is_waited_out_and_the_watch_set_again(
    fast_app: App, killable_zk_server: ZooKeeperServer
) -> None:
    app = fast_app
    hosts = killable_zk_server.connect_string
    admin = KazooClient(hosts=hosts, timeout=10)
    admin.start(timeout=15)
    try:
        create_tree(admin, LIVE)
        register(app, hosts)
        adopt(app, "app")
        with watching(app, "app"):
            wait_for("the first resync", resynced(app, "app"))
            killable_zk_server.kill()
            killable_zk_server.start()
            # Written as soon as the server is back: before the watcher set its watch
            # again (the zxid it then finds tells it to resync) or after (notified).
            admin.retry(admin.set, "/app/c/d", b"after the restart")
            wait_for("drift", lambda: status_of(app, "app").drift == 1)
            watched = recorded_drift(app)
        assert watched == drift_of(app)
    finally:
        admin.stop()
        admin.close()


def test_new_excludes_and_new_trees_are_picked_up_without_a_restart(
    fast_app: App, zk: KazooClient, zk_chroot: str
) -> None:
    from zkdrift.trees import update_tree

    app = fast_app
    create_tree(zk, {**LIVE, "/other/k": b"v"})
    register(app, zk_chroot)
    adopt(app, "app")
    with watching(app):  # every registered tree, as they come and go
        wait_for("the first resync", resynced(app, "app"))
        zk.set("/app/skip/x", b"by hand")
        wait_for("drift", lambda: status_of(app, "app").drift == 1)
        update_tree(app, "app", excludes=["/app/skip"])
        wait_for("the resync", resynced(app, "app", 2))
        wait_for("no drift left", lambda: status_of(app, "app").in_sync)
        add_tree(app, TreeSpec(name="other", hosts=zk_chroot, root="/other"), check=False)
        adopt(app, "other")
        wait_for("the new tree watched", lambda: status_of(app, "other").watched)
        zk.set("/other/k", b"by hand")
        wait_for("drift of the new tree", lambda: status_of(app, "other").drift == 1)
    assert resync_reasons(app)[1] == "the tree's settings changed"
