"""The tree's lock: concurrent applies, holder status, breaking a stale lock, session loss."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss

from tests.support.cli import run_cli
from tests.support.data import DESIRED, LIVE, setup_tree
from tests.support.db import make_app
from tests.support.zk import live_values
from zkdrift.app import App
from zkdrift.reconcile import ApplyResult, apply_tree, audit_log, tree_lock_status
from zkdrift.zk.lock import ConnectionWatch, TreeLock, lock_status, make_identifier
from zkdrift.zk.writer import BatchEvent

LOCK = "/zkdrift/locks/app"

BIG_LIVE = {**LIVE, **{f"/app/cache/k{i:03d}": b"old" for i in range(60)}}
BIG_DESIRED = {**DESIRED, **{f"/app/cache/k{i:03d}": b"new" for i in range(60)}}


def hold_lock(client: KazooClient, run: str = "run-123", actor: str = "carol") -> TreeLock:
    lock = TreeLock(client, LOCK, make_identifier(run, actor), ConnectionWatch(client))
    lock.acquire(0)
    return lock


def wait_until(condition: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_eight_concurrent_applies_write_once_and_the_rest_wait_then_find_nothing_to_do(
    app: App, zk: KazooClient, zk_chroot: str, db_url: str, tmp_path: Path
) -> None:
    setup_tree(app, zk, zk_chroot, live=BIG_LIVE, desired=BIG_DESIRED)
    start = threading.Barrier(8)
    results: list[ApplyResult] = []
    errors: list[BaseException] = []
    waiters_seen: list[int] = []

    def while_holding(event: BatchEvent) -> None:
        # The first writer waits (bounded) until every other apply is queued on the lock.
        if event.index == 0:
            wait_until(lambda: len(lock_status(event.client, LOCK).waiters) == 7)
            waiters_seen.append(len(lock_status(event.client, LOCK).waiters))

    # Each apply has its own App (engine, sessions); schema checks run before the race.
    apps = [make_app(db_url, tmp_path / f"home{i}") for i in range(8)]
    for own in apps:
        assert own.db is not None

    def worker(i: int) -> None:
        own = apps[i]
        try:
            start.wait()
            results.append(
                apply_tree(
                    own,
                    "app",
                    yes=True,
                    actor=f"op{i}",
                    batch_ops=20,
                    between_batches=while_holding,
                )
            )
        except BaseException as exc:  # surfaced by the assertions below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert not errors
    outcomes = sorted(r.outcome for r in results)
    assert outcomes == ["applied"] + ["no-op"] * 7
    assert waiters_seen == [7]
    assert live_values(zk) == {**BIG_DESIRED, "/app/legacy": b"remove me"}
    entries = [e for e in audit_log(app, "app") if e.ops_applied > 0]
    assert len(entries) == 1 and entries[0].outcome == "applied"
    assert entries[0].ops_applied == 65  # 63 sets and 2 creates


def test_an_apply_that_may_not_wait_reports_who_holds_the_lock(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot)
    held = hold_lock(zk)

    result = apply_tree(app, "app", yes=True, wait=0)

    assert result.outcome == "refused"
    assert result.lock_holder is not None and "carol" in result.lock_holder
    assert "run run-123" in result.message
    assert live_values(zk) == LIVE
    held.release()
    assert apply_tree(app, "app", yes=True, wait=0).outcome == "applied"


def test_lock_status_names_the_holder_with_host_pid_and_run(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot)
    assert not tree_lock_status(app, "app").locked
    held = hold_lock(zk, run="flow-run-9")

    status = tree_lock_status(app, "app")

    assert status.holder is not None
    info = json.loads(status.holder.raw)
    assert (status.holder.run, status.holder.actor) == ("flow-run-9", "carol")
    assert status.holder.pid == info["pid"] and status.holder.host == info["host"]
    assert status.holder.ephemeral
    held.release()


def test_cli_lock_status_and_break_remove_a_stale_holder(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    setup_tree(app, zk, zk_chroot)
    # A holder whose process is gone but whose node stays (a persistent node, as a
    # hung or foreign client could leave): only 'lock break' clears it.
    zk.ensure_path(LOCK)
    zk.create(
        LOCK + "/0123456789abcdef__lock__",
        json.dumps({"host": "gone-host", "pid": 4242, "run": "r-1", "actor": "dave"}).encode(),
        sequence=True,
    )

    status = run_cli("lock", "status", "app", env=cli_env)
    refused = run_cli("lock", "break", "app", env=cli_env)
    broken = run_cli("lock", "break", "app", "--yes", env=cli_env)
    after = run_cli("lock", "status", "app", "--json", env=cli_env)

    assert status.exit_code == 0 and "dave on gone-host (pid 4242, run r-1)" in status.stdout
    assert refused.exit_code == 1 and "--yes" in refused.stderr
    assert broken.exit_code == 0 and "dave" in broken.stdout
    assert json.loads(after.stdout)["locked"] is False
    assert apply_tree(app, "app", yes=True, wait=0).outcome == "applied"


def expire_session(client: KazooClient, hosts: str) -> None:
    """Close ``client``'s session from a second client that takes it over (as kazoo's
    test harness does): the server drops the session and its ephemeral nodes."""
    thief = KazooClient(hosts=hosts, client_id=client.client_id, timeout=10)
    thief.start(timeout=15)
    thief.stop()
    thief.close()


def test_a_lost_session_clears_the_lock_so_release_never_deletes_a_node_not_ours(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot)
    other = KazooClient(hosts=zk_chroot, timeout=10)
    other.start(timeout=15)
    try:
        held = hold_lock(other)
        expire_session(other, zk_chroot)
        assert held.watch.lost.wait(15)
        next_holder = hold_lock(zk, run="run-next")  # the server freed the lock

        held.release()

        assert not held.held
        status = lock_status(zk, LOCK)
        assert status.holder is not None and status.holder.run == "run-next"
        next_holder.release()
    finally:
        other.stop()
        other.close()


def test_a_lock_released_right_after_a_connection_blip_is_freed_at_once(
    zk: KazooClient, zk_chroot: str
) -> None:
    other = KazooClient(hosts=zk_chroot, timeout=10)
    other.start(timeout=15)
    try:
        held = hold_lock(other)
        # The server drops a connection that sends more than jute.maxbuffer;
        # the session survives and kazoo reconnects.
        with pytest.raises(ConnectionLoss):
            other.create("/oversized", b"x" * 1_100_000)

        held.release()

        assert lock_status(zk, LOCK).holder is None
    finally:
        other.stop()
        other.close()
