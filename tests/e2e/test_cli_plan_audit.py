"""``zkdrift plan`` names the command that applies it; ``zkdrift audit`` leaves dry runs out
unless asked."""

from __future__ import annotations

import json
import re
import shlex

from kazoo.client import KazooClient

from tests.support.cli import run_cli
from tests.support.zk import create_tree


def _tree(zk: KazooClient, zk_chroot: str, env: dict[str, str], keys: int = 2) -> None:
    create_tree(zk, {"/svc": b""} | {f"/svc/k{i}": str(i).encode() for i in range(keys)})
    added = run_cli("tree", "add", "svc", "--hosts", zk_chroot, "--root", "/svc", env=env)
    assert added.exit_code == 0, added.stderr
    assert run_cli("adopt", "svc", env=env).exit_code == 0


def _run(command: str, env: dict[str, str]) -> int:
    words = shlex.split(command)
    assert words[0] == "zkdrift"
    return run_cli(*words[1:], env=env).exit_code


def test_plan_ends_with_the_exact_command_that_applies_it(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    _tree(zk, zk_chroot, cli_env)
    zk.set("/svc/k1", b"edited by hand")

    planned = run_cli("plan", "svc", env=cli_env)

    assert planned.exit_code == 2, planned.stderr
    lines = planned.stdout.rstrip("\n").splitlines()
    assert lines[-2] == "To apply exactly this plan, run:"
    match = re.fullmatch(r"  zkdrift apply svc --plan (\d+) --yes", lines[-1])
    assert match is not None, lines[-1]
    assert _run(lines[-1], cli_env) == 0
    audit = json.loads(run_cli("audit", "svc", "--json", env=cli_env).stdout)
    assert audit[0]["plan_id"] == int(match.group(1))
    assert zk.get("/svc/k1")[0] == b"1"
    assert run_cli("diff", "svc", env=cli_env).exit_code == 0


def test_a_plan_that_deletes_names_an_apply_command_with_prune(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    _tree(zk, zk_chroot, cli_env, keys=12)
    zk.create("/svc/by-hand", b"x")

    planned = json.loads(run_cli("plan", "svc", "--prune", "--json", env=cli_env).stdout)

    command = planned["apply_command"]
    assert command == f"zkdrift apply svc --plan {planned['plan_id']} --yes --prune"
    assert _run(command, cli_env) == 0
    assert zk.exists("/svc/by-hand") is None


def test_a_plan_refused_only_for_what_force_overrides_names_the_command_with_force(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    _tree(zk, zk_chroot, cli_env)
    zk.create("/svc/by-hand", b"x")  # 1 delete of 4 nodes: over the 10% guard

    planned = run_cli("plan", "svc", "--prune", env=cli_env)

    assert planned.exit_code == 2, planned.stderr
    assert "refused: plan deletes 1 node of 4 live" in planned.stdout
    lines = planned.stdout.rstrip("\n").splitlines()
    assert lines[-2] == "To apply exactly this plan anyway (--force overrides the refusal):"
    assert re.fullmatch(r"  zkdrift apply svc --plan \d+ --yes --prune --force", lines[-1])
    assert _run(lines[-1], cli_env) == 0
    assert zk.exists("/svc/by-hand") is None


def test_a_plan_refused_for_what_force_cannot_override_names_no_apply_command(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    _tree(zk, zk_chroot, cli_env)
    assert run_cli("tree", "set", "svc", "--protect", "/svc/k1", env=cli_env).exit_code == 0
    zk.set("/svc/k1", b"edited by hand")

    planned = run_cli("plan", "svc", env=cli_env)
    as_json = json.loads(run_cli("plan", "svc", "--json", env=cli_env).stdout)

    assert planned.exit_code == 2, planned.stderr
    assert "refused: plan touches 1 protected path" in planned.stdout
    assert "zkdrift apply" not in planned.stdout
    assert as_json["apply_command"] is None


def test_an_empty_plan_names_no_apply_command(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    _tree(zk, zk_chroot, cli_env)

    planned = run_cli("plan", "svc", env=cli_env)
    as_json = json.loads(run_cli("plan", "svc", "--json", env=cli_env).stdout)

    assert planned.exit_code == 0, planned.stderr
    assert "No changes." in planned.stdout
    assert "zkdrift apply" not in planned.stdout
    assert as_json["apply_command"] is None


def test_audit_leaves_dry_runs_out_unless_dry_runs_is_given(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    _tree(zk, zk_chroot, cli_env)
    zk.set("/svc/k0", b"edited by hand")
    assert run_cli("apply", "svc", env=cli_env).exit_code == 0  # a dry run
    assert run_cli("apply", "svc", "--yes", env=cli_env).exit_code == 0

    default = json.loads(run_cli("audit", "svc", "--json", env=cli_env).stdout)
    everything = json.loads(run_cli("audit", "svc", "--dry-runs", "--json", env=cli_env).stdout)
    table = run_cli("audit", "svc", env=cli_env).stdout

    assert [e["dry_run"] for e in default] == [False, False]  # the apply and the adopt
    assert [e["dry_run"] for e in everything] == [False, True, False]
    assert "dry run" not in table
