"""``zkdrift status``: the overview an operator opens first."""

from __future__ import annotations

import datetime as dt
import json

from kazoo.client import KazooClient

from tests.support.cli import run_cli
from tests.support.zk import create_tree


def _row(table: str, tree: str) -> str:
    [row] = [line for line in table.splitlines() if line.startswith(f"│ {tree} ")]
    return " ".join(row.replace("│", " ").split())


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
    assert drifted["differences"] == 1
    assert drifted["in_sync"] is False
    assert drifted["nodes"] == 3

    assert run_cli("apply", "svc", "--yes", "--reason", "fix", env=cli_env).exit_code == 0
    assert run_cli("diff", "svc", env=cli_env).exit_code == 0
    synced = json.loads(run_cli("status", "svc", "--json", env=cli_env).stdout)[0]
    table = run_cli("status", env=cli_env)

    assert synced["in_sync"] is True
    assert synced["drifted_since"] is None
    assert synced["last_apply_direction"] == "push"
    assert synced["last_apply_outcome"] == "applied"
    assert table.exit_code == 0
    assert "in sync" in _row(table.stdout, "svc")


def test_status_says_how_many_paths_drifted_since_when_and_which_revision_is_applied(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/svc": b"", "/svc/a": b"1", "/svc/b": b"2"})
    run_cli("tree", "add", "svc", "--hosts", zk_chroot, "--root", "/svc", env=cli_env)
    run_cli("desired", "adopt", "svc", env=cli_env)
    run_cli("diff", "svc", env=cli_env)
    in_sync = _row(run_cli("status", env=cli_env).stdout, "svc")
    zk.set("/svc/a", b"edited by hand")
    run_cli("diff", "svc", env=cli_env)
    first_check = json.loads(run_cli("status", "--json", env=cli_env).stdout)[0]["last_check_at"]
    zk.create("/svc/c", b"also by hand")
    run_cli("desired", "set", "svc", "/svc/b", "3", env=cli_env)
    run_cli("diff", "svc", env=cli_env)

    doc = json.loads(run_cli("status", "--json", env=cli_env).stdout)[0]
    row = _row(run_cli("status", env=cli_env).stdout, "svc")

    since = dt.datetime.fromisoformat(doc["drifted_since"])
    assert doc["drifted_since"] == first_check  # the first check of the run that found drift
    assert in_sync.startswith("svc r1, applied in sync ")
    assert row.startswith(
        f"svc r2, not applied yet (r1 applied) 3 drifted since {since:%H:%M} UTC "
    )
    assert f"{dt.datetime.fromisoformat(doc['last_check_at']):%Y-%m-%d %H:%M:%S} UTC" in row
    assert "(applied)" not in row and " drift," not in row


def test_status_of_an_unknown_tree_names_the_known_ones(cli_env: dict[str, str]) -> None:
    result = run_cli("status", "nope", env=cli_env)
    assert result.exit_code == 1
    assert "unknown tree 'nope'" in result.stderr
