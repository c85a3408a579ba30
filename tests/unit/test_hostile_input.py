"""Hostile desired-state input: a FormatError naming the file and the limit, in bounded
time, without reading anything outside the imported directory or echoing the source."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zkdrift.formats import (
    MAX_NESTING,
    FormatError,
    dump_export,
    load_desired,
    load_directory,
    load_yaml,
)
from zkdrift.formats.yamlfmt import MAX_ALIASES, MAX_NODES
from zkdrift.formats.zkjson import STAT_FIELDS
from zkdrift.model import TreeState
from zkdrift.policy import MAX_OP_BYTES

ROOT = "/app"
SECRET = "hunter2-planted-secret"
# Every refusal here takes milliseconds; the bound is generous for a busy machine.
FAST = 2.0


def refused(source: Path, **kwargs: int) -> FormatError:
    """The FormatError loading ``source`` raises, after checking it came fast and
    as one line without the planted secret."""
    start = time.monotonic()
    with pytest.raises(FormatError) as info:
        load_desired(source, root=ROOT, **kwargs)
    elapsed = time.monotonic() - start
    assert elapsed < FAST, f"{source} took {elapsed:.2f}s to refuse"
    message = str(info.value)
    assert "\n" not in message
    assert SECRET not in message
    return info.value


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A valid directory tree, with a secret file next to it (outside it)."""
    (tmp_path / "outside").mkdir()
    write(tmp_path / "outside" / "secret", SECRET)
    tree = tmp_path / "tree"
    (tree / "db").mkdir(parents=True)
    write(tree / "db" / "host", "db.internal")
    return tree


# --- directories: links -------------------------------------------------------------


def test_a_symlink_to_an_absolute_path_outside_the_directory_is_refused(tree: Path) -> None:
    os.symlink(tree.parent / "outside" / "secret", tree / "db" / "password")

    error = refused(tree)

    assert error.source == str(tree / "db" / "password")
    assert error.entry == "db/password"
    assert f"symbolic link leads outside the imported directory {tree}" in str(error)


def test_a_symlink_to_the_process_environment_is_refused(tree: Path) -> None:
    os.symlink("/proc/self/environ", tree / "env")

    error = refused(tree)

    assert error.source == str(tree / "env")
    assert "leads outside the imported directory" in error.problem


@pytest.mark.parametrize(
    "target", ["../outside/secret", "db/../../outside/secret", "../tree/../outside/secret"]
)
def test_a_relative_symlink_climbing_out_with_dotdot_is_refused(tree: Path, target: str) -> None:
    os.symlink(target, tree / "link")

    error = refused(tree)

    assert error.source == str(tree / "link")
    assert "leads outside the imported directory" in error.problem


def test_a_symlinked_directory_pointing_outside_is_refused(tree: Path) -> None:
    os.symlink(tree.parent / "outside", tree / "conf")

    error = refused(tree)

    assert error.source == str(tree / "conf")
    assert "leads outside the imported directory" in error.problem


def test_a_link_through_a_symlinked_parent_directory_is_refused(tree: Path) -> None:
    # 'a' is checked before 'z', so it is the link through 'z' that is refused.
    os.symlink(tree.parent / "outside", tree / "z")
    os.symlink("z/secret", tree / "a")

    error = refused(tree)

    assert error.source == str(tree / "a")
    assert "leads outside the imported directory" in error.problem


def test_a_link_to_a_link_that_leads_outside_is_refused(tree: Path) -> None:
    os.symlink(tree.parent / "outside" / "secret", tree / "z")
    os.symlink("z", tree / "a")

    error = refused(tree)

    assert error.source == str(tree / "a")


def test_symlinks_that_stay_inside_the_directory_are_followed(tree: Path) -> None:
    os.symlink("db/host", tree / "relative")
    os.symlink("../db/./host", tree / "db" / "sibling")
    os.symlink(tree / "db" / "host", tree / "absolute")
    os.symlink("db/../relative", tree / "chained")

    state = load_directory(tree, root=ROOT)

    for path in ("/app/relative", "/app/db/sibling", "/app/absolute", "/app/chained"):
        assert state[path].data == b"db.internal", path


def test_a_symlink_to_a_directory_inside_is_refused(tree: Path) -> None:
    os.symlink("db", tree / "alias")

    error = refused(tree)

    assert error.source == str(tree / "alias")
    assert "symbolic links to directories are not supported" in error.problem


