"""The foundation CLI as users run it: real process, real exit codes, real services."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

from kazoo.client import KazooClient

from tests.support.cli import run_cli, run_cli_process
from tests.support.zk import create_tree
from zkdrift.devtools.zkserver import free_port
from zkdrift.formats import load_export

AWKWARD = {
    "/cfg": b"",
    "/cfg/latin1": "café".encode("latin-1"),  # not UTF-8
    "/cfg/empty": b"",
    "/cfg/nul and spaces": b"\x00\x01\x02 \xff\xfe",
    "/cfg/ünïcødé ключ": "значение ✓".encode(),
    "/cfg/near-1MiB": bytes(range(256)) * 4000,  # 1,024,000 bytes
    "/cfg/dir with space": b"",
    "/cfg/dir with space/leaf": b"\r\n\t",
}


def test_export_round_trips_awkward_values_and_paths_byte_for_byte(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    create_tree(zk, AWKWARD)
    assert (
        run_cli("tree", "add", "cfg", "--hosts", zk_chroot, "--root", "/cfg", env=cli_env).exit_code
        == 0
    )
    snap = run_cli("snapshot", "cfg", "--json", env=cli_env)
    assert snap.exit_code == 0, snap.stderr
    out = tmp_path / "export.json"

    result = run_cli("export", "cfg", "-o", str(out), env=cli_env)

    assert result.exit_code == 0, result.stderr
    doc = json.loads(out.read_bytes())
    assert doc["format"] == "zkdrift-export"
    exported = {n["path"]: base64.b64decode(n["data"]) for n in doc["nodes"]}
    assert exported == AWKWARD
    for node in doc["nodes"]:
        assert node["sha256"] == hashlib.sha256(AWKWARD[node["path"]]).hexdigest()
    assert {p: n.data for p, n in load_export(out.read_bytes()).nodes.items()} == AWKWARD


def test_snapshot_prints_id_node_count_changes_and_duration(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/svc": b"", "/svc/a": b"1", "/svc/b": b"2"})
    run_cli("tree", "add", "svc", "--hosts", zk_chroot, "--root", "/svc", env=cli_env)
    first = run_cli("snapshot", "svc", env=cli_env)
    zk.set("/svc/a", b"changed")

    second = run_cli("snapshot", "svc", "--json", env=cli_env)

    assert first.exit_code == 0, first.stderr
    assert "3 nodes" in first.stdout and "3 changed" in first.stdout
    payload = json.loads(second.stdout)
    assert payload["nodes"] == 3
    assert payload["changed"] == 1 and payload["modified"] == 1
    assert payload["snapshot_id"] > 0 and payload["duration_seconds"] >= 0


def test_snapshots_and_show_report_what_was_captured_with_secrets_redacted(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(
        zk, {"/svc": b"", "/svc/db_password": b"hunter2-very-secret", "/svc/url": b"https://x"}
    )
    run_cli("tree", "add", "svc", "--hosts", zk_chroot, "--root", "/svc", env=cli_env)
    run_cli("snapshot", "svc", env=cli_env)

    history = run_cli("snapshots", "svc", "--json", env=cli_env)
    tree_view = run_cli("show", "svc", env=cli_env)
    node_view = run_cli("show", "svc", "/svc/url", "--json", env=cli_env)

    assert [s["nodes"] for s in json.loads(history.stdout)] == [3]
    assert "url = https://x" in tree_view.stdout
    assert "hunter2" not in tree_view.stdout + node_view.stdout
    assert "redacted" in tree_view.stdout
    assert json.loads(node_view.stdout)["nodes"][0]["value"] == "https://x"


def test_unreachable_zookeeper_fails_within_the_connect_timeout_and_writes_nothing(
    cli_env: dict[str, str],
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    env = dict(cli_env, ZKDRIFT_ZK_CONNECT_TIMEOUT="2")
    run_cli("tree", "add", "dead", "--hosts", dead, "--root", "/x", "--no-check", env=env)
    started = time.monotonic()

    result = run_cli_process("snapshot", "dead", env=env)

    assert time.monotonic() - started < 15
    assert result.exit_code == 1
    assert "could not connect to ZooKeeper" in result.stderr and dead in result.stderr
    assert json.loads(run_cli("snapshots", "dead", "--json", env=env).stdout) == []


def test_tree_add_against_unreachable_zookeeper_fails_and_registers_nothing(
    cli_env: dict[str, str],
) -> None:
    env = dict(cli_env, ZKDRIFT_ZK_CONNECT_TIMEOUT="2")
    result = run_cli(
        "tree", "add", "t", "--hosts", f"127.0.0.1:{free_port()}", "--root", "/x", env=env
    )
    assert result.exit_code == 1
    assert "could not connect" in result.stderr
    assert json.loads(run_cli("tree", "list", "--json", env=env).stdout) == []


def test_missing_and_malformed_roots_are_clear_errors(
    zk_chroot: str, cli_env: dict[str, str]
) -> None:
    missing = run_cli(
        "tree", "add", "a", "--hosts", zk_chroot, "--root", "/does/not/exist", env=cli_env
    )
    malformed = run_cli(
        "tree", "add", "b", "--hosts", zk_chroot, "--root", "relative/path", env=cli_env
    )
    trailing = run_cli("tree", "add", "c", "--hosts", zk_chroot, "--root", "/a//b", env=cli_env)

    assert missing.exit_code == 1 and "'/does/not/exist' does not exist" in missing.stderr
    assert malformed.exit_code == 1 and "not absolute" in malformed.stderr
    assert trailing.exit_code == 1 and "empty segment" in trailing.stderr
    assert json.loads(run_cli("tree", "list", "--json", env=cli_env).stdout) == []


def test_root_deleted_after_registration_is_a_clear_error_at_snapshot(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/gone": b""})
    run_cli("tree", "add", "gone", "--hosts", zk_chroot, "--root", "/gone", env=cli_env)
    zk.delete("/gone")

    result = run_cli("snapshot", "gone", env=cli_env)

    assert result.exit_code == 1
    assert "'/gone' does not exist" in result.stderr


def test_unknown_tree_name_lists_the_known_ones(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/a": b"", "/b": b""})
    run_cli("tree", "add", "alpha", "--hosts", zk_chroot, "--root", "/a", env=cli_env)
    run_cli("tree", "add", "beta", "--hosts", zk_chroot, "--root", "/b", env=cli_env)

    result = run_cli("snapshot", "gamma", env=cli_env)

    assert result.exit_code == 1
    assert "unknown tree 'gamma'" in result.stderr
    assert "alpha, beta" in result.stderr


def test_verbose_logs_reach_stderr_and_name_zookeeper_but_never_secret_values(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/svc": b"", "/svc/api_token": b"tok-very-secret", "/svc/url": b"u"})
    run_cli("tree", "add", "svc", "--hosts", zk_chroot, "--root", "/svc", env=cli_env)

    result = run_cli("-vv", "snapshot", "svc", env=cli_env)

    assert result.exit_code == 0
    assert "connected to ZooKeeper at" in result.stderr
    assert "snapshot" in result.stderr
    assert "tok-very-secret" not in result.stderr + result.stdout


def test_a_database_failing_mid_command_is_one_clear_error_not_a_traceback(
    zk: KazooClient, zk_chroot: str, sqlite_url: str, tmp_path: Path
) -> None:
    import os
    import sqlite3

    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKDRIFT_")}
    env.update(ZKDRIFT_DATABASE_URL=sqlite_url, ZKDRIFT_HOME=str(tmp_path / "home"))
    create_tree(zk, {"/svc": b"", "/svc/a": b"1"})
    run_cli("tree", "add", "svc", "--hosts", zk_chroot, "--root", "/svc", env=env)
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        conn.execute("DROP TABLE node_states")

    result = run_cli("snapshot", "svc", env=env)

    assert result.exit_code == 1
    assert "database error" in result.stderr
    assert "node_states" in result.stderr
    assert "Traceback" not in result.stderr
