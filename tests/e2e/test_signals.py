"""``zkdrift apply`` as a process that gets signalled mid-apply: SIGTERM, SIGKILL, SIGSTOP.

The tree is reached through a loopback proxy that slows every request down,
so each one-op transaction is in flight long enough to be hit. The tests
watch the audit (it records each transaction as it goes) to pick the moment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.support.cli import run_cli_process
from tests.support.data import set_desired
from tests.support.db import make_app
from tests.support.proxy import FaultProxy
from tests.support.zk import create_tree, live_values
from zkdrift.app import App
from zkdrift.devtools.zkserver import ZooKeeperServer
from zkdrift.reconcile import audit_detail, audit_log, tree_lock_status
from zkdrift.store.audit import OpRecord

LIVE = {"/app": b"", "/app/keep": b"k"}
NEW = {f"/app/n{i}": f"value {i}".encode() for i in range(8)}
LATENCY = 0.3  # seconds added to every request through the proxy


@dataclass
class Stage:
    app: App
    env: dict[str, str]
    zk: KazooClient

    def start_apply(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "zkdrift", "apply", "app", "--yes", "--batch-ops", "1"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ops(self) -> list[OpRecord]:
        entries = [e for e in audit_log(self.app, "app") if not e.dry_run]
        return [] if not entries else list(audit_detail(self.app, "app", entries[0].id)[1])

    def wait_for(self, proc: subprocess.Popen[str], done: Callable[[list[OpRecord]], bool]) -> None:
        deadline = time.monotonic() + 60
        while not done(self.ops()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the apply never got there"
            time.sleep(0.02)

    def created(self) -> set[str]:
        return {p for p in live_values(self.zk) if p.startswith("/app/n")}

    def db_check(self) -> None:
        check = run_cli_process("db", "check", env=self.env)
        assert check.exit_code == 0, check.stdout + check.stderr


def count(ops: list[OpRecord], outcome: str) -> int:
    return sum(1 for o in ops if o.outcome == outcome)


@pytest.fixture
def stage(
    zk_server: ZooKeeperServer, zk: KazooClient, zk_chroot: str, sqlite_url: str, tmp_path: Path
) -> Iterator[Stage]:
    proxy = FaultProxy(("127.0.0.1", zk_server.port), latency=LATENCY)
    chroot = zk_chroot[zk_chroot.index("/") :]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKDRIFT_")}
    env.update(
        ZKDRIFT_DATABASE_URL=sqlite_url,
        ZKDRIFT_HOME=str(tmp_path / "home"),
        ZKDRIFT_ZK_CONNECT_TIMEOUT="10",
        ZKDRIFT_ZK_SESSION_TIMEOUT="10",
        COLUMNS="200",
    )
    app = make_app(sqlite_url, tmp_path / "home")
    create_tree(zk, LIVE)
    add = run_cli_process(
        "tree", "add", "app", "--hosts", proxy.connect_string + chroot, "--root", "/app", env=env
    )
    assert add.exit_code == 0, add.stderr
    set_desired(app, LIVE | NEW)
    try:
        yield Stage(app, env, zk)
    finally:
        app.close()
        proxy.close()


def test_sigterm_mid_apply_exits_143_after_whole_transactions_and_releases_the_lock(
    stage: Stage,
) -> None:
    proc = stage.start_apply()
    stage.wait_for(proc, lambda ops: count(ops, "applied") >= 2)

    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 143, stderr
    assert "stopped by SIGTERM" in stderr
    entry = audit_log(stage.app, "app")[0]
    ops = stage.ops()
    assert entry.outcome == "interrupted" and entry.finished_at is not None
    # The transaction in flight finished; nothing was sent after it.
    assert count(ops, "unknown") == 0 and 2 <= entry.ops_applied < len(NEW)
    assert [o.outcome for o in ops] == ["applied"] * entry.ops_applied + ["not-sent"] * (
        len(NEW) - entry.ops_applied
    )
    assert stage.created() == {o.path for o in ops if o.outcome == "applied"}
    lock = tree_lock_status(stage.app, "app")
    assert lock.holder is None and lock.waiters == ()

    again = run_cli_process("apply", "app", "--yes", env=stage.env)
    assert again.exit_code == 0, again.stderr
    assert live_values(stage.zk) == LIVE | NEW
    stage.db_check()


def test_sigkill_mid_transaction_leaves_an_audit_the_next_apply_settles_from_live(
    stage: Stage,
) -> None:
    proc = stage.start_apply()
    # One transaction committed, the next one sent and not answered yet.
    stage.wait_for(proc, lambda ops: count(ops, "applied") >= 1 and count(ops, "unknown") == 1)

    proc.kill()
    proc.communicate(timeout=30)

    dead = audit_log(stage.app, "app")[0]
    left = stage.ops()
    assert dead.outcome == "running" and dead.finished_at is None
    assert count(left, "unknown") == 1 and count(left, "applied") >= 1
    # Whole transactions only: live holds each op the audit says applied, and the one in
    # flight entirely or not at all.
    applied_before = {o.path for o in left if o.outcome == "applied"}
    in_flight = next(o.path for o in left if o.outcome == "unknown")
    assert stage.created() - {in_flight} == applied_before

    # The killed session holds the lock until ZooKeeper expires it; the next apply waits.
    again = run_cli_process("apply", "app", "--yes", "--wait", "60", env=stage.env)
    assert again.exit_code == 0, again.stderr
    assert f"apply {dead.id}" in again.stdout

    settled, ops = audit_detail(stage.app, "app", dead.id)
    assert settled.outcome == "interrupted"
    assert count(list(ops), "unknown") == 0
    finished = audit_log(stage.app, "app")[0]
    applied_later = {o.path for o in stage.ops() if o.outcome == "applied"}
    applied_dead = {o.path for o in ops if o.outcome == "applied"}
    # Each created node is accounted for exactly once across the two audits.
    assert applied_dead | applied_later == set(NEW) and not applied_dead & applied_later
    assert settled.ops_applied == len(applied_dead) and finished.ops_applied == len(applied_later)
    assert live_values(stage.zk) == LIVE | NEW
    stage.db_check()


def test_a_stopped_apply_does_not_block_the_sqlite_database_for_anyone_else(
    stage: Stage, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, {"/other": b"", "/other/k": b"v"})
    other = run_cli_process(
        "tree", "add", "other", "--hosts", zk_chroot, "--root", "/other", env=stage.env
    )
    assert other.exit_code == 0, other.stderr
    proc = stage.start_apply()
    stage.wait_for(proc, lambda ops: count(ops, "applied") >= 1 and count(ops, "unknown") == 1)

    proc.send_signal(signal.SIGSTOP)
    # Commands that give up at once on a locked database: were the stopped apply
    # holding a write transaction, they would fail with "database is locked".
    impatient = {
        **stage.env,
        "ZKDRIFT_DATABASE_URL": stage.env["ZKDRIFT_DATABASE_URL"] + "?timeout=0",
    }
    try:
        snap = run_cli_process("snapshot", "other", env=impatient, timeout=60)
        audit = run_cli_process("audit", "app", env=impatient, timeout=60)
    finally:
        proc.send_signal(signal.SIGCONT)

    assert snap.exit_code == 0, snap.stderr
    assert audit.exit_code == 0 and "running" in audit.stdout
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert live_values(stage.zk) == LIVE | NEW
    stage.db_check()
