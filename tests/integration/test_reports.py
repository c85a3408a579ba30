"""Report frames built from real history: snapshots of a changing ZooKeeper tree,
drift checks against desired state, and an apply, on SQLite and MariaDB."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from kazoo.client import KazooClient
from kazoo.security import make_acl, make_digest_acl
from sqlalchemy import select

from tests.support.data import (
    CONFIG,
    SECRET_1,
    SECRET_2,
    apply,
    build_drift,
    build_history,
    check,
)
from tests.support.zk import create_tree
from zkdrift import reports, vocabulary
from zkdrift.app import App
from zkdrift.desired import set_value
from zkdrift.drift import check_drift
from zkdrift.errors import InvalidInputError, UnknownTreeError
from zkdrift.reconcile import adopt
from zkdrift.snapshot import take_snapshot
from zkdrift.store import trees as tree_store
from zkdrift.store.models import DriftRun, Snapshot
from zkdrift.trees import TreeSpec, add_tree


def run_started(app: App, run_id: int) -> pd.Timestamp:
    with app.db.session() as session:
        value = session.scalar(select(DriftRun.started_at).where(DriftRun.id == run_id))
    return pd.Timestamp(value)


def run_snapshot(app: App, run_id: int) -> int:
    with app.db.session() as session:
        return int(session.scalar(select(DriftRun.snapshot_id).where(DriftRun.id == run_id)) or 0)


def snapshot_started(app: App, snapshot_id: int) -> pd.Timestamp:
    with app.db.session() as session:
        value = session.scalar(select(Snapshot.started_at).where(Snapshot.id == snapshot_id))
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


# ------------------------------------------------------------------ for people


def test_the_verdict_names_how_many_paths_drifted_since_when_and_what_to_run(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    runs = build_drift(app, zk, zk_chroot)
    drifted = reports.drift_verdict(app, "app")
    apply(app, "app", actor="bob", reason="revert hand edits")
    zk.set("/app/search/size", b"20")
    latest = check(app, "app")

    now = reports.drift_verdict(app, "app")

    assert drifted.state == "out of sync" and drifted.open_paths == 3
    assert drifted.since == run_started(app, runs[0])
    assert drifted.headline.startswith("OUT OF SYNC: 3 paths since ")
    assert now.open_paths == 1 and now.since == run_started(app, latest)
    assert now.checked_at == run_started(app, latest)
    assert now.headline.startswith("OUT OF SYNC: 1 path since ")
    assert now.headline.endswith("; run `zkdrift apply app --yes` or `zkdrift adopt app`")


def test_a_tree_whose_live_equals_desired_is_in_sync(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, CONFIG)
    add_tree(app, TreeSpec(name="calm", hosts=zk_chroot, root="/app"))
    adopt(app, "calm", actor="alice")
    check_drift(app, "calm")

    verdict = reports.drift_verdict(app, "calm")

    assert verdict.state == "in sync" and verdict.open_paths == 0
    assert verdict.headline == "IN SYNC: live calm equals its desired state"
    assert reports.open_drift_detail(app, "calm").empty


def test_open_drift_detail_shows_desired_and_live_values_but_never_a_secret(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    runs = build_drift(app, zk, zk_chroot)

    detail = reports.open_drift_detail(app, "app", app.redactor())

    assert list(detail.columns) == list(reports.DETAIL_COLUMNS)
    rows = detail.set_index("path")
    assert rows.loc["/app/billing/timeout", ["kind", "desired", "live"]].tolist() == [
        "changed",
        "30",
        "60",
    ]
    assert rows.loc["/app/billing/retries", ["kind", "desired", "live"]].tolist() == [
        "live only",
        "",
        "3",
    ]
    password = rows.loc["/app/db/password"]
    assert password["desired"].startswith("<redacted hmac:")
    assert password["live"].startswith("<redacted hmac:")
    assert password["desired"] != password["live"]  # still tells the values apart
    text = detail.to_csv()
    for secret in (SECRET_1, SECRET_2):
        assert secret.decode() not in text
    assert set(detail["classification"]) == {"drift"}
    assert set(detail["since"]) == {vocabulary.utc_text(run_started(app, runs[0]))}
    assert all(re.fullmatch(r"\d+ (s|min|h|d)( \d+ (min|h))?", age) for age in detail["age"])
    # Changed by hand: zkdrift says so, and when a snapshot first saw the live value.
    timeout = rows.loc["/app/billing/timeout", "last_changed_by"]
    assert timeout.startswith("outside zkdrift, first seen ")
    seen = re.fullmatch(r"outside zkdrift, first seen (.+) \(snapshot (\d+)\)", timeout)
    assert seen is not None
    # The snapshot the second check took: taken when that check ran.
    assert int(seen[2]) == run_snapshot(app, runs[1])
    assert seen[1] == vocabulary.utc_text(snapshot_started(app, int(seen[2])))
    assert abs(snapshot_started(app, int(seen[2])) - run_started(app, runs[1])).total_seconds() < 5
    assert all(isinstance(v, str) for v in detail.to_numpy().ravel())
    oldest = reports.open_drift_detail(app, "app", limit=2).drop(columns=["age"])
    assert oldest.to_dict("records") == detail.head(2).drop(columns=["age"]).to_dict("records")


def test_open_drift_detail_names_the_desired_revision_author_and_the_last_apply(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    history = build_history(app, zk, zk_chroot)
    set_value(app, "app", "/app/billing/url", b"https://billing.v2", author="carol")
    zk.set("/app/billing/timeout", b"90")  # the apply of 'bob' last set it to 30
    check_drift(app, "app")

    with app.db.session() as session:  # a Session works as well as an App
        rows = reports.open_drift_detail(session, "app", app.redactor()).set_index("path")

    url = rows.loc["/app/billing/url"]
    assert (url["classification"], url["desired"], url["live"]) == (
        "pending",
        "https://billing.v2",
        "https://billing.internal",
    )
    assert url["last_changed_by"].startswith("carol (desired revision 2, ")
    timeout = rows.loc["/app/billing/timeout", "last_changed_by"]
    assert timeout.startswith("outside zkdrift, first seen ")
    assert f"; last zkdrift run: bob (apply #{history.apply_id}, " in timeout


def test_kinds_read_the_same_in_every_section(app: App, zk: KazooClient, zk_chroot: str) -> None:
    build_drift(app, zk, zk_chroot)
    detail = reports.open_drift_detail(app, "app").set_index("path")
    apply_id = apply(app, "app", actor="bob", reason="revert hand edits")
    check(app, "app")

    recent = reports.recent_changes(app, "app")
    churn = reports.churn_table(app, "app").set_index("path")
    fixed = reports.reconciled_drift(app, "app").set_index("path")

    # Created by hand: "live only" against desired, "created" in live's history.
    assert detail.loc["/app/billing/retries", "kind"] == "live only"
    assert fixed.loc["/app/billing/retries", "kind"] == "live only"
    assert fixed.loc["/app/billing/retries", "fixed_by"] == f"bob (apply #{apply_id})"
    retries = recent[recent["path"] == "/app/billing/retries"]
    assert retries["kind"].tolist() == ["deleted", "created"]  # newest first
    assert set(recent["kind"]) == {"created", "deleted", "changed"}
    assert churn.loc["/app/billing/retries", ["created", "deleted", "changed"]].tolist() == [
        "1",
        "1",
        "",
    ]
    assert set(detail["kind"]) == set(fixed["kind"]) == {"changed", "live only"}


def test_a_tree_without_desired_state_is_observed_only_and_says_how_to_manage_it(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, CONFIG)
    add_tree(app, TreeSpec(name="watched", hosts=zk_chroot, root="/app"))
    take_snapshot(app, "watched")
    zk.set("/app/search/size", b"11")
    take_snapshot(app, "watched")

    verdict = reports.drift_verdict(app, "watched")
    facts = reports.summary_facts(app, "watched").set_index("fact")["detail"]

    assert verdict.observed_only and verdict.checked_at is None
    assert verdict.headline == (
        "NO DESIRED STATE: this tree is observed only; to manage it, run "
        "`zkdrift adopt watched` (accept live as desired) or "
        "`zkdrift desired import watched FILE`"
    )
    assert reports.open_drift_detail(app, "watched").empty
    assert facts["desired state"] == "none: observed only"
    assert facts["snapshots"] == "2"
    assert reports.recent_changes(app, "watched")["kind"].tolist() == ["changed"]


def test_tables_for_people_have_no_index_nan_or_raw_durations(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    history = build_history(app, zk, zk_chroot)
    frames = {
        # Raw frames: datetimes, timedeltas, floats, nullable integers, None.
        "open": reports.open_drift(app, "app"),
        "audit": reports.apply_audit(app, "app"),
        "fixed": reports.time_to_reconcile(app, "app"),
        "snaps": reports.snapshots_over_time(app, "app"),
        # Frames for people.
        "detail": reports.open_drift_detail(app, "app"),
        "runs": reports.apply_history(app, "app"),
        "snapshots": reports.snapshot_table(app, "app"),
    }
    assert frames["audit"]["error"].isna().all()  # None in the frame, nothing on the page

    for name, frame in frames.items():
        html = reports.table(frame)._repr_html_()
        cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", html)
        text = " ".join(re.sub(r"<[^>]+>", "", c) for c in cells)
        for junk in ("NaN", "NaT", "&lt;NA&gt;", "None", " days", "00:00:"):
            assert junk not in text, (name, junk)
        # No index column: the header is the frame's columns, in order.
        heads = re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", html.split("<tbody>")[0])
        assert heads == [str(c).replace("_", " ") for c in frame.columns], name
    open_html = reports.table(frames["open"])._repr_html_()
    age = vocabulary.age_text(frames["open"]["age"].iloc[0].to_pytimedelta())
    assert re.search(r"^\d+ (s|min|h|d)( \d+ (min|h))?$", age)
    assert f">{age}<" in open_html
    detected = vocabulary.utc_text(run_started(app, history.runs[2]).to_pydatetime())
    assert detected.replace(" UTC", "&nbsp;UTC") in open_html
    assert re.search(r">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d&nbsp;UTC<", open_html)
    # An empty cell is empty: the apply's error is None.
    assert re.search(r"<td[^>]*></td>", reports.table(frames["audit"])._repr_html_())


def test_change_log_shows_acl_changes_and_acls_read_for_the_first_time(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, {"/app": b"", "/app/a": b"1", "/app/b": b"2"})
    add_tree(app, TreeSpec(name="app", hosts=zk_chroot, root="/app"))
    take_snapshot(app, "app")  # ACLs not read: SQL NULL in every row
    take_snapshot(app, "app")
    assert reports.change_log(app, "app").empty  # not read twice is no change
    with app.db.session() as session:
        tree_store.get_tree(session, "app").capture_acl = True
    take_snapshot(app, "app")  # read for the first time: a change of every node
    zk.set_acls(
        "/app/b", [make_acl("world", "anyone", read=True), make_digest_acl("ops", "s", all=True)]
    )
    take_snapshot(app, "app")

    log = reports.change_log(app, "app")
    ranks = log["snapshot_id"].rank(method="dense")
    kinds = list(zip(ranks, log["path"], log["kind"], strict=True))
    assert sorted(kinds) == [
        (1.0, "/app", "acl_changed"),
        (1.0, "/app/a", "acl_changed"),
        (1.0, "/app/b", "acl_changed"),
        (2.0, "/app/b", "acl_changed"),
    ]
