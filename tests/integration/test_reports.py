"""Report frames built from real history: snapshots of a changing ZooKeeper tree,
drift checks against desired state, and an apply, on SQLite and MariaDB."""

from __future__ import annotations

import pandas as pd
import pytest
from kazoo.client import KazooClient
from sqlalchemy import select

from tests.support.data import CONFIG, SECRET_1, SECRET_2, build_history
from tests.support.zk import create_tree
from zkdrift import reports
from zkdrift.app import App
from zkdrift.errors import InvalidInputError, UnknownTreeError
from zkdrift.snapshot import take_snapshot
from zkdrift.store.models import DriftRun
from zkdrift.trees import TreeSpec, add_tree


def run_started(app: App, run_id: int) -> pd.Timestamp:
    with app.db.session() as session:
        value = session.scalar(select(DriftRun.started_at).where(DriftRun.id == run_id))
    return pd.Timestamp(value)


# --------------------------------------------------------------------------- tests


def test_change_log_and_churn_count_every_change_between_snapshots(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    build_history(app, zk, zk_chroot)

    log = reports.change_log(app, "app")
    top = reports.churn_by_path(app, "app", limit=3)
    subtrees = reports.churn_by_subtree(app, "app", depth=1)
    snaps = reports.snapshots_over_time(app, "app")

    assert len(log) == 8
    assert log.groupby("kind").size().to_dict() == {"added": 1, "data_changed": 6, "removed": 1}
    assert log["path"].value_counts().to_dict() == {
        "/app/billing/timeout": 3,
        "/app/db/password": 2,
        "/app/billing/retries": 2,
        "/app/search/size": 1,
    }
    assert list(top["path"]) == ["/app/billing/timeout", "/app/billing/retries", "/app/db/password"]
    assert list(top["changes"]) == [3, 2, 2]
    assert top.iloc[1][["added", "removed"]].tolist() == [1, 1]
    assert subtrees[["subtree", "changes", "paths"]].values.tolist() == [
        ["/app/billing", 5, 2],
        ["/app/db", 2, 1],
        ["/app/search", 1, 1],
    ]
    assert snaps["baseline"].tolist() == [True] + [False] * (len(snaps) - 1)
    assert snaps.loc[~snaps["baseline"], "changes"].sum() == 8
    assert (snaps["nodes"] == len(CONFIG)).iloc[-1]


def test_churn_by_subtree_groups_deeper_levels_and_keeps_shallow_paths_whole(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    build_history(app, zk, zk_chroot)

    deep = reports.churn_by_subtree(app, "app", depth=2)

    assert deep.set_index("subtree")["changes"].to_dict() == {
        "/app/billing/timeout": 3,
        "/app/billing/retries": 2,
        "/app/db/password": 2,
        "/app/search/size": 1,
    }
    with pytest.raises(InvalidInputError, match="depth"):
        reports.churn_by_subtree(app, "app", depth=0)


def test_change_log_shows_values_with_secrets_redacted(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    build_history(app, zk, zk_chroot)

    log = reports.change_log(app, "app", values=True)
    newest = reports.change_log(app, "app", values=True, limit=2)

    timeout = log[log["path"] == "/app/billing/timeout"]
    assert timeout[["before", "after"]].values.tolist() == [
        ["30", "45"],
        ["45", "60"],
        ["60", "30"],
    ]
    password = log[log["path"] == "/app/db/password"]
    assert password["after"].str.startswith("<redacted hmac:").all()
    text = log.to_csv()
    for secret in (SECRET_1, SECRET_2):
        assert secret.decode() not in text
    assert len(newest) == 2
    cols = ["snapshot_id", "path", "after"]
    assert newest[cols].values.tolist() == log[cols].tail(2).values.tolist()


def test_open_drift_reports_what_the_latest_check_still_sees_with_its_age(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    history = build_history(app, zk, zk_chroot)
    as_of = run_started(app, history.runs[-1]) + pd.Timedelta(hours=6)

    open_now = reports.open_drift(app, "app", until=as_of.to_pydatetime())

    assert open_now["path"].tolist() == ["/app/search/size"]
    row = open_now.iloc[0]
    assert row["classification"] == "drift"
    assert row["checks"] == 2
    assert row["detected_at"] == run_started(app, history.runs[2])
    assert row["age"] == as_of - run_started(app, history.runs[2])
    assert row["age_hours"] >= 6


def test_drift_over_time_is_one_row_per_check_and_classification(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    history = build_history(app, zk, zk_chroot)

    df = reports.drift_over_time(app, "app")
    everyone = reports.drift_over_time(app, None)

    wide = df.pivot(index="run_id", columns="classification", values="count")
    assert wide.index.tolist() == history.runs
    assert wide["drift"].tolist() == [3, 3, 1, 1]
    assert wide["pending"].tolist() == [0, 0, 0, 0]
    assert wide["conflict"].tolist() == [0, 0, 0, 0]
    assert set(df["tree"]) == {"app"}
    assert len(everyone) == len(df)


def test_time_to_reconcile_credits_the_apply_that_fixed_the_drift(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    history = build_history(app, zk, zk_chroot)

    fixed = reports.time_to_reconcile(app, "app")

    assert fixed["path"].tolist() == [
        "/app/billing/retries",
        "/app/billing/timeout",
        "/app/db/password",
    ]
    detected, resolved = run_started(app, history.runs[0]), run_started(app, history.runs[2])
    assert (fixed["detected_at"] == detected).all()
    assert (fixed["resolved_at"] == resolved).all()
    assert (fixed["time_to_reconcile"] == resolved - detected).all()
    assert fixed["apply_id"].tolist() == [history.apply_id] * 3
    assert set(fixed["actor"]) == {"bob"}


def test_apply_audit_lists_who_applied_what_and_how_it_ended(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    history = build_history(app, zk, zk_chroot)

    audit = reports.apply_audit(app, "app")

    assert audit["apply_id"].tolist() == [history.apply_id]
    row = audit.iloc[0]
    assert (row["actor"], row["reason"], row["outcome"]) == (
        "bob",
        "revert hand edits",
        "applied",
    )
    assert (row["revision"], row["ops_total"]) == (1, 3)
    assert (row["creates"], row["sets"], row["deletes"], row["failed_ops"]) == (0, 2, 1, 0)
    assert row["duration"] >= pd.Timedelta(0)


def test_windows_keep_only_what_happened_between_since_and_until(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    build_history(app, zk, zk_chroot)
    full = reports.change_log(app, "app")
    since = full["taken_at"].iloc[-1]

    recent = reports.change_log(app, "app", since=since.to_pydatetime())
    before = reports.change_log(app, "app", until=since.to_pydatetime())
    future = reports.snapshots_over_time(app, "app", since="2999-01-01")

    assert len(recent) == int((full["taken_at"] >= since).sum()) >= 1
    assert len(before) == int((full["taken_at"] < since).sum())
    assert len(recent) + len(before) == 8
    assert future.empty
    assert reports.churn_by_path(app, "app", since="2999-01-01").empty


def test_a_tree_with_one_snapshot_has_empty_frames_and_a_note_saying_so(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, CONFIG)
    add_tree(app, TreeSpec(name="fresh", hosts=zk_chroot, root="/app"))
    take_snapshot(app, "fresh")

    summary = reports.summary(app, "fresh")

    for frame in (
        reports.change_log(app, "fresh", values=True),
        reports.churn_by_path(app, "fresh"),
        reports.churn_by_subtree(app, "fresh"),
        reports.drift_over_time(app, "fresh"),
        reports.open_drift(app, "fresh"),
        reports.time_to_reconcile(app, "fresh"),
        reports.apply_audit(app, "fresh"),
    ):
        assert frame.empty
    assert summary[["snapshots", "nodes", "changes", "open_drift"]].iloc[0].tolist() == [
        1,
        len(CONFIG),
        0,
        0,
    ]
    note = reports.history_note(summary)
    assert note is not None and "single snapshot" in note


def test_summary_counts_the_history_of_the_tree(app: App, zk: KazooClient, zk_chroot: str) -> None:
    build_history(app, zk, zk_chroot)

    summary = reports.summary(app, "app").iloc[0]

    assert summary["changes"] == 8
    assert summary["drift_checks"] == 4
    assert summary["open_drift"] == 1
    assert summary["applies"] == 1
    assert summary["nodes"] == len(CONFIG)
    assert reports.history_note(reports.summary(app, "app")) is None
    assert reports.default_tree(app) == "app"


def test_reports_name_an_unknown_tree_and_read_an_engine_as_well_as_an_app(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    build_history(app, zk, zk_chroot)

    with pytest.raises(UnknownTreeError, match=r"'nope'.*app"):
        reports.change_log(app, "nope")
    assert len(reports.change_log(app.db.engine, "app")) == 8
