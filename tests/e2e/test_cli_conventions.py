"""Conventions every command keeps: exit statuses (0 ok, 2 differences and nothing
else, 1 every error, usage errors included) and help that reads like Click's."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from typer.core import TyperGroup

from tests.support.cli import run_cli, run_cli_process
from tests.support.zk import create_tree
from zkdrift.cli.main import cli_command


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no database URL: only a home of this test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKDRIFT_")}
    env.update(ZKDRIFT_HOME=str(tmp_path / "home"), COLUMNS="100")
    return env


# -- exit statuses -------------------------------------------------------------------------

USAGE_ERRORS = [
    (("diff", "demo", "--jsn"), "Usage: zkdrift diff [OPTIONS] NAME", "No such option: --jsn"),
    (("diff",), "Usage: zkdrift diff [OPTIONS] NAME", "Missing argument 'NAME'"),
    (
        ("snapshots", "demo", "-n", "many"),
        "Usage: zkdrift snapshots [OPTIONS] NAME",
        "Invalid value for '--limit' / '-n'",
    ),
    (("nosuch",), "Usage: zkdrift [OPTIONS] COMMAND [ARGS]...", "No such command 'nosuch'"),
    (
        ("desired", "set", "demo"),
        "Usage: zkdrift desired set [OPTIONS] NAME PATH [VALUE]",
        "Missing argument 'PATH'",
    ),
]


@pytest.mark.parametrize(("args", "usage", "error"), USAGE_ERRORS)
def test_usage_errors_exit_1_with_clicks_usage_message(
    args: tuple[str, ...], usage: str, error: str, bare_env: dict[str, str]
) -> None:
    result = run_cli(*args, env=bare_env)

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == usage
    assert lines[1].startswith("Try 'zkdrift")
    assert lines[-1].startswith(f"Error: {error}")
    assert result.stdout == ""


def test_an_unknown_option_exits_1_from_the_real_entry_point(bare_env: dict[str, str]) -> None:
    result = run_cli_process("diff", "demo", "--jsn", env=bare_env)

    assert result.exit_code == 1
    assert "Error: No such option: --jsn (Possible options: --json)" in result.stderr


def test_no_command_or_subcommand_prints_help_and_exits_1(bare_env: dict[str, str]) -> None:
    bare = run_cli(env=bare_env)
    group = run_cli("tree", env=bare_env)

    assert bare.exit_code == group.exit_code == 1
    assert "Usage: zkdrift [OPTIONS] COMMAND [ARGS]..." in bare.stderr
    assert "Usage: zkdrift tree [OPTIONS] COMMAND [ARGS]..." in group.stderr


def test_help_and_version_exit_0(bare_env: dict[str, str]) -> None:
    assert run_cli("--help", env=bare_env).exit_code == 0
    assert run_cli("diff", "--help", env=bare_env).exit_code == 0
    version = run_cli("--version", env=bare_env)
    assert version.exit_code == 0 and version.stdout.startswith("zkdrift ")


def test_diff_exits_0_in_sync_2_with_differences_and_1_on_an_error(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/svc": b"", "/svc/a": b"1"})
    run_cli("tree", "add", "svc", "--hosts", zk_chroot, "--root", "/svc", env=cli_env)
    run_cli("adopt", "svc", env=cli_env)

    in_sync = run_cli_process("diff", "svc", env=cli_env)
    zk.set("/svc/a", b"2")
    drifted = run_cli_process("diff", "svc", "--json", env=cli_env)
    unknown = run_cli_process("diff", "nope", env=cli_env)

    assert (in_sync.exit_code, drifted.exit_code, unknown.exit_code) == (0, 2, 1)
    assert unknown.stderr.startswith("error: unknown tree 'nope'")


def test_top_level_help_documents_the_exit_codes(bare_env: dict[str, str]) -> None:
    text = " ".join(run_cli("--help", env=bare_env).stdout.split())

    assert "Exit status: 0 success" in text
    assert "2 differences found (diff, plan), and nothing else" in text
    assert "1 any error, usage errors" in text


# -- help ----------------------------------------------------------------------------------


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


ALL_COMMANDS = list(_commands(cli_command()))


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "zkdrift")
def test_every_help_uses_clicks_metavars_and_no_type_placeholders(
    path: tuple[str, ...], bare_env: dict[str, str]
) -> None:
    result = run_cli(*path, "--help", env=bare_env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Usage: zkdrift")
    assert not re.search(r"<(bool|int|str|float|path|list\[str\]|[a-z ]+ range)>", result.stdout)
    usage = result.stdout.splitlines()[0]
    assert "{" not in usage and "}" not in usage
    assert "╭" not in result.stdout  # plain Click help, no boxes


def test_help_names_arguments_and_values_like_click(bare_env: dict[str, str]) -> None:
    apply = run_cli("apply", "--help", env=bare_env).stdout
    desired_set = run_cli("desired", "set", "--help", env=bare_env).stdout
    snapshots = run_cli("snapshots", "--help", env=bare_env).stdout
    status = run_cli("status", "--help", env=bare_env).stdout

    assert apply.splitlines()[0] == "Usage: zkdrift apply [OPTIONS] NAME"
    assert re.search(r"^  --plan INTEGER +Apply this stored plan\.", apply, re.MULTILINE)
    assert re.search(r"^  --reason TEXT +Why", apply, re.MULTILINE)
    assert re.search(r"^  -y, --yes +Write", apply, re.MULTILINE)  # a flag takes no value
    assert desired_set.splitlines()[0] == "Usage: zkdrift desired set [OPTIONS] NAME PATH [VALUE]"
    assert re.search(r"^  -f, --file PATH +Take", desired_set, re.MULTILINE)
    assert re.search(r"^  -n, --limit INTEGER +How many", snapshots, re.MULTILINE)
    assert status.splitlines()[0] == "Usage: zkdrift status [OPTIONS] [NAMES]..."


def test_help_texts_are_not_read_as_markup(bare_env: dict[str, str]) -> None:
    tree_set = " ".join(run_cli("tree", "set", "--help", env=bare_env).stdout.split())
    tree_add = " ".join(run_cli("tree", "add", "--help", env=bare_env).stdout.split())

    assert "ACL entry scheme:id:perms for the nodes" in tree_set  # ':id:' is no emoji
    assert "Connect string: host:port[,host:port][/chroot]" in tree_add


# -- times ---------------------------------------------------------------------------------

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")
LOOKS_LIKE_A_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")


def _strings(doc: Any) -> Iterator[str]:
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for value in doc.values():
            yield from _strings(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _strings(value)


def test_json_times_are_iso_8601_with_the_utc_offset_and_tables_name_utc(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/svc": b"", "/svc/a": b"1"})
    run_cli("tree", "add", "svc", "--hosts", zk_chroot, "--root", "/svc", env=cli_env)
    run_cli("adopt", "svc", env=cli_env)
    zk.set("/svc/a", b"2")
    run_cli("diff", "svc", env=cli_env)
    run_cli("apply", "svc", "--yes", env=cli_env)
    reads = [
        ("status",),
        ("snapshots", "svc"),
        ("history", "svc", "--all"),
        ("desired", "log", "svc"),
        ("audit", "svc", "--dry-runs"),
        ("tree", "list"),
        ("tree", "show", "svc"),
    ]

    times: list[str] = []
    for args in reads:
        result = run_cli(*args, "--json", env=cli_env)
        assert result.exit_code == 0, (args, result.stderr)
        times += [s for s in _strings(json.loads(result.stdout)) if LOOKS_LIKE_A_TIME.match(s)]
    shown_to_people = [args for args in reads if args != ("tree", "list")]  # no times there
    people = [run_cli(*args, env=cli_env).stdout for args in shown_to_people]

    assert len(times) >= 10
    assert [t for t in times if not ISO_UTC.fullmatch(t)] == []
    for args, text in zip(shown_to_people, people, strict=True):
        shown = LOOKS_LIKE_A_TIME.findall(text)
        assert shown, args
        assert re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text), args
        assert "T" not in "".join(shown) and "+00:00" not in text, args
        assert "(UTC)" not in text, args