def test_a_symlink_loop_and_a_broken_symlink_are_refused(tree: Path) -> None:
    os.symlink("b", tree / "a")
    os.symlink("a", tree / "b")
    assert "symbolic link loop" in refused(tree).problem

    (tree / "a").unlink()
    (tree / "b").unlink()
    os.symlink("nowhere", tree / "a")
    assert "broken symbolic link" in refused(tree).problem


# --- directories: special and large files ---------------------------------------------


@pytest.mark.parametrize("name", ["pipe", ".zkdata"])
def test_a_fifo_is_refused_without_blocking(tree: Path, name: str) -> None:
    os.mkfifo(tree / "db" / name)

    error = refused(tree)

    assert error.source == str(tree / "db" / name)
    assert "not a regular file or directory (a FIFO)" in error.problem


def test_a_symlink_to_a_fifo_inside_is_refused_without_blocking(tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    os.symlink("pipe", tree / "a")

    error = refused(tree)

    assert error.source == str(tree / "a")
    assert "(a FIFO)" in error.problem


def test_a_socket_is_refused(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Bound by a relative name: socket paths are limited to about 100 bytes.
    monkeypatch.chdir(tree)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("sock")

        error = refused(tree)

    assert error.source == str(tree / "sock")
    assert "(a socket)" in error.problem


def test_a_symlink_to_dev_zero_is_refused_as_outside_and_never_read(tree: Path) -> None:
    os.symlink("/dev/zero", tree / "zero")

    error = refused(tree)

    # Refused for where it leads, not for what reading it gave.
    assert "leads outside the imported directory" in error.problem
    assert "larger than" not in error.problem


def test_a_file_one_byte_over_max_op_bytes_is_refused_by_its_size(tree: Path) -> None:
    with open(tree / "db" / "blob", "wb") as sparse:
        sparse.truncate(MAX_OP_BYTES + 1)

    error = refused(tree)

    assert error.source == str(tree / "db" / "blob")
    assert f"file is larger than {MAX_OP_BYTES:,} bytes" in error.problem


def test_a_file_of_exactly_max_op_bytes_is_read(tree: Path) -> None:
    with open(tree / "db" / "blob", "wb") as sparse:
        sparse.truncate(MAX_OP_BYTES)

    state = load_directory(tree, root=ROOT)

    assert state["/app/db/blob"].data == bytes(MAX_OP_BYTES)


def test_a_larger_file_limit_reads_a_larger_file(tree: Path) -> None:
    with open(tree / "blob", "wb") as sparse:
        sparse.truncate(MAX_OP_BYTES + 1)

    state = load_desired(tree, root=ROOT, max_file_bytes=2 * MAX_OP_BYTES)

    assert len(state["/app/blob"].data) == MAX_OP_BYTES + 1


def test_directories_nested_deeper_than_the_limit_are_refused(tree: Path) -> None:
    tree.joinpath(*["d"] * MAX_NESTING).mkdir(parents=True)
    assert len(load_directory(tree, root=ROOT)) == 3 + MAX_NESTING

    tree.joinpath(*["d"] * (MAX_NESTING + 1)).mkdir()
    error = refused(tree)

    assert error.source == str(tree.joinpath(*["d"] * (MAX_NESTING + 1)))
    assert f"directories nest deeper than {MAX_NESTING} levels" in error.problem


def test_a_device_given_as_the_file_to_import_is_refused() -> None:
    error = refused(Path("/dev/zero"))

    assert error.source == "/dev/zero"
    assert "a device or socket" in error.problem


# --- YAML ------------------------------------------------------------------------------


def billion_laughs() -> str:
    """The classic: nine levels of nine references each, 9**9 strings in 300-odd bytes."""
    lines = ['lol1: &lol1 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(2, 10):
        refs = ",".join([f"*lol{level - 1}"] * 9)
        lines.append(f"lol{level}: &lol{level} [{refs}]")
    return "\n".join(lines) + "\n"


def mapping_bomb() -> str:
    """The same in the nested layout zkdrift reads: every level a mapping of nine."""
    keys = "abcdefghi"
    lines = ["l1: &l1 {" + ", ".join(f"{k}: x" for k in keys) + "}"]
    for level in range(2, 10):
        lines.append(
            f"l{level}: &l{level} {{" + ", ".join(f"{k}: *l{level - 1}" for k in keys) + "}"
        )
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text", [billion_laughs(), mapping_bomb()], ids=["lists", "mappings"])
def test_a_yaml_alias_bomb_is_refused_naming_the_node_limit(tmp_path: Path, text: str) -> None:
    source = write(tmp_path / "bomb.yaml", text)

    error = refused(source)

    assert error.source == str(source)
    assert f"too many nodes: more than {MAX_NODES:,} with aliases expanded" in error.problem
    assert error.line == 6  # 9**6 > MAX_NODES: the sixth line passes the limit


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a\n  b: *a\n"], ids=["list", "mapping"])
def test_a_recursive_yaml_alias_is_refused(tmp_path: Path, text: str) -> None:
    source = write(tmp_path / "loop.yaml", text)

    error = refused(source)

    assert error.source == str(source)
    assert "recursive alias" in error.problem


def test_more_yaml_aliases_than_the_limit_are_refused(tmp_path: Path) -> None:
    text = "base: &b x\n" + "".join(f"k{i}: *b\n" for i in range(MAX_ALIASES + 1))
    source = write(tmp_path / "aliases.yaml", text)

    error = refused(source)

    assert f"too many aliases: more than {MAX_ALIASES:,}" in error.problem
    assert error.line == MAX_ALIASES + 2


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10_000,
        "{a: " * 10_000,
        "a: " + "[" * 10_000,
        "".join(f"{' ' * i}a:\n" for i in range(2 * MAX_NESTING)),
    ],
    ids=["flow-lists", "flow-mappings", "lists-under-a-key", "block-mappings"],
)
def test_yaml_nested_deeper_than_the_limit_is_refused(tmp_path: Path, text: str) -> None:
    source = write(tmp_path / "deep.yaml", text)

    error = refused(source)

    assert error.source == str(source)
    assert f"nesting too deep: more than {MAX_NESTING} levels" in error.problem


def test_yaml_nested_up_to_the_limit_is_read() -> None:
    # The top mapping is level 1 and the final scalar is level MAX_NESTING.
    depth = MAX_NESTING - 1
    text = "".join(f"{' ' * i}a:\n" for i in range(depth - 1)) + f"{' ' * (depth - 1)}a: x\n"

    state = load_yaml(text.encode(), root=ROOT, source="d.yaml")

    assert state["/app" + "/a" * depth].data == b"x"


def test_merge_keys_within_the_limits_are_read(tmp_path: Path) -> None:
    services = "".join(f"svc{i}:\n  <<: *defaults\n  name: s{i}\n" for i in range(500))
    source = write(tmp_path / "d.yaml", "defaults: &defaults\n  timeout: '5'\n" + services)

    state = load_desired(source, root=ROOT)

    assert state["/app/svc499/timeout"].data == b"5"


# --- JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("arrays.json", "[" * 100_000),
        ("objects.json", '{"a": ' * 100_000 + "1" + "}" * 100_000),
        ("value.json", '{"/app/a": ' + "[" * 100_000),
        ("no-suffix", '{"a": ' * 100_000),
    ],
)
def test_json_nested_deeper_than_the_limit_is_refused(tmp_path: Path, name: str, text: str) -> None:
    source = write(tmp_path / name, text)

    error = refused(source)

    assert error.source == str(source)
    assert f"nesting too deep: more than {MAX_NESTING} levels" in error.problem
    assert error.line == 1


