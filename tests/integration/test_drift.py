"""Drift checks against a real ZooKeeper: three-way classification, recorded runs."""

from __future__ import annotations

import pickle

import pytest
from kazoo.client import KazooClient
from kazoo.security import ACL, Id
from sqlalchemy import func, select

from tests.support.zk import create_tree
from zkdrift import desired
from zkdrift.app import App
from zkdrift.drift import (
    NoDesiredStateError,
    check_against_snapshot,
    check_drift,
    compare_snapshots,
)
from zkdrift.model import ChangeKind, DriftClass, digest
from zkdrift.reconcile import adopt
from zkdrift.snapshot import take_snapshot
from zkdrift.store.models import DriftItem, DriftRun, Snapshot
from zkdrift.trees import TreeSpec, add_tree

LIVE = {
    "/app/a": b"1",
    "/app/b": b"2",
    "/app/c": b"3",
    "/app/bin": b"\x00\xff\xfe",
}


def register(app: App, hosts: str, **kw: object) -> None:
    add_tree(app, TreeSpec(name="app", hosts=hosts, root="/app", **kw), check=False)  # type: ignore[arg-type]


def recorded_items(app: App, run_id: int) -> dict[str, DriftItem]:
    with app.db.session() as session:
        rows = session.scalars(select(DriftItem).where(DriftItem.run_id == run_id))
        return {r.path: r for r in rows}


def test_a_tree_that_matches_its_desired_state_has_no_differences(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot)
    adopt(app, "app")

    report = check_drift(app, "app")

    assert not report.has_differences
    assert (report.total, report.drift, report.pending, report.conflict) == (0, 0, 0, 0)
    assert report.desired_revision == 1
    with app.db.session() as session:
        run = session.get(DriftRun, report.run_id)
        assert run is not None
        assert (run.against, run.total, run.snapshot_id) == ("desired", 0, report.snapshot_id)


def test_differences_are_classified_three_way_against_what_was_last_applied(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot)
    adopt(app, "app")  # base = desired = live
    zk.set("/app/a", b"changed by hand")  # live moved: drift
    desired.set_value(app, "app", "/app/b", b"20")  # desired moved: pending
    zk.set("/app/c", b"30 by hand")  # both moved: conflict
    desired.set_value(app, "app", "/app/c", b"30")
    desired.set_value(app, "app", "/app/new", b"n")  # only desired has it: pending
    zk.create("/app/stray", b"s")  # only live has it: drift

    report = check_drift(app, "app")

    got = {i.path: (i.classification, i.kind) for i in report.items}
    assert got == {
        "/app/a": (DriftClass.DRIFT, ChangeKind.DATA_CHANGED),
        "/app/b": (DriftClass.PENDING, ChangeKind.DATA_CHANGED),
        "/app/c": (DriftClass.CONFLICT, ChangeKind.DATA_CHANGED),
        "/app/new": (DriftClass.PENDING, ChangeKind.ADDED),
        "/app/stray": (DriftClass.DRIFT, ChangeKind.REMOVED),
    }
    assert (report.total, report.drift, report.pending, report.conflict) == (5, 2, 2, 1)
    assert report.applied_revision == 1 and report.desired_revision == 4
    with app.db.session() as session:
        run = session.get(DriftRun, report.run_id)
        assert run is not None
        assert (run.total, run.drift, run.pending, run.conflict) == (5, 2, 2, 1)


def test_drift_items_record_digests_and_sizes_never_values(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot)
    adopt(app, "app")
    zk.set("/app/a", b"live value")
    zk.delete("/app/b")

    report = check_drift(app, "app")

    items = recorded_items(app, report.run_id)
    a, b = items["/app/a"], items["/app/b"]
    assert (a.kind, a.classification) == ("data_changed", "drift")
    assert (a.desired_digest, a.live_digest, a.base_digest) == (
        digest(b"1"),
        digest(b"live value"),
        digest(b"1"),
    )
    assert (a.desired_size, a.live_size) == (1, len(b"live value"))
    assert (b.kind, b.live_digest, b.live_size, b.desired_size) == ("added", None, None, 1)


