"""An apply records each batch as it goes, stops cleanly on SIGTERM, and the next apply
settles what a dead one left open by reading live back."""

from __future__ import annotations

import os
import signal

import pytest
from kazoo.client import KazooClient
from kazoo.security import OPEN_ACL_UNSAFE

from tests.support.data import set_desired
from tests.support.zk import create_tree, live_values
from zkdrift import stopping
from zkdrift.app import App
from zkdrift.model import OpStatus, digest
from zkdrift.reconcile import apply_tree, audit_detail, audit_log, tree_lock_status
from zkdrift.store import audit as audit_store
from zkdrift.store import trees as tree_store
from zkdrift.store.check import check_database
from zkdrift.trees import TreeSpec, add_tree
from zkdrift.zk.writer import BatchEvent

LIVE = {"/app": b"", "/app/keep": b"", "/app/old": b"old", "/app/same": b"v1"}
NEW = {f"/app/n{i}": b"v" for i in range(6)}


@pytest.fixture
def tree(app: App, zk: KazooClient, zk_chroot: str) -> str:
    create_tree(zk, LIVE)
    add_tree(app, TreeSpec(name="app", hosts=zk_chroot, root="/app"))
    set_desired(app, LIVE | NEW)  # six creates: two transactions of three
    return "app"


def last_apply(app: App) -> int:
    return max(e.id for e in audit_log(app, "app"))


def assert_db_clean(app: App) -> None:
    with app.db.session() as session:
        assert check_database(session) == []


def running_apply(app: App, tree: str, host: str) -> int:
    """An apply row left ``running``, as a process that died (or runs elsewhere) leaves it."""
    with app.db.session() as session:
        row = audit_store.start(
            session,
            tree_store.get_tree(session, tree),
            direction="push",
            actor="x",
            reason="",
            host=host,
        )
        return row.id


def test_each_batch_is_in_the_audit_as_soon_as_it_commits(
    app: App, zk: KazooClient, tree: str
) -> None:
    seen: list[tuple[str, list[str], int]] = []

    def look(event: BatchEvent) -> None:
        if event.index == 0:  # the first transaction just committed; the apply goes on
            entry, ops = audit_detail(app, tree, last_apply(app))
            seen.append((entry.outcome, [o.outcome for o in ops], entry.ops_applied))

    result = apply_tree(app, tree, yes=True, batch_ops=3, between_batches=look)

    assert seen == [("running", ["applied"] * 3 + ["not-sent"] * 3, 3)]
    entry, ops = audit_detail(app, tree, result.apply_id)
    assert entry.outcome == "applied" and [o.outcome for o in ops] == ["applied"] * 6
    assert entry.ops_applied == 6 and entry.finished_at is not None
    assert_db_clean(app)


def test_sigterm_mid_apply_ends_the_batch_sends_no_more_and_releases_everything(
    app: App, zk: KazooClient, tree: str
) -> None:
    def terminate(event: BatchEvent) -> None:
        if event.index == 0:
            os.kill(os.getpid(), signal.SIGTERM)  # as a Prefect cancellation or docker stop

    with pytest.raises(stopping.Terminated), stopping.sigterm_handled():
        apply_tree(app, tree, yes=True, batch_ops=3, between_batches=terminate)

    entry, ops = audit_detail(app, tree, last_apply(app))
    assert entry.outcome == "interrupted" and entry.finished_at is not None
    assert entry.error is not None and "stopped by SIGTERM" in entry.error
    assert [o.outcome for o in ops] == ["applied"] * 3 + ["not-sent"] * 3
    created = {p for p in live_values(zk) if p.startswith("/app/n")}
    assert created == {"/app/n0", "/app/n1", "/app/n2"}  # the first transaction, whole
    lock = tree_lock_status(app, tree)
    assert lock.holder is None and lock.waiters == ()
    assert not stopping.requested()  # the next command in this process starts afresh

    again = apply_tree(app, tree, yes=True)
    assert again.outcome == "applied" and again.ops_applied == 3
    assert live_values(zk) == LIVE | NEW
    assert_db_clean(app)


def test_an_apply_that_died_is_settled_by_the_next_one_from_what_live_shows(
    app: App, zk: KazooClient, tree: str
) -> None:
    # What a process killed with a transaction in flight leaves behind: a running row,
    # one transaction applied, the next one sent with no answer, the rest not sent.
    # Live shows the in-flight transaction committed: /app/n1 exists, /app/old is set.
    zk.create("/app/n0", b"v", acl=OPEN_ACL_UNSAFE)
    zk.create("/app/n1", b"v", acl=OPEN_ACL_UNSAFE)
    zk.set("/app/old", b"new")
    records = [
        ("create", "/app/n0", None, b"v", "applied"),
        ("create", "/app/n1", None, b"v", "unknown"),
        ("set", "/app/old", 0, b"new", "unknown"),
        ("set", "/app/same", 0, b"v2", "unknown"),  # still at version 0: not committed
        ("create", "/app/n2", None, b"v", "not-sent"),
    ]
    dead = running_apply(app, tree, "gone")
    with app.db.session() as session:
        audit_store.put_ops(
            session,
            dead,
            0,
            [
                audit_store.OpRecord(kind, path, version, None, digest(after), outcome)
                for kind, path, version, after, outcome in records
            ],
        )

    result = apply_tree(app, tree, yes=True)

    assert result.ok, result.message
    assert f"apply {dead}" in result.message
    entry, ops = audit_detail(app, tree, dead)
    assert entry.outcome == "interrupted"
    assert [o.outcome for o in ops] == [
        OpStatus.APPLIED,
        OpStatus.APPLIED,
        OpStatus.APPLIED,
        OpStatus.NOT_APPLIED,
        OpStatus.NOT_SENT,
    ]
    assert entry.ops_applied == 3
    assert all(f"resolved by apply {result.apply_id}" in (o.error or "") for o in ops[1:4])
    # Settled once: a later apply leaves it alone.
    apply_tree(app, tree, yes=True)
    assert audit_detail(app, tree, dead) == (entry, ops)
    assert_db_clean(app)


def test_an_apply_still_running_elsewhere_without_the_lock_is_not_settled_by_a_dry_run(
    app: App, zk: KazooClient, tree: str
) -> None:
    running = running_apply(app, tree, "elsewhere")

    assert apply_tree(app, tree).outcome == "dry-run"  # no lock: settles nothing

    entry, _ = audit_detail(app, tree, running)
    assert entry.outcome == "running"