def test_json_nesting_counts_brackets_in_strings_as_text(tmp_path: Path) -> None:
    value = '\\"[{' * 1000
    source = write(tmp_path / "d.json", '{"/app/a": "' + value + '"}')

    state = load_desired(source, root=ROOT)

    assert state["/app/a"].data == ('"[{' * 1000).encode()


def test_json_nested_up_to_the_limit_is_parsed(tmp_path: Path) -> None:
    # The object is level 1; the value's lists take the other MAX_NESTING - 1.
    inner = MAX_NESTING - 1
    ok = write(tmp_path / "ok.json", '{"/app/a": ' + "[" * inner + "]" * inner + "}")
    deep = write(
        tmp_path / "deep.json", '{"/app/a": ' + "[" * (inner + 1) + "]" * (inner + 1) + "}"
    )

    assert "value must be a string" in refused(ok).problem
    assert "nesting too deep" in refused(deep).problem


def test_a_json_number_too_long_to_convert_is_a_format_error(tmp_path: Path) -> None:
    source = write(tmp_path / "d.json", '{"/app/a": 1' + "1" * 5000 + "}")

    assert "a number has more than" in refused(source).problem


# --- nothing of the source in messages ------------------------------------------------------


def export_with(**changes: object) -> str:
    doc = json.loads(dump_export(TreeState.of(ROOT, {"/app": b""}), tree="app"))
    node_changes = changes.pop("node", {})
    assert isinstance(node_changes, dict)
    doc.update(changes)
    doc["nodes"][0].update(node_changes)
    return json.dumps(doc, indent=1)


