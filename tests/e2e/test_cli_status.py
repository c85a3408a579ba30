"""``zkdrift status``: the overview an operator opens first."""

from __future__ import annotations

import json

from kazoo.client import KazooClient

from tests.support.cli import run_cli
from tests.support.zk import create_tree


def test_status_follows_a_tree_from_registration_through_drift_and_apply(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/svc": b"", "/svc/a": b"1", "/svc/b": b"2"})
    run_cli("tree", "add", "svc", "--hosts", zk_chroot, "--root", "/svc", env=cli_env)

    fresh = json.loads(run_cli("status", "--json", env=cli_env).stdout)[0]
    assert fresh["snapshots"] == 0
    assert fresh["desired_revision"] is None
    assert fresh["in_sync"] is None

    run_cli("desired", "adopt", "svc", env=cli_env)
    zk.set("/svc/a", b"edited by hand")
    assert run_cli("diff", "svc", env=cli_env).exit_code == 2
    drifted = json.loads(run_cli("status", "svc", "--json", env=cli_env).stdout)[0]

    assert drifted["desired_revision"] == drifted["applied_revision"] == 1
    assert (drifted["drift"], drifted["pending"], drifted["conflict"]) == (1, 0, 0)
    assert drifted["in_sync"] is False
    assert drifted["nodes"] == 3

    assert run_cli("apply", "svc", "--yes", "--reason", "fix", env=cli_env).exit_code == 0
    assert run_cli("diff", "svc", env=cli_env).exit_code == 0
    synced = json.loads(run_cli("status", "svc", "--json", env=cli_env).stdout)[0]
    table = run_cli("status", env=cli_env)

    assert synced["in_sync"] is True
    assert synced["last_apply_direction"] == "push"
    assert synced["last_apply_outcome"] == "applied"
    assert table.exit_code == 0
    assert "in sync" in table.stdout


def test_status_of_an_unknown_tree_names_the_known_ones(cli_env: dict[str, str]) -> None:
    result = run_cli("status", "nope", env=cli_env)
    assert result.exit_code == 1
    assert "unknown tree 'nope'" in result.stderr
