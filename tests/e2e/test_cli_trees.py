"""Managing registered trees from the terminal: policy, schedule, removal."""

from __future__ import annotations

import json

from kazoo.client import KazooClient

from tests.support.cli import run_cli
from tests.support.zk import create_tree
from zkdrift.policy import MAX_OP_BYTES, TreePolicy


def _register(zk: KazooClient, zk_chroot: str, env: dict[str, str]) -> None:
    create_tree(zk, {"/svc": b"", "/svc/a": b"1"})
    assert (
        run_cli("tree", "add", "svc", "--hosts", zk_chroot, "--root", "/svc", env=env).exit_code
        == 0
    )


def test_tree_set_records_schedule_and_reconcile_policy(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    _register(zk, zk_chroot, cli_env)

    result = run_cli(
        "tree", "set", "svc", "--cron", "*/5 * * * *", "--reconcile", "apply",
        "--protect", "/svc/locked/**", "--max-delete-fraction", "0.25", env=cli_env,
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    shown = json.loads(run_cli("tree", "show", "svc", "--json", env=cli_env).stdout)
    assert shown["policy"] == {
        "schedule": {"cron": "*/5 * * * *"},
        "reconcile": "apply",
        "reconcile_on_drift": False,
        "protected": ["/svc/locked/**"],
        "max_delete_fraction": 0.25,
        "max_op_bytes": MAX_OP_BYTES,
        "allow_world_readable_secrets": False,
    }


def test_tree_set_refuses_bad_policy_and_changes_nothing(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    _register(zk, zk_chroot, cli_env)

    bad_mode = run_cli("tree", "set", "svc", "--reconcile", "yolo", env=cli_env)
    bad_cron = run_cli("tree", "set", "svc", "--cron", "every minute", env=cli_env)
    both = run_cli("tree", "set", "svc", "--cron", "* * * * *", "--interval", "60", env=cli_env)

    assert bad_mode.exit_code == 1
    assert "'plan' or 'apply'" in bad_mode.stderr
    assert bad_cron.exit_code == 1
    assert "5 fields" in bad_cron.stderr
    assert both.exit_code == 1
    shown = json.loads(run_cli("tree", "show", "svc", "--json", env=cli_env).stdout)
    assert shown["policy"] == TreePolicy().model_dump(mode="json", exclude_none=True)


def test_tree_remove_needs_yes_and_then_deletes_the_history(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    _register(zk, zk_chroot, cli_env)
    run_cli("snapshot", "svc", env=cli_env)

    refused = run_cli("tree", "remove", "svc", env=cli_env)
    assert refused.exit_code == 1
    assert "--yes" in refused.stderr
    assert len(json.loads(run_cli("tree", "list", "--json", env=cli_env).stdout)) == 1

    removed = run_cli("tree", "remove", "svc", "--yes", env=cli_env)

    assert removed.exit_code == 0, removed.stderr
    assert json.loads(run_cli("tree", "list", "--json", env=cli_env).stdout) == []
    assert zk.exists("/svc/a") is not None
    again = run_cli("tree", "add", "svc", "--hosts", zk_chroot, "--root", "/svc", env=cli_env)
    assert again.exit_code == 0
    assert json.loads(run_cli("snapshots", "svc", "--json", env=cli_env).stdout) == []
