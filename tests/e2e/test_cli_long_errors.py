"""Long errors in summary tables: one line in the table ("…" where cut), the whole text
below it."""

from __future__ import annotations

import json

from kazoo.client import KazooClient
from sqlalchemy import select

from tests.support.cli import run_cli, run_cli_process
from tests.support.zk import create_tree
from zkdrift.app import App
from zkdrift.cli.common import TABLE_TEXT_WIDTH
from zkdrift.reconcile import adopt
from zkdrift.store.models import Tree
from zkdrift.trees import TreeSpec, add_tree


def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("│")]


def test_run_summary_shows_a_long_error_on_one_line_and_the_whole_error_below(
    flow_app: App, zk: KazooClient, zk_chroot: str, prefect_cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/ok": b"", "/ok/k": b"v"})
    add_tree(flow_app, TreeSpec(name="ok", hosts=zk_chroot, root="/ok"))
    adopt(flow_app, "ok")
    root = "/a-root-that-nobody-created-" + "x" * 60
    add_tree(flow_app, TreeSpec(name="ghost", hosts=zk_chroot, root=root), check=False)

    result = run_cli_process("run", "snapshot", "--json", env=prefect_cli_env)
    shown = run_cli_process("run", "snapshot", env=prefect_cli_env)

    assert result.exit_code == shown.exit_code == 1
    summary = json.loads(result.stdout)["summary"]
    [row] = [line for line in summary.splitlines() if line.startswith("| ghost |")]
    status = row.split(" | ")[1]
    assert status.startswith("failed at snapshot: ") and status.endswith("…")
    assert root not in row  # too long for one line of the table
    errors = summary[summary.index("## Errors") :]
    assert "**ghost** (failed at snapshot):" in errors and root in errors
    lines = shown.stdout.splitlines()
    [rendered] = [line for line in lines if line.startswith(" ghost ")]  # a table row
    assert "…" in rendered and root not in rendered
    assert any(root in line for line in lines)  # the whole error, below the table
    [ok_row] = [line for line in lines if line.startswith(" ok ")]
    assert "…" not in ok_row


def test_audit_shows_a_long_error_on_one_line_and_the_whole_error_below(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/svc": b"", "/svc/a": b"1", "/svc/b": b"2"})
    run_cli("tree", "add", "svc", "--hosts", zk_chroot, "--root", "/svc", env=cli_env)
    run_cli("adopt", "svc", env=cli_env)
    run_cli("desired", "set", "svc", "/svc/a", "desired", env=cli_env)
    planned = json.loads(run_cli("plan", "svc", "--json", env=cli_env).stdout)
    zk.set("/svc/a", b"moved since the plan")
    refused = run_cli("apply", "svc", "--plan", str(planned["plan_id"]), "--yes", env=cli_env)

    entries = json.loads(run_cli("audit", "svc", "--json", env=cli_env).stdout)
    table = run_cli("audit", "svc", env=cli_env).stdout

    assert refused.exit_code == 1
    error = entries[0]["error"]
    assert len(error) > TABLE_TEXT_WIDTH
    [row] = [r for r in _table_rows(table) if r.startswith(f"│ {entries[0]['apply_id']} ")]
    assert "…" in row and error not in row
    assert f"apply {entries[0]['apply_id']}: {error}" in table.splitlines()


def test_status_shows_an_invalid_policy_briefly_in_the_table_and_in_full_below(
    app: App, cli_env: dict[str, str]
) -> None:
    add_tree(app, TreeSpec(name="svc", hosts="127.0.0.1:1", root="/svc"), check=False)
    with app.db.session() as session:
        tree = session.scalars(select(Tree).where(Tree.name == "svc")).one()
        tree.options = {**(tree.options or {}), "reconcile": "whenever it likes"}

    result = run_cli("status", env=cli_env)

    assert result.exit_code == 0, result.stderr
    [row] = [r for r in _table_rows(result.stdout) if r.startswith("│ svc ")]
    assert "invalid (see below)" in row and "whenever" not in row
    [note] = [line for line in result.stdout.splitlines() if line.startswith("svc: invalid policy")]
    assert "reconcile" in note