def test_without_an_applied_revision_every_difference_is_drift(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot)
    desired.set_value(app, "app", "/app/a", b"other")

    report = check_drift(app, "app")

    assert report.applied_revision is None
    assert {i.classification for i in report.items} == {DriftClass.DRIFT}
    # /app is live only, but desired /app/a needs it: that is no drift.
    assert {i.path for i in report.items} == {"/app/b", "/app/c", "/app/bin", "/app/a"}


def test_ephemeral_and_excluded_nodes_are_never_differences(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, LIVE | {"/app/locks/l1": b"x"})
    register(app, zk_chroot, excludes=("/app/locks",))
    adopt(app, "app")
    zk.create("/app/leader", b"host-1", ephemeral=True)
    zk.set("/app/locks/l1", b"y")
    zk.create("/app/locks/l2", b"z")

    report = check_drift(app, "app")

    assert report.items == ()
    assert report.ephemeral_ignored == 1


def test_acl_changes_are_drift_when_the_tree_captures_acls(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot, capture_acl=True)
    adopt(app, "app")
    zk.set_acls("/app/a", [ACL(1, Id("world", "anyone"))])

    report = check_drift(app, "app")

    assert [(i.path, i.kind, i.classification) for i in report.items] == [
        ("/app/a", ChangeKind.ACL_CHANGED, DriftClass.DRIFT)
    ]


def test_the_report_survives_pickling(app: App, zk: KazooClient, zk_chroot: str) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot)
    desired.set_value(app, "app", "/app/a", b"\x00binary")

    report = check_drift(app, "app", source="flow")

    copy = pickle.loads(pickle.dumps(report))
    assert copy == report
    assert (copy.total, copy.drift, copy.has_differences) == (report.total, report.drift, True)


def test_a_recorded_snapshot_can_stand_in_for_live(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot)
    adopted = adopt(app, "app")
    zk.set("/app/a", b"later")

    report = check_drift(app, "app", snapshot_id=adopted.snapshot_id)

    assert report.snapshot_id == adopted.snapshot_id
    assert snapshot_count(app) == 1
    assert report.items == ()


def snapshot_count(app: App) -> int:
    with app.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Snapshot)) or 0)


def test_a_tree_without_desired_state_is_refused_before_reading_zookeeper(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot)

    with pytest.raises(NoDesiredStateError, match="desired import"):
        check_drift(app, "app")

    assert snapshot_count(app) == 0


def test_compare_snapshots_lists_what_changed_between_them(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot)
    first = take_snapshot(app, "app").snapshot_id
    zk.set("/app/a", b"11")
    zk.delete("/app/b")
    zk.create("/app/d", b"4")
    zk.create("/app/session", b"", ephemeral=True)
    second = take_snapshot(app, "app").snapshot_id

    changes = compare_snapshots(app, "app", first, second).changes

    assert [(c.path, c.kind) for c in changes] == [
        ("/app/a", ChangeKind.DATA_CHANGED),
        ("/app/b", ChangeKind.REMOVED),
        ("/app/d", ChangeKind.ADDED),
    ]
    assert compare_snapshots(app, "app", second, second).changes == ()


def test_live_can_be_checked_against_an_old_snapshot(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot)
    reference = take_snapshot(app, "app").snapshot_id
    zk.set("/app/a", b"11")

    report = check_against_snapshot(app, "app", reference)

    assert report.against == "snapshot" and report.reference_snapshot_id == reference
    assert [(i.path, i.kind, i.classification) for i in report.items] == [
        ("/app/a", ChangeKind.DATA_CHANGED, DriftClass.DRIFT)
    ]
    with app.db.session() as session:
        run = session.get(DriftRun, report.run_id)
        assert run is not None
        assert (run.against, run.base_snapshot_id, run.total) == ("snapshot", reference, 1)
