"""Apply at the edges: values near jute.maxbuffer, deep trees split across
transactions, a planned node re-created as ephemeral, an interrupted apply."""

from __future__ import annotations

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import ZnodeStat
from kazoo.security import make_acl

from tests.support.data import set_desired
from tests.support.zk import create_tree, live_values
from zkdrift.app import App
from zkdrift.model import READ, Acl, Op, OpKind, OpStatus, TreeState, Znode
from zkdrift.plan import batch_ops
from zkdrift.reconcile import apply_tree, audit_detail, audit_log, plan_tree
from zkdrift.store import desired as desired_store
from zkdrift.store import trees as tree_store
from zkdrift.trees import TreeSpec, add_tree
from zkdrift.zk.lock import break_lock, lock_path
from zkdrift.zk.writer import DEFAULT_BATCH_BYTES, BatchEvent

ALL = 31  # rwcda
NEAR_LIMIT = 1_000_000  # bytes: just under jute.maxbuffer (1 MiB) with the request around it


def register(app: App, zk: KazooClient, hosts: str, live: dict[str, bytes]) -> None:
    create_tree(zk, live)
    add_tree(app, TreeSpec(name="app", hosts=hosts, root="/app"))


def test_values_near_a_mebibyte_go_one_per_transaction_and_apply() -> None:
    big = [Op(OpKind.CREATE, f"/app/big{i}", data=b"x" * NEAR_LIMIT) for i in range(2)]
    small = [Op(OpKind.SET, f"/app/s{i}", data=b"v", expected_version=0) for i in range(3)]

    batches = batch_ops([small[0], *big, *small[1:]], max_bytes=DEFAULT_BATCH_BYTES)

    assert [len(b) for b in batches] == [1, 1, 1, 2]
    assert [b[0].path for b in batches[1:3]] == ["/app/big0", "/app/big1"]