SECRET_STAT = dict.fromkeys(STAT_FIELDS, 0) | {"version": SECRET}

ECHO_CASES: list[tuple[str, str]] = [
    ("unclosed.yaml", f'db:\n  host: x\n  password: "{SECRET}\n  port: 1\n'),
    ("tab.yaml", f"a: x\n\t{SECRET}: y\n"),
    ("bad-indent.yaml", f"a:\n  b: 1\n {SECRET}: 2\n"),
    ("tag.yaml", f"/app/a: !{SECRET} x\n"),
    ("int.yaml", f"/app/a: !!int {SECRET}\n"),
    ("bool.yaml", f"/app/a: !!bool {SECRET}\n"),
    ("timestamp.yaml", "/app/a: !!timestamp 2024-13-45\n"),
    ("alias.yaml", f"a: *{SECRET}\n"),
    ("anchor.yaml", f"a: &{SECRET} x\nb: &{SECRET} y\n"),
    ("two-docs.yaml", f"a: x\n---\n{SECRET}: y\n"),
    ("broken.json", f'{{\n  "/app/password": "{SECRET}" "x"\n}}\n'),
    ("control.json", f'{{"/app/p": "{SECRET}\x01"}}'),
    ("surrogate.json", f'{{"/app/p": "\\ud800{SECRET}"}}'),
    (
        "zkshell.json",
        json.dumps({"/app": {"content": "", "acls": [{"perms": 99, "id": {"id": SECRET}}]}}),
    ),
    (
        "acl-export.json",
        export_with(node={"acl": [{"perms": SECRET, "scheme": "digest", "id": SECRET}]}),
    ),
    ("acl-type-export.json", export_with(node={"acl": [{"perms": 1, "id": SECRET}]})),
    ("stat-export.json", export_with(node={"stat": SECRET_STAT})),
    ("sha-export.json", export_with(node={"sha256": SECRET})),
    ("version-export.json", export_with(version=SECRET)),
    ("snapshot-export.json", export_with(snapshot={"id": SECRET, "taken_at": None})),
    ("taken-export.json", export_with(snapshot={"id": None, "taken_at": SECRET})),
]


@pytest.mark.parametrize(("name", "text"), ECHO_CASES, ids=[n for n, _ in ECHO_CASES])
def test_errors_name_the_file_and_line_but_never_echo_the_source(
    tmp_path: Path, name: str, text: str
) -> None:
    source = write(tmp_path / name, text)

    error = refused(source)  # checks the secret is not in the message

    assert error.source == str(source)
    assert error.line is not None
    # PyYAML's own rendering (a snippet with a caret under it) never gets through.
    assert "^" not in str(error)


def test_an_unclosed_quote_is_located_by_line_and_column(tmp_path: Path) -> None:
    source = write(tmp_path / "d.yaml", f'db:\n  password: "{SECRET}\n')

    error = refused(source)

    assert error.line == 3
    assert "while scanning a quoted scalar (line 2, column 13)" in error.problem
    assert "found unexpected end of stream (column 1)" in error.problem


PURE_PYTHON_CHECK = """
import sys
sys.modules["yaml._yaml"] = None  # as if PyYAML had been built without libyaml
from zkdrift.formats import FormatError, load_yaml
from zkdrift.formats.yamlfmt import _Events
assert _Events.__name__ == "_PurePythonEvents", _Events
for text in sys.argv[1:]:
    try:
        load_yaml(text.encode(), root="/app", source="d.yaml")
    except FormatError as exc:
        print(exc.problem.split(" (")[0])
"""


def test_the_limits_hold_with_pure_python_yaml_parsing_too() -> None:
    inputs = [billion_laughs(), "a: &a [*a]\n", "[" * 10_000, f'a: "{SECRET}\n']

    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", PURE_PYTHON_CHECK, *inputs],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert result.stdout.splitlines() == [
        f"too many nodes: more than {MAX_NODES:,} with aliases expanded",
        "recursive alias: it refers to a node that contains it",
        f"nesting too deep: more than {MAX_NESTING} levels of mappings and lists",
        "malformed YAML: while scanning a quoted scalar",
    ]
    assert time.monotonic() - start < 30  # interpreter start-up included
