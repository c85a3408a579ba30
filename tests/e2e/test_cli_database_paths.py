"""Which commands may create a SQLite database, and where.

A read-only command never creates a database: a ZKDRIFT_DATABASE_URL (or --db)
naming a SQLite file that does not exist is a typo until 'zkdrift db upgrade'
says otherwise. A writing command creates the file but not a missing directory.
The default database in ZKDRIFT_HOME is made on first use by any command.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import run_cli, run_cli_process

READ_ONLY = [
    ("status",),
    ("show", "demo"),
    ("snapshots", "demo"),
    ("history", "demo"),
    ("audit", "demo"),
    ("export", "demo", "-o", "out.json"),
    ("diff", "demo", "--from", "1", "--to", "2"),
    ("report", "demo"),
    ("lock", "status", "demo"),
    ("tree", "list"),
    ("tree", "show", "demo"),
    ("desired", "log", "demo"),
    ("desired", "export", "demo", "-o", "out.json"),
    ("db", "current"),
    ("db", "check"),
]


def _env(tmp_path: Path, url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKDRIFT_")}
    env.update(ZKDRIFT_HOME=str(tmp_path / "home"), COLUMNS="200")
    if url is not None:
        env["ZKDRIFT_DATABASE_URL"] = url
    return env


def test_status_refuses_a_database_url_whose_file_does_not_exist_and_creates_nothing(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "typo" / "x.db"

    result = run_cli_process("status", env=_env(tmp_path, f"sqlite:///{missing}"))

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no database at {missing} (ZKDRIFT_DATABASE_URL); "
        "run 'zkdrift db upgrade' to create one, or fix the path\n"
    )
    assert list(tmp_path.iterdir()) == []  # not the file, its directory or the home


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_refuse_a_missing_sqlite_file_and_create_nothing(
    args: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dbs").mkdir()
    missing = tmp_path / "dbs" / "x.db"

    result = run_cli(*args, env=_env(tmp_path, f"sqlite:///{missing}"))

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: no database at {missing} (ZKDRIFT_DATABASE_URL); "
        "run 'zkdrift db upgrade' to create one, or fix the path"
    ]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dbs"]


def test_the_refusal_names_the_db_option_when_the_url_came_from_it(tmp_path: Path) -> None:
    missing = tmp_path / "x.db"

    result = run_cli("--db", f"sqlite:///{missing}", "tree", "list", env=_env(tmp_path, None))

    assert result.exit_code == 1
    assert f"no database at {missing} (--db)" in result.stderr
    assert not missing.exists()


def test_writing_commands_refuse_a_database_in_a_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "x.db"
    env = _env(tmp_path, f"sqlite:///{missing}")

    result = run_cli(
        "tree", "add", "demo", "--hosts", "127.0.0.1:1", "--root", "/x", "--no-check", env=env
    )

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: no database at {missing} (ZKDRIFT_DATABASE_URL) and no directory "
        f"{missing.parent} for one; run 'zkdrift db upgrade' to create both, or fix the path"
    ]
    assert list(tmp_path.iterdir()) == []


def test_writing_commands_create_the_database_in_an_existing_directory(tmp_path: Path) -> None:
    target = tmp_path / "x.db"
    env = _env(tmp_path, f"sqlite:///{target}")

    added = run_cli(
        "tree", "add", "demo", "--hosts", "127.0.0.1:1", "--root", "/x", "--no-check", env=env
    )
    listed = run_cli("tree", "list", env=env)

    assert added.exit_code == 0, added.stderr
    assert target.is_file()
    assert listed.exit_code == 0 and "demo" in listed.stdout


def test_db_upgrade_creates_the_database_and_its_directory(tmp_path: Path) -> None:
    target = tmp_path / "new" / "dir" / "x.db"
    env = _env(tmp_path, f"sqlite:///{target}")

    upgraded = run_cli("db", "upgrade", env=env)
    status = run_cli("status", env=env)

    assert upgraded.exit_code == 0, upgraded.stderr
    assert target.is_file()
    assert status.exit_code == 0 and "no trees registered yet" in status.stdout


def test_the_default_database_is_created_on_first_use_even_by_a_read_only_command(
    tmp_path: Path,
) -> None:
    result = run_cli("status", env=_env(tmp_path, None))

    assert result.exit_code == 0, result.stderr
    assert "no trees registered yet" in result.stdout
    assert (tmp_path / "home" / "zkdrift.db").is_file()