def test_two_values_of_a_million_bytes_are_created_and_set_in_one_apply(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    register(app, zk, zk_chroot, {"/app": b"", "/app/set": b"small"})
    big_a, big_b = b"a" * NEAR_LIMIT, bytes(range(256)) * (NEAR_LIMIT // 256)
    desired = {"/app": b"", "/app/set": big_a, "/app/new": big_b}
    set_desired(app, desired)

    result = apply_tree(app, "app", yes=True)

    assert result.outcome == "applied", result.message
    assert live_values(zk) == desired
    assert apply_tree(app, "app", yes=True).outcome == "no-op"


def test_deep_creates_and_deletes_keep_parents_first_and_children_first_across_batches(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    old = {"/app": b"", "/app/old": b""} | {
        "/app/old" + "/o" * d: f"{d}".encode() for d in range(1, 6)
    }
    register(app, zk, zk_chroot, {**old, **{f"/app/keep{i}": b"" for i in range(40)}})
    new = {"/app/new" + "/n" * d: f"{d}".encode() for d in range(0, 6)}
    desired = {p: v for p, v in live_values(zk).items() if not p.startswith("/app/old")} | new
    set_desired(app, desired)

    result = apply_tree(app, "app", yes=True, prune=True, force=True, batch_ops=1)

    assert result.outcome == "applied", result.message
    assert live_values(zk) == desired


def test_a_planned_node_recreated_as_ephemeral_is_never_written(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    others = {f"/app/keep{i}": b"" for i in range(20)}
    register(app, zk, zk_chroot, {"/app": b"", "/app/member": b"old", "/app/gone": b"x"} | others)
    set_desired(app, {"/app": b"", "/app/member": b"new"} | others)
    planned = plan_tree(app, "app", prune=True)
    # Deleted and re-created as ephemerals: same value, same data version 0.
    owner = KazooClient(hosts=zk_chroot, timeout=10)
    owner.start(timeout=15)
    try:
        for path, value in (("/app/member", b"old"), ("/app/gone", b"x")):
            zk.delete(path)
            owner.create(path, value, ephemeral=True)

        result = apply_tree(app, "app", plan_id=planned.plan_id, yes=True, prune=True)

        assert result.outcome == "refused"
        assert "/app/member" in result.message and "/app/gone" in result.message
        member, stat = owner.get("/app/member")
        assert member == b"old" and isinstance(stat, ZnodeStat) and stat.ephemeralOwner != 0
        assert owner.exists("/app/gone") is not None
    finally:
        owner.stop()
        owner.close()


def test_a_planned_node_deleted_and_recreated_at_the_same_version_counts_as_moved(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    others = {f"/app/keep{i}": b"" for i in range(20)}
    register(app, zk, zk_chroot, {"/app": b"", "/app/url": b"old"} | others)
    set_desired(app, {"/app": b"", "/app/url": b"new"} | others)
    planned = plan_tree(app, "app")
    zk.delete("/app/url")
    zk.create("/app/url", b"external")  # data version 0 again, as planned

    result = apply_tree(app, "app", plan_id=planned.plan_id, yes=True)

    assert result.outcome == "refused" and result.moved_paths == ("/app/url",)
    assert zk.get("/app/url")[0] == b"external"


def test_an_apply_interrupted_between_batches_audits_the_batches_it_committed(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    register(app, zk, zk_chroot, {"/app": b"", "/app/keep": b""})
    desired = {"/app": b"", "/app/keep": b""} | {f"/app/n{i}": b"v" for i in range(6)}
    set_desired(app, desired)

    def interrupt(event: BatchEvent) -> None:
        if event.index == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apply_tree(app, "app", yes=True, batch_ops=3, between_batches=interrupt)

    entry, ops = audit_detail(app, "app", max(e.id for e in audit_log(app, "app")))
    assert entry.outcome == "interrupted"
    assert [o.outcome for o in ops] == [OpStatus.APPLIED] * 3 + [OpStatus.NOT_SENT] * 3
    assert entry.ops_applied == 3
    assert {p for p in live_values(zk) if "/n" in p} == {f"/app/n{i}" for i in range(3)}


def test_a_lock_broken_between_batches_rolls_back_the_next_batch_and_sends_no_more(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    register(app, zk, zk_chroot, {"/app": b"", "/app/keep": b""})
    desired = {"/app": b"", "/app/keep": b""} | {f"/app/n{i}": b"v" for i in range(9)}
    set_desired(app, desired)

    def break_it(event: BatchEvent) -> None:
        if event.index == 0:  # an operator's 'zkdrift lock break': the apply is no longer fenced
            assert break_lock(zk, lock_path(app.settings.lock_root, "app"))

    failed = apply_tree(app, "app", yes=True, batch_ops=3, between_batches=break_it)

    assert failed.outcome == "failed" and "lock" in failed.message
    assert failed.ops_applied == 3
    assert {p for p in live_values(zk) if "/n" in p} == {f"/app/n{i}" for i in range(3)}
    _entry, ops = audit_detail(app, "app", failed.apply_id)
    assert [o.outcome for o in ops] == [OpStatus.APPLIED] * 3 + [OpStatus.ROLLED_BACK] * 3 + [
        OpStatus.NOT_SENT
    ] * 3


def test_a_value_too_large_for_zookeeper_is_refused_before_anything_is_written(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    register(app, zk, zk_chroot, {"/app": b"", "/app/keep": b""})
    set_desired(app, {"/app": b"", "/app/keep": b"", "/app/a": b"a", "/app/huge": b"h" * 1_100_000})

    result = apply_tree(app, "app", yes=True, force=True)

    assert result.outcome == "refused" and "/app/huge (1100000 bytes)" in result.message
    assert sorted(live_values(zk)) == ["/app", "/app/keep"]
    assert apply_tree(app, "app", yes=True, wait=0).outcome == "refused"  # the lock is free


def test_an_acl_change_is_not_sent_once_the_lock_node_is_gone(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    open_acl = [make_acl("world", "anyone", all=True)]
    narrow = (Acl(ALL, "world", "anyone"), Acl(READ, "ip", "127.0.0.1"))
    create_tree(zk, {"/app": b"", "/app/a": b"old"})
    zk.create("/app/b", b"", acl=open_acl)
    add_tree(app, TreeSpec(name="app", hosts=zk_chroot, root="/app", capture_acl=True))
    with app.db.session() as session:
        tree = tree_store.get_tree(session, "app")
        desired_store.write_revision(
            session,
            tree,
            TreeState(
                "/app",
                {
                    "/app": Znode("/app", b"", acl=(Acl(ALL, "world", "anyone"),)),
                    "/app/a": Znode("/app/a", b"new", acl=(Acl(ALL, "world", "anyone"),)),
                    "/app/b": Znode("/app/b", b"", acl=narrow),
                },
            ),
            author="test",
            message="",
            source="test",
        )

    def break_the_lock(event: BatchEvent) -> None:
        if event.index == 0:  # the data batch committed; the setACL comes next, alone
            break_lock(event.client, lock_path(app.settings.lock_root, "app"))

    result = apply_tree(app, "app", yes=True, between_batches=break_the_lock)

    assert result.outcome == "failed"
    assert "is gone" in result.message and "not sent" in result.message
    assert zk.get("/app/a")[0] == b"new"
    assert zk.get_acls("/app/b")[0] == open_acl
