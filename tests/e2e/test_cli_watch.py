"""``zkdrift watch`` as a process: killed and started again, it resynchronises first."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from typing import Any

import pytest
from kazoo.client import KazooClient

from tests.support.cli import run_cli, zkdrift_process
from tests.support.watch import wait_for
from tests.support.zk import create_tree
from zkdrift.app import App
from zkdrift.reconcile import adopt
from zkdrift.store import trees as tree_store
from zkdrift.store import watch as watch_store
from zkdrift.trees import TreeSpec, add_tree


def watch_process(
    env: dict[str, str], *names: str
) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    return zkdrift_process("watch", *names, env=env, stop=signal.SIGKILL)


def status(env: dict[str, str]) -> dict[str, Any]:
    result = run_cli("status", "--json", "app", env=env)
    assert result.exit_code == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)[0]
    return doc


def resync_reasons(app: App) -> list[str | None]:
    with app.db.session() as session:
        tree = tree_store.get_tree(session, "app")
        return [e.detail for e in watch_store.events_of(session, tree, kinds=[watch_store.RESYNC])]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_watcher_killed_and_started_again_resynchronises_first_and_finds_what_it_missed(
    app: App, cli_env: dict[str, str], zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, {"/app/a": b"1", "/app/b": b"2"})
    add_tree(app, TreeSpec(name="app", hosts=zk_chroot, root="/app"), check=False)
    adopt(app, "app")
    with watch_process(cli_env, "app") as proc:
        wait_for("the watcher", lambda: status(cli_env)["watched"])
        zk.set("/app/a", b"seen live")
        wait_for("drift", lambda: status(cli_env)["drift"] == 1)
        os.killpg(proc.pid, signal.SIGKILL)  # no goodbye: its watch row goes stale
        proc.wait(timeout=30)
    zk.set("/app/b", b"while nobody watched")
    assert status(cli_env)["drift"] == 1
    with watch_process(cli_env) as proc:
        doc = wait_for("the missed change", lambda: (s := status(cli_env))["drift"] == 2 and s)
        table = run_cli("status", env=cli_env).stdout
    assert doc["in_sync"] is False and doc["watched"] is True
    # The resync is stamped when it ends, after the check it ran began: both are set.
    assert doc["last_resync_at"] is not None and doc["last_check_at"] is not None
    assert "watching" in table
    assert resync_reasons(app) == ["watcher started", "watcher started"]
