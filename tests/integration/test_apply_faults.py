"""Applies that go wrong halfway: session expiry, a server that goes away, a CAS conflict.

The writer calls a hook after every committed transaction; the tests break
things there, so the fault lands exactly between two batches.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.support.data import set_desired
from tests.support.db import make_app
from tests.support.zk import connected, create_tree, expire_session, live_values
from zkdrift.app import App
from zkdrift.devtools.zkserver import ZooKeeperServer
from zkdrift.model import OpStatus
from zkdrift.reconcile import apply_tree, audit_detail
from zkdrift.trees import TreeSpec, add_tree
from zkdrift.zk.writer import BatchEvent

BATCH = 10
LIVE = {"/app": b"", "/app/conf": b""} | {f"/app/conf/s{i:02d}": b"old" for i in range(10)}
# 10 sets, then 20 creates: three transactions of 10.
DESIRED = (
    {"/app": b"", "/app/conf": b""}
    | {f"/app/conf/s{i:02d}": b"new" for i in range(10)}
    | {f"/app/conf/n{i:02d}": b"created" for i in range(20)}
)
FIRST_BATCH = {f"/app/conf/n{i:02d}" for i in range(10)}  # creates go first


def prepare(app: App, zk: KazooClient, hosts: str) -> None:
    create_tree(zk, LIVE)
    add_tree(app, TreeSpec(name="app", hosts=hosts, root="/app"))
    set_desired(app, DESIRED)


def assert_whole_batches_only(live: dict[str, bytes]) -> None:
    created = {p for p in live if p.startswith("/app/conf/n")}
    assert created == FIRST_BATCH  # batch 1 entirely, batches 2 and 3 not at all
    assert all(live[f"/app/conf/s{i:02d}"] == b"old" for i in range(10))


def test_session_expiry_between_batches_stops_the_apply_and_a_later_apply_converges(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    prepare(app, zk, zk_chroot)
    sent_after_loss: list[int] = []

    def expire_after_first(event: BatchEvent) -> None:
        if event.watch is not None and event.watch.lost.is_set():
            sent_after_loss.append(event.index)
        if event.index == 0:
            expire_session(event.client, zk_chroot)
            assert event.watch is not None and event.watch.lost.wait(15)

    failed = apply_tree(app, "app", yes=True, batch_ops=BATCH, between_batches=expire_after_first)

    assert failed.outcome == "failed"
    assert "session was lost" in failed.message
    assert failed.ops_applied == BATCH and sent_after_loss == []
    assert_whole_batches_only(live_values(zk))
    _entry, ops = audit_detail(app, "app", failed.apply_id)
    assert [o.outcome for o in ops] == [OpStatus.APPLIED] * BATCH + [OpStatus.NOT_SENT] * 20

    converged = apply_tree(app, "app", yes=True, wait=0)  # the lost session freed the lock
    assert converged.outcome == "applied" and converged.ops_applied == 20
    assert live_values(zk) == DESIRED


def test_a_node_moved_between_batches_rolls_back_its_whole_batch_and_survives(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    prepare(app, zk, zk_chroot)

    def external_write(event: BatchEvent) -> None:
        if event.index == 0:
            zk.set("/app/conf/s05", b"hotfix")  # planned in batch 3 (sets follow creates)
            zk.create("/app/conf/n15", b"someone else")  # planned in batch 2

    failed = apply_tree(app, "app", yes=True, batch_ops=BATCH, between_batches=external_write)

    assert failed.outcome == "failed"
    assert failed.moved_paths == ("/app/conf/n15",)
    live = live_values(zk)
    assert live["/app/conf/n15"] == b"someone else"
    assert {p for p in live if p.startswith("/app/conf/n")} == FIRST_BATCH | {"/app/conf/n15"}
    assert live["/app/conf/s05"] == b"hotfix"
    _entry, ops = audit_detail(app, "app", failed.apply_id)
    outcomes = {o.path: o.outcome for o in ops}
    assert outcomes["/app/conf/n15"] == "failed"
    assert outcomes["/app/conf/n10"] == OpStatus.ROLLED_BACK
    assert outcomes["/app/conf/s00"] == OpStatus.NOT_SENT


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_losing_the_server_between_batches_sends_nothing_more_and_a_later_apply_converges(
    killable_zk_server: ZooKeeperServer, db_url: str, tmp_path: Path
) -> None:
    # A short session timeout: how long the writer waits for a suspended connection.
    app = make_app(db_url, tmp_path / "home", zk_session_timeout=2.0)
    try:
        with connected(killable_zk_server.connect_string) as admin:
            prepare(app, admin, killable_zk_server.connect_string)
        suspended_at: list[int] = []

        def stop_server(event: BatchEvent) -> None:
            if event.index == 0:
                killable_zk_server.kill()  # the way a crashed server goes away
                assert event.watch is not None and event.watch.suspended.wait(15)
                suspended_at.append(event.index)

        failed = apply_tree(app, "app", yes=True, batch_ops=BATCH, between_batches=stop_server)
        killable_zk_server.start()

        assert failed.outcome == "failed" and suspended_at == [0]
        assert "suspended" in failed.message and failed.ops_applied == BATCH
        with connected(killable_zk_server.connect_string) as admin:
            assert_whole_batches_only(live_values(admin))
        # The dead session holds the lock until the restarted server expires it.
        converged = apply_tree(app, "app", yes=True, wait=30)
        assert converged.outcome == "applied" and converged.ops_applied == 20
        with connected(killable_zk_server.connect_string) as admin:
            assert live_values(admin) == DESIRED
    finally:
        app.close()
