"""Bad input on every command: one clear line naming the problem, exit 1 (usage errors
too: 2 means differences and nothing else), no traceback, and nothing written to the
database or the disk."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from sqlalchemy import select

from tests.support.cli import run_cli
from tests.support.zk import create_tree
from zkdrift.app import App
from zkdrift.cli.common import write_export
from zkdrift.desired import set_value
from zkdrift.errors import InvalidInputError
from zkdrift.snapshot import take_snapshot
from zkdrift.store.engine import make_engine
from zkdrift.store.models import Base
from zkdrift.trees import TreeSpec, add_tree

UNWRITABLE = "/proc/zkdrift-no-such-dir"

# (command line, exit status, what the message names)
CASES: list[tuple[tuple[str, ...], int, str]] = [
    (("tree", "add", "--help"), 0, "Connect string: host:port[,host:port][/chroot]"),
    (
        ("snapshots", "app", "-n", "-1"),
        1,
        "'--limit' / '-n': Input should be greater than or equal to 1",
    ),
    (("audit", "app", "-n", "0"), 1, "Input should be greater than or equal to 1"),
    (("desired", "log", "app", "-n", "-5"), 1, "Input should be greater than or equal to 1"),
    (("apply", "app", "--wait", "-5"), 1, "'--wait': Input should be greater than or equal to 0"),
    (("export", "app", "-o", f"{UNWRITABLE}/x.json"), 1, f"cannot write {UNWRITABLE}/x.json"),
    (("desired", "export", "app", "-o", f"{UNWRITABLE}/x.json"), 1, "cannot write"),
    (("desired", "export", "app", "--format", "dir", "-o", UNWRITABLE), 1, "cannot write"),
    (
        ("report", "app", "--since", "2021-01-01", "--until", "2020-01-01"),
        1,
        "the report window is empty",
    ),
    (("report", "app", "-o", f"{UNWRITABLE}/r.html"), 1, "cannot write the report"),
    (("--db", "not a url", "tree", "list"), 1, "invalid database URL"),
    (("--db", "nosuchdialect://u:pw@h/db", "tree", "list"), 1, "unusable database URL"),
    (("--db", f"sqlite:///{UNWRITABLE}/z.db", "tree", "list"), 1, f"no database at {UNWRITABLE}"),
    (("--db", f"sqlite:///{UNWRITABLE}/z.db", "db", "upgrade"), 1, "cannot create the directory"),
    (("--db", "mysql+pymysql://root:hunter2pw@127.0.0.1:1/x", "db", "upgrade"), 1, "cannot reach"),
    (("--db", "mysql+pymysql://root:hunter2pw@127.0.0.1:1/x", "db", "current"), 1, "cannot reach"),
]


def _rows(db_url: str) -> dict[str, list[object]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return {
                t.name: list(conn.execute(select(t)).all()) for t in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


@pytest.fixture
def registered(app: App, zk: KazooClient, zk_chroot: str) -> None:
    create_tree(zk, {"/app": b"", "/app/a": b"1", "/app/db_password": b"pw-s3cret"})
    add_tree(app, TreeSpec(name="app", hosts=zk_chroot, root="/app"), check=False)
    take_snapshot(app, "app")
    set_value(app, "app", "/app/a", b"2", message="desired", author="test")


@pytest.mark.usefixtures("registered")
def test_bad_input_is_one_clear_error_with_its_exit_status_and_writes_nothing(
    cli_env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    before = _rows(db_url)
    for args, status, message in CASES:
        result = run_cli(*args, env=cli_env)
        output = " ".join((result.stdout + result.stderr).split()).replace("│", "")
        assert result.exit_code == status, (args, result.stdout, result.stderr)
        assert "Traceback" not in output, args
        assert " ".join(message.split()) in " ".join(output.split()), (args, output)
        assert "hunter2pw" not in output, args
    assert _rows(db_url) == before
    assert not Path(UNWRITABLE).exists()
    assert list((tmp_path / "home").glob("**/*.html")) == []


def test_exports_refuse_a_terminal_and_write_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.TextIOWrapper):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Terminal(io.BytesIO(), encoding="utf-8"))
    with pytest.raises(InvalidInputError, match="refusing to print an export to the terminal"):
        write_export("-", b"secret-bytes")
    assert sys.stdout.buffer.getvalue() == b""  # type: ignore[attr-defined]

    pipe = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", pipe)
    write_export("-", b"secret-bytes")
    assert pipe.buffer.getvalue() == b"secret-bytes"  # type: ignore[attr-defined]


def test_tree_add_checks_its_auth_env_and_never_shows_the_credential(
    zk_chroot: str, cli_env: dict[str, str], db_url: str
) -> None:
    before = _rows(db_url)
    add = ("tree", "add", "app", "--hosts", zk_chroot, "--root", "/")
    bad_name = run_cli(*add, "--auth-env", "NOT A NAME", "--no-check", env=cli_env)
    unset = run_cli(*add, "--auth-env", "ZK_APP_AUTH", env=cli_env)
    assert (bad_name.exit_code, unset.exit_code) == (1, 1)
    assert "invalid --auth-env 'NOT A NAME'" in bad_name.stderr
    assert "$ZK_APP_AUTH, which is not set" in unset.stderr
    assert _rows(db_url) == before

    env = cli_env | {"ZK_APP_AUTH": "digest:user:tree-auth-s3cret"}
    shown = [
        run_cli(*add, "--auth-env", "ZK_APP_AUTH", "--json", env=env),
        run_cli("tree", "list", env=env),
        run_cli("tree", "list", "--json", env=env),
        run_cli("tree", "show", "app", env=env),
    ]
    assert [r.exit_code for r in shown] == [0, 0, 0, 0], [r.stderr for r in shown]
    assert "ZK_APP_AUTH" in shown[3].stdout
    for result in shown:
        assert "tree-auth-s3cret" not in result.stdout + result.stderr
