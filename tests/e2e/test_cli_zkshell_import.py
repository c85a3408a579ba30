"""``zkdrift desired import`` of backups made by zk-shell itself (``cp PATH json://...``),
from a real ZooKeeper: keys relative to the copied node land under the tree's root (or
``--prefix``), absolute keys are taken as they are, and every value is byte-exact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.support.cli import run_cli
from tests.support.zk import create_tree
from zkdrift.formats import load_export

# Values and names that break careless tools: binary, NUL, not UTF-8, Unicode names and
# values, empty values, and nesting several levels deep.
ADVERSARIAL: dict[str, bytes] = {
    "": b"",
    "/binary": bytes(range(256)),
    "/nul": b"\x00",
    "/latin1": "café".encode("latin-1"),
    "/ünïcødé ключ": "значение ✓ 😀".encode(),
    "/empty": b"",
    "/multi": b"line one\nline two\r\n",
    "/a": b"level 1",
    "/a/b": b"",
    "/a/b/c": b"\xff\xfe level 3",
    "/a/b/c/d": b"",
    "/a/b/c/d/e": b"level 5",
}


def under(base: str) -> dict[str, bytes]:
    return {f"{base}{key}": value for key, value in ADVERSARIAL.items()}


def zkshell_backup(hosts: str, path: str, backup: Path, key: str = "/") -> dict[str, object]:
    """``cp PATH json://BACKUP/KEY true true`` run by zk-shell, as an operator would."""
    url = "json://" + str(backup.resolve()).replace("/", "!") + key
    proc = subprocess.run(
        [sys.executable, "-m", "zk_shell.cli", "--run-once", f"cp {path} {url} true true", hosts],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Copying took" in output, output
    assert "failed" not in output.lower() and "Traceback" not in output, output
    doc: dict[str, object] = json.loads(backup.read_text())
    return doc


def exported(env: dict[str, str], tree: str, tmp_path: Path) -> dict[str, bytes]:
    out = tmp_path / f"{tree}-desired.json"
    result = run_cli("desired", "export", tree, "-o", str(out), env=env)
    assert result.exit_code == 0, result.stderr
    return {p: n.data for p, n in load_export(out.read_bytes()).nodes.items()}


def test_a_relative_zkshell_backup_of_a_subtree_lands_under_the_root_byte_exact(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    create_tree(zk, under("/live"))
    backup = zkshell_backup(zk_chroot, "/live", tmp_path / "live.json")
    run_cli("tree", "add", "live", "--hosts", zk_chroot, "--root", "/live", env=cli_env)

    result = run_cli("desired", "import", "live", str(tmp_path / "live.json"), env=cli_env)

    assert sorted(backup) == sorted(key or "/" for key in ADVERSARIAL)  # relative keys
    assert result.exit_code == 0, result.stderr
    assert exported(cli_env, "live", tmp_path) == under("/live")
    diff = run_cli("diff", "live", env=cli_env)
    assert diff.exit_code == 0, diff.stdout
    assert "no differences" in diff.stdout


def test_a_relative_zkshell_backup_lands_under_the_prefix(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    create_tree(zk, {"/svc": b""} | under("/svc/live"))
    zkshell_backup(zk_chroot, "/svc/live", tmp_path / "live.json")
    run_cli("tree", "add", "svc", "--hosts", zk_chroot, "--root", "/svc", env=cli_env)

    result = run_cli(
        "desired", "import", "svc", str(tmp_path / "live.json"), "--prefix", "/svc/live",
        env=cli_env,
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert exported(cli_env, "svc", tmp_path) == under("/svc/live")
    diff = run_cli("diff", "svc", env=cli_env)
    assert diff.exit_code == 0, diff.stdout


def test_an_absolute_zkshell_backup_is_taken_as_it_is(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    create_tree(zk, under("/live"))
    backup = zkshell_backup(zk_chroot, "/live", tmp_path / "live.json", key="/live")
    run_cli("tree", "add", "live", "--hosts", zk_chroot, "--root", "/live", env=cli_env)

    result = run_cli("desired", "import", "live", str(tmp_path / "live.json"), env=cli_env)

    assert sorted(backup) == sorted(under("/live"))  # absolute keys
    assert result.exit_code == 0, result.stderr
    assert exported(cli_env, "live", tmp_path) == under("/live")
    assert run_cli("diff", "live", env=cli_env).exit_code == 0


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        ("/elsewhere", "--prefix '/elsewhere' is outside the tree's root '/live'"),
        ("live/a", "--prefix 'live/a': path 'live/a' is not absolute (must start with '/')"),
    ],
)
def test_a_bad_prefix_is_one_error_line_and_writes_nothing(
    prefix: str,
    problem: str,
    zk: KazooClient,
    zk_chroot: str,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    create_tree(zk, under("/live"))
    zkshell_backup(zk_chroot, "/live", tmp_path / "live.json")
    run_cli("tree", "add", "live", "--hosts", zk_chroot, "--root", "/live", env=cli_env)

    result = run_cli(
        "desired", "import", "live", str(tmp_path / "live.json"), "--prefix", prefix, env=cli_env
    )

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {problem}"]
    log = run_cli("desired", "log", "live", "--json", env=cli_env)
    assert json.loads(log.stdout) == []
