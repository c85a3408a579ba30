"""Path history across recorded snapshots."""

from __future__ import annotations

import pytest
from kazoo.client import KazooClient

from tests.support.zk import create_tree
from zkdrift.app import App
from zkdrift.errors import InvalidInputError
from zkdrift.history import EventKind, path_history
from zkdrift.snapshot import take_snapshot
from zkdrift.trees import TreeSpec, add_tree


def register(app: App, hosts: str) -> None:
    add_tree(app, TreeSpec(name="app", hosts=hosts, root="/app"), check=False)


def snap(app: App) -> int:
    return take_snapshot(app, "app").snapshot_id


def test_history_of_a_path_shows_when_it_was_created_changed_and_deleted(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, {"/app/a": b"1"})
    register(app, zk_chroot)
    s1 = snap(app)
    zk.set("/app/a", b"2")
    s2 = snap(app)
    zk.set("/app/a", b"2")  # same bytes, new version: not an event
    snap(app)
    zk.delete("/app/a")
    s4 = snap(app)
    zk.create("/app/a", b"\xff\x00")
    s5 = snap(app)

    events = path_history(app, "app", "/app/a")

    assert [(e.kind, e.snapshot_id) for e in events] == [
        (EventKind.INITIAL, s1),
        (EventKind.CHANGED, s2),
        (EventKind.DELETED, s4),
        (EventKind.CREATED, s5),
    ]
    changed, deleted, created = events[1], events[2], events[3]
    assert changed.before is not None and changed.after is not None
    assert (changed.before.data, changed.after.data) == (b"1", b"2")
    assert (changed.before.version, changed.after.version) == (0, 1)
    assert deleted.before is not None and deleted.before.data == b"2" and deleted.after is None
    assert created.after is not None and created.after.data == b"\xff\x00"


def test_child_changes_alone_are_not_events_of_the_parent(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, {"/app/db": b"d"})
    register(app, zk_chroot)
    snap(app)
    zk.create("/app/db/host", b"h")
    s2 = snap(app)

    events = path_history(app, "app", "/app/db")

    assert [(e.path, e.kind) for e in events if e.snapshot_id == s2] == [
        ("/app/db/host", EventKind.CREATED)
    ]


def test_tree_history_leaves_out_the_first_snapshot_unless_asked(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, {"/app/a": b"1", "/app/b": b"2"})
    register(app, zk_chroot)
    snap(app)
    zk.set("/app/b", b"3")
    s2 = snap(app)

    quiet = path_history(app, "app", include_initial=False)
    everything = path_history(app, "app")

    assert [(e.path, e.kind, e.snapshot_id) for e in quiet] == [("/app/b", EventKind.CHANGED, s2)]
    assert {e.path for e in everything if e.kind is EventKind.INITIAL} == {
        "/app",
        "/app/a",
        "/app/b",
    }


def test_subtree_history_matches_whole_segments_only(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, {"/app/d_b/x": b"1", "/app/dxb/x": b"1", "/app/d_b2": b"1"})
    register(app, zk_chroot)
    snap(app)

    events = path_history(app, "app", "/app/d_b")

    assert sorted(e.path for e in events) == ["/app/d_b", "/app/d_b/x"]


def test_invalid_paths_and_paths_outside_the_tree_are_refused(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, {"/app/a": b"1"})
    register(app, zk_chroot)

    with pytest.raises(InvalidInputError, match="not absolute"):
        path_history(app, "app", "app/a")
    with pytest.raises(InvalidInputError, match="not under the root"):
        path_history(app, "app", "/other")
