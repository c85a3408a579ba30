"""Import/export of tree states: byte-exact round trips and precise errors."""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from zkdrift.errors import InvalidInputError
from zkdrift.formats import (
    FormatError,
    dump_directory,
    dump_export,
    dump_yaml,
    dump_zkshell_json,
    load_desired,
    load_directory,
    load_export,
    load_flat_json,
    load_yaml,
    load_zkshell_json,
    parse_export,
    write_export,
)
from zkdrift.model import Acl, Stat, TreeState, Znode, digest
from zkdrift.policy import MAX_OP_BYTES

ROOT = "/app"
ONE_MIB = random.Random(7).randbytes(1024 * 1024)

# Values that break careless encoders: not UTF-8, NUL bytes, empty, huge,
# text that YAML would otherwise reinterpret, and awkward whitespace.
AWKWARD_VALUES: dict[str, bytes] = {
    "/app": b"",
    "/app/binary": b"\xff\xfe\x00\x01\x80 not utf-8 \xc3\x28",
    "/app/nul": b"\x00",
    "/app/empty": b"",
    "/app/large": ONE_MIB,
    "/app/caf\u00e9/\u65e5\u672c\u8a9e": "v\u00e4lue \u2603 \U0001f600".encode(),
    "/app/with space/and more spaces ": b"  leading and trailing  ",
    "/app/looks like int": b"5432",
    "/app/looks like bool": b"yes",
    "/app/looks like null": b"~",
    "/app/looks like float": b"1.10",
    "/app/multi line": b"line one\nline two\n\n",
    "/app/crlf": b"a\r\nb",
    "/app/tab": b"\tindented",
    "/app/bom": "\ufeffbom".encode(),
    "/app/line separator": "a\u2028b".encode(),
    "/app/json text": b'{"a": [1, 2], "b": null}',
    "/app/yaml text": b"key: value\n- item\n",
    "/app/quote": b"'\"",
}


def awkward_state(root: str = ROOT) -> TreeState:
    return TreeState.of(root, AWKWARD_VALUES)


def live_state() -> TreeState:
    stat = Stat(
        version=3,
        cversion=1,
        aversion=2,
        czxid=0x100000001,
        mzxid=0x100000007,
        pzxid=0x100000009,
        ctime=1_700_000_000_000,
        mtime=1_700_000_123_456,
        ephemeral_owner=0,
        num_children=1,
        data_length=5,
    )
    acl = (Acl(31, "world", "anyone"), Acl(1, "digest", "bob:x1y2z3="))
    return TreeState(
        ROOT,
        {
            "/app": Znode("/app", b"hello", stat, acl),
            "/app/session": Znode(
                "/app/session",
                b"\x01",
                Stat(ephemeral_owner=0x1234ABCD, data_length=1),
                (),
            ),
        },
    )


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def export_nodes(data: bytes) -> list[dict[str, object]]:
    nodes = json.loads(data)["nodes"]
    assert isinstance(nodes, list)
    return nodes


def replace_node_field(data: bytes, path: str, field: str, value: object) -> bytes:
    doc = json.loads(data)
    for node in doc["nodes"]:
        if node["path"] == path:
            node[field] = value
    # One node per line, as the writer does, so line numbers are predictable.
    lines = ["{"]
    for key in ("format", "version", "tree", "root", "snapshot"):
        lines.append(f'  "{key}": {json.dumps(doc[key])},')
    lines.append('  "nodes": [')
    lines.append(",\n".join("    " + json.dumps(n) for n in doc["nodes"]))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines).encode()


# --- zkdrift export ---------------------------------------------------------


def test_export_round_trips_binary_empty_large_and_unicode_values_exactly() -> None:
    state = awkward_state()

    loaded = load_export(dump_export(state, tree="app"))

    assert loaded == state
    assert loaded["/app/large"].data == ONE_MIB
    assert loaded["/app/binary"].data == b"\xff\xfe\x00\x01\x80 not utf-8 \xc3\x28"
    assert loaded["/app/empty"].data == b""


def test_export_round_trips_stat_acl_and_the_ephemeral_flag() -> None:
    state = live_state()

    data = dump_export(state, tree="app", snapshot_id=9)
    loaded = load_export(data)

    assert loaded == state
    assert loaded["/app"].stat == state["/app"].stat
    assert loaded["/app"].acl == state["/app"].acl
    assert loaded["/app/session"].acl == ()
    assert loaded["/app/session"].ephemeral
    nodes = {n["path"]: n for n in export_nodes(data)}
    assert nodes["/app/session"]["ephemeral"] is True
    assert nodes["/app"]["acl"] == [
        {"perms": "rwcda", "scheme": "world", "id": "anyone"},
        {"perms": "r", "scheme": "digest", "id": "bob:x1y2z3="},
    ]


def test_export_writes_the_documented_fields_with_nodes_sorted_by_path() -> None:
    state = TreeState.of(ROOT, {"/app/b": b"2", "/app": b"", "/app/a": b"\x00"})

    doc = json.loads(dump_export(state, tree="payments"))

    assert doc["format"] == "zkdrift-export"
    assert doc["version"] == 1
    assert doc["tree"] == "payments"
    assert doc["root"] == "/app"
    assert doc["snapshot"] == {"id": None, "taken_at": None}
    assert [n["path"] for n in doc["nodes"]] == ["/app", "/app/a", "/app/b"]
    assert doc["nodes"][1] == {
        "path": "/app/a",
        "data": "AA==",
        "size": 1,
        "sha256": digest(b"\x00"),
        "ephemeral": False,
        "stat": None,
        "acl": None,
    }


def test_export_writes_one_node_per_line_with_unicode_paths_unescaped() -> None:
    state = TreeState.of(ROOT, {"/app/caf\u00e9": b"x", "/app/a b": b"y"})

    text = dump_export(state, tree="t").decode("utf-8")

    assert '"path": "/app/caf\u00e9"' in text
    node_lines = [line for line in text.splitlines() if '"path"' in line]
    assert len(node_lines) == 2


def test_export_keeps_tree_name_snapshot_id_and_time_taken() -> None:
    taken = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)

    data = dump_export(awkward_state(), tree="app", snapshot_id=42, taken_at=taken)
    doc = parse_export(data)

    assert json.loads(data)["snapshot"] == {
        "id": 42,
        "taken_at": "2024-05-01T12:30:15.123456+00:00",
    }
    assert doc.tree == "app"
    assert doc.snapshot_id == 42
    assert doc.taken_at == taken
    assert doc.state == awkward_state()


def test_an_empty_state_exports_and_reads_back_as_empty() -> None:
    state = TreeState("/", {})

    assert load_export(dump_export(state, tree="empty")) == state


def test_write_export_to_a_file_and_to_a_stream_gives_the_same_bytes(tmp_path: Path) -> None:
    state = awkward_state()
    target = tmp_path / "export.json"
    stream = io.BytesIO()

    write_export(state, target, tree="app", snapshot_id=1)
    write_export(state, stream, tree="app", snapshot_id=1)

    assert target.read_bytes() == stream.getvalue()
    assert target.read_bytes() == dump_export(state, tree="app", snapshot_id=1)
    assert [p.name for p in tmp_path.iterdir()] == ["export.json"]


def test_dump_export_refuses_a_node_outside_the_states_root() -> None:
    state = TreeState.of(ROOT, {"/other": b"x"})

    with pytest.raises(ValueError, match="/other"):
        dump_export(state, tree="app")


def test_an_export_whose_sha256_does_not_match_is_rejected_naming_the_path_and_line() -> None:
    data = dump_export(TreeState.of(ROOT, {"/app": b"", "/app/db": b"host"}), tree="app")
    tampered = replace_node_field(data, "/app/db", "sha256", digest(b"other"))

    with pytest.raises(FormatError, match="sha256 mismatch") as info:
        load_export(tampered, source="snap.json")

    assert info.value.entry == "/app/db"
    assert info.value.line == 9
    assert str(info.value).startswith("snap.json:9: entry '/app/db': sha256 mismatch")


def test_an_export_whose_size_does_not_match_is_rejected_naming_the_path() -> None:
    data = dump_export(TreeState.of(ROOT, {"/app/db": b"host"}), tree="app")
    tampered = replace_node_field(data, "/app/db", "size", 5)

    with pytest.raises(FormatError, match=r"size mismatch: file says 5 bytes, data decodes to 4"):
        load_export(tampered)


def test_an_export_with_bytes_changed_but_not_the_digest_is_rejected() -> None:
    data = dump_export(TreeState.of(ROOT, {"/app/db": b"host"}), tree="app")
    tampered = replace_node_field(data, "/app/db", "data", base64.b64encode(b"hosT").decode())

    with pytest.raises(FormatError, match="sha256 mismatch") as info:
        load_export(tampered)
    assert info.value.entry == "/app/db"


@pytest.mark.parametrize("bad", ["not base64!", "aGVsbG8", "aGVs\nbG8="])
def test_an_export_with_bad_base64_is_rejected_naming_the_path(bad: str) -> None:
    data = dump_export(TreeState.of(ROOT, {"/app/db": b"hello"}), tree="app")

    with pytest.raises(FormatError, match="invalid base64") as info:
        load_export(replace_node_field(data, "/app/db", "data", bad), source="x.json")

    assert info.value.entry == "/app/db"
    assert info.value.line == 8


def test_an_export_of_an_unknown_version_is_rejected() -> None:
    doc = json.loads(dump_export(TreeState.of(ROOT, {}), tree="app"))
    doc["version"] = 2

    with pytest.raises(FormatError, match="unsupported export version 2"):
        load_export(json.dumps(doc).encode())


def test_an_export_node_outside_its_root_is_rejected() -> None:
    data = dump_export(TreeState.of(ROOT, {"/app/a": b""}), tree="app")
    tampered = replace_node_field(data, "/app/a", "path", "/elsewhere")

    with pytest.raises(FormatError, match="outside root '/app'") as info:
        load_export(tampered)
    assert info.value.entry == "/elsewhere"


def test_an_export_claiming_ephemeral_without_a_stat_is_rejected() -> None:
    data = dump_export(TreeState.of(ROOT, {"/app/a": b""}), tree="app")

    with pytest.raises(FormatError, match="ephemeral is true"):
        load_export(replace_node_field(data, "/app/a", "ephemeral", True))


def test_an_export_with_a_path_twice_is_rejected() -> None:
    data = dump_export(TreeState.of(ROOT, {"/app/a": b"", "/app/b": b""}), tree="app")

    with pytest.raises(FormatError, match="more than once") as info:
        load_export(replace_node_field(data, "/app/b", "path", "/app/a"))
    assert info.value.line == 9


# --- JSON errors --------------------------------------------------------------


def test_malformed_json_names_the_file_line_and_column_but_not_the_text(tmp_path: Path) -> None:
    source = write(
        tmp_path, "desired.json", '{\n  "/app/a": "1",\n  "/app/b": "2"\n  "/app/c": "3"\n}\n'
    )

    with pytest.raises(FormatError) as info:
        load_desired(source, root=ROOT)

    message = str(info.value)
    assert message.startswith(f"{source}:4: ")
    assert "malformed JSON: Expecting ',' delimiter (column 3)" in message
    assert '"/app/c": "3"' not in message
    assert info.value.line == 4


def test_a_duplicate_json_key_is_rejected_with_both_lines(tmp_path: Path) -> None:
    source = write(
        tmp_path, "d.json", '{\n  "/app/a": "1",\n  "/app/b": "2",\n  "/app/a": "3"\n}\n'
    )

    with pytest.raises(FormatError, match=r"duplicate key \(first at line 2\)") as info:
        load_desired(source, root=ROOT)

    assert info.value.line == 4
    assert info.value.entry == "/app/a"


def test_a_duplicate_key_nested_in_a_zkshell_entry_is_rejected_with_its_line(
    tmp_path: Path,
) -> None:
    text = '{\n "/app": {\n  "content": "",\n  "acls": [],\n  "content": "eA=="\n }\n}\n'
    source = write(tmp_path, "backup.json", text)

    with pytest.raises(FormatError, match="duplicate key") as info:
        load_desired(source, root=ROOT)
    assert info.value.line == 5
    assert info.value.entry == "content"


@pytest.mark.parametrize(
    "bad_path",
    [
        "app/relative",
        "/app/trailing/",
        "/app//double",
        "/app/./dot",
        "/app/../up",
        "/app/nul\u0001",
    ],
)
def test_an_invalid_zookeeper_path_is_rejected_naming_entry_and_line(
    tmp_path: Path, bad_path: str
) -> None:
    text = "{\n" + '  "/app/ok": "1",\n' + f'  {json.dumps(bad_path)}: "2"\n' + "}\n"
    source = write(tmp_path, "d.json", text)

    with pytest.raises(FormatError, match="invalid ZooKeeper path") as info:
        load_desired(source, root=ROOT)

    assert info.value.line == 3
    assert info.value.entry == bad_path
    assert f":3: entry {bad_path!r}" in str(info.value)


def test_a_path_outside_the_root_is_rejected(tmp_path: Path) -> None:
    source = write(tmp_path, "d.json", '{"/app/a": "1",\n "/application/b": "2"}')

    with pytest.raises(FormatError, match="outside root '/app'") as info:
        load_desired(source, root=ROOT)
    assert info.value.line == 2
    assert info.value.entry == "/application/b"


def test_json_that_is_not_utf8_is_rejected_with_its_line(tmp_path: Path) -> None:
    source = write(tmp_path, "d.json", b'{\n"/app/a": "\xff"\n}')

    with pytest.raises(FormatError, match="not valid UTF-8") as info:
        load_desired(source, root=ROOT)
    assert info.value.line == 2


def test_format_error_is_a_value_error_that_survives_pickling() -> None:
    error = FormatError("f.yaml", "bad value", line=3, entry="/app/x")

    copy = pickle.loads(pickle.dumps(error))

    assert isinstance(copy, ValueError)
    assert str(copy) == "f.yaml:3: entry '/app/x': bad value"
    assert (copy.source, copy.line, copy.entry, copy.problem) == (
        "f.yaml",
        3,
        "/app/x",
        "bad value",
    )


# --- plain JSON mapping -------------------------------------------------------


def test_flat_json_reads_text_as_utf8_base64_as_raw_bytes_and_null_as_empty() -> None:
    data = json.dumps(
        {
            "/app/text": "caf\u00e9",
            "/app/raw": {"base64": base64.b64encode(b"\xff\x00").decode()},
            "/app/none": None,
            "/app/with space": "",
        }
    ).encode()

    state = load_flat_json(data, root=ROOT)

    assert {p: n.data for p, n in state.items()} == {
        "/app/text": "caf\u00e9".encode(),
        "/app/raw": b"\xff\x00",
        "/app/none": b"",
        "/app/with space": b"",
    }
    assert all(n.stat is None and n.acl is None for n in state.values())
    assert list(state) == sorted(state)


def test_flat_json_rejects_a_number_value_naming_the_entry() -> None:
    with pytest.raises(FormatError, match="value must be a string") as info:
        load_flat_json(b'{\n"/app/port": 5432\n}', root=ROOT, source="d.json")
    assert info.value.line == 2
    assert info.value.entry == "/app/port"


def test_flat_json_rejects_bad_base64_naming_the_entry() -> None:
    with pytest.raises(FormatError, match="invalid base64") as info:
        load_flat_json(b'{\n"/app/x":\n {"base64": "@@@"}}', root=ROOT)
    assert info.value.entry == "/app/x"
    assert info.value.line == 3


# --- zk-shell JSON backup -------------------------------------------------------


def test_a_zkshell_backup_as_zkshell_writes_it_is_read(tmp_path: Path) -> None:
    # Layout of zk_shell.copy_util.JSONProxy: json.dump(tree, indent=4),
    # base64 content, ACLs from ACLReader.to_dict.
    backup = {
        "/app": {"content": "", "acls": [{"perms": 31, "id": {"scheme": "world", "id": "anyone"}}]},
        "/app/db": {
            "content": base64.b64encode(b"host=db\n").decode(),
            "acls": [
                {"perms": 1, "id": {"scheme": "world", "id": "anyone"}},
                {"perms": 31, "id": {"scheme": "digest", "id": "admin:abc="}},
            ],
        },
        "/app/raw": {"content": base64.b64encode(b"\xff\xfe").decode(), "acls": []},
        "/app/nothing": {"content": None, "acls": []},
    }
    source = write(tmp_path, "backup.json", json.dumps(backup, indent=4))

    state = load_desired(source, root=ROOT)

    assert state["/app/db"].data == b"host=db\n"
    assert state["/app/db"].acl == (Acl(1, "world", "anyone"), Acl(31, "digest", "admin:abc="))
    assert state["/app/raw"].data == b"\xff\xfe"
    assert state["/app/raw"].acl is None
    assert state["/app/nothing"].data == b""
    assert state["/app"].acl == (Acl(31, "world", "anyone"),)


def _backup(*keys: str) -> bytes:
    """A zk-shell backup whose entry at each key holds the key's own bytes."""
    return json.dumps(
        {k: {"content": base64.b64encode(k.encode()).decode(), "acls": []} for k in keys}
    ).encode()


def test_a_zkshell_backup_keyed_relative_to_the_copied_node_lands_under_the_root() -> None:
    # 'cp /app json://!tmp!b.json/' keys the copied node '/' and its children '/db', ...
    state = load_zkshell_json(_backup("/", "/db", "/db/pool"), root=ROOT)

    assert {p: n.data for p, n in state.nodes.items()} == {
        "/app": b"/",
        "/app/db": b"/db",
        "/app/db/pool": b"/db/pool",
    }


def test_a_zkshell_backup_keyed_under_the_root_is_taken_as_it_is() -> None:
    state = load_zkshell_json(_backup("/app", "/app/db"), root=ROOT)

    assert {p: n.data for p, n in state.nodes.items()} == {"/app": b"/app", "/app/db": b"/app/db"}


def test_a_zkshell_backup_with_a_prefix_lands_under_the_prefix() -> None:
    relative = load_zkshell_json(_backup("/", "/pool"), root=ROOT, prefix="/app/db")
    # With a prefix every key is relative, even one that looks absolute.
    absolute_looking = load_zkshell_json(_backup("/app"), root=ROOT, prefix="/app/db")

    assert {p: n.data for p, n in relative.nodes.items()} == {
        "/app/db": b"/",
        "/app/db/pool": b"/pool",
    }
    assert list(absolute_looking) == ["/app/db/app"]


def test_under_root_slash_zkshell_keys_are_taken_as_they_are() -> None:
    state = load_zkshell_json(_backup("/", "/app"), root="/")

    assert list(state) == ["/", "/app"]


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        ("/elsewhere", "--prefix '/elsewhere' is outside the tree's root '/app'"),
        ("db", "--prefix 'db': path 'db' is not absolute"),
        ("/app/db/", "--prefix '/app/db/'"),
    ],
)
def test_a_bad_prefix_is_refused_naming_it(prefix: str, problem: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        load_zkshell_json(_backup("/", "/db"), root=ROOT, prefix=prefix)
    assert str(info.value).startswith(problem)


def test_zkshell_keys_outside_the_root_without_a_slash_entry_suggest_a_prefix() -> None:
    data = b'{\n "/app/a": {"content": ""},\n "/other/b": {"content": ""}\n}'

    with pytest.raises(FormatError) as info:
        load_zkshell_json(data, root=ROOT, source="b.json")

    assert info.value.entry == "/other/b" and info.value.line == 3
    assert "outside root '/app'" in info.value.problem and "--prefix PATH" in info.value.problem


def test_a_zkshell_backup_keyed_both_ways_at_once_asks_for_a_prefix() -> None:
    # 'cp / json://FILE/' of the whole namespace: '/' and '/app' are both absolute.
    whole = _backup("/", "/app", "/app/db", "/zookeeper")

    with pytest.raises(FormatError, match="give --prefix /app") as info:
        load_zkshell_json(whole, root=ROOT, source="b.json")
    relative = load_zkshell_json(whole, root=ROOT, prefix=ROOT)

    assert info.value.entry == "/"
    assert list(relative) == ["/app", "/app/app", "/app/app/db", "/app/zookeeper"]


def test_an_invalid_key_in_a_relative_zkshell_backup_is_named() -> None:
    data = b'{\n "/": {"content": ""},\n "/a//b": {"content": ""}\n}'

    with pytest.raises(FormatError, match="invalid ZooKeeper path") as info:
        load_zkshell_json(data, root=ROOT, source="b.json")

    assert info.value.entry == "/a//b" and info.value.line == 3


@pytest.mark.parametrize(
    ("name", "text", "what"),
    [
        ("d.yaml", "/app/a: x\n", "YAML"),
        ("d.json", '{"/app/a": "x"}', "flat JSON"),
    ],
)
def test_a_prefix_is_refused_for_anything_but_a_zkshell_backup(
    tmp_path: Path, name: str, text: str, what: str
) -> None:
    source = write(tmp_path, name, text)

    with pytest.raises(FormatError, match=f"this is {what}, not one"):
        load_desired(source, root=ROOT, prefix="/app")


def test_zkshell_json_round_trips_awkward_values_exactly() -> None:
    state = awkward_state()

    assert load_zkshell_json(dump_zkshell_json(state), root=ROOT) == state


def test_dump_zkshell_json_uses_zkshells_layout() -> None:
    state = TreeState(ROOT, {"/app": Znode("/app", b"v", None, (Acl(3, "ip", "10.0.0.1"),))})

    written = json.loads(dump_zkshell_json(state))

    assert written == {
        "/app": {
            "content": "dg==",
            "acls": [{"perms": 3, "id": {"scheme": "ip", "id": "10.0.0.1"}}],
        }
    }


def test_zkshell_entries_marked_ephemeral_are_left_out() -> None:
    data = json.dumps(
        {
            "/app": {"content": "", "acls": []},
            "/app/lock": {"content": "", "acls": [], "ephemeral": True},
            "/app/conf": {"content": "eA==", "acls": [], "ephemeral": False},
        }
    ).encode()

    assert list(load_zkshell_json(data, root=ROOT)) == ["/app", "/app/conf"]


def test_zkshell_content_that_is_not_base64_is_rejected_with_line_and_path() -> None:
    data = b'{\n    "/app/a": {\n        "content": "plain text",\n        "acls": []\n    }\n}'

    with pytest.raises(FormatError, match="invalid base64") as info:
        load_zkshell_json(data, root=ROOT, source="b.json")
    assert info.value.line == 3
    assert info.value.entry == "/app/a"


def test_a_zkshell_entry_without_content_is_rejected() -> None:
    data = b'{"/app/a": {"content": ""},\n "/app/b": {"acls": []}}'

    with pytest.raises(FormatError, match="zk-shell backup entry") as info:
        load_zkshell_json(data, root=ROOT)
    assert info.value.line == 2


# --- YAML -----------------------------------------------------------------------


def test_yaml_round_trips_awkward_values_exactly(tmp_path: Path) -> None:
    state = awkward_state()

    text = dump_yaml(state)
    loaded = load_desired(write(tmp_path, "desired.yaml", text), root=ROOT)

    assert loaded == state


def test_dump_yaml_writes_text_as_strings_and_other_bytes_as_binary() -> None:
    state = TreeState.of(ROOT, {"/app/t": "caf\u00e9".encode(), "/app/b": b"\xff", "/app/n": b"5"})

    text = dump_yaml(state)

    assert "/app/t: caf\u00e9" in text
    assert "/app/b: !!binary" in text
    # A standard loader reads the same bytes back.
    plain = yaml.safe_load(text)
    assert plain == {"/app/b": b"\xff", "/app/n": "5", "/app/t": "caf\u00e9"}
    assert list(plain) == ["/app/b", "/app/n", "/app/t"]


def test_nested_yaml_joins_segments_under_root_and_value_key_gives_own_data() -> None:
    text = """\
_value: root data
db:
  _value: db data
  host: db.internal
  "with space": x
flags: {}
caf\u00e9: \u2603
empty:
"""

    state = load_yaml(text.encode(), root=ROOT)

    assert {p: n.data for p, n in state.items()} == {
        "/app": b"root data",
        "/app/db": b"db data",
        "/app/db/host": b"db.internal",
        "/app/db/with space": b"x",
        "/app/flags": b"",
        "/app/caf\u00e9": "\u2603".encode(),
        "/app/empty": b"",
    }


def test_nested_yaml_under_the_zookeeper_root_builds_absolute_paths() -> None:
    state = load_yaml(b"a:\n  b: 1\n", root="/")

    assert {p: n.data for p, n in state.items()} == {"/": b"", "/a": b"", "/a/b": b"1"}


def test_yaml_scalars_are_kept_exactly_as_written() -> None:
    text = "/app/port: 5432\n/app/on: yes\n/app/ver: 1.10\n/app/hex: 0x1F\n/app/date: 2024-01-01\n"

    state = load_yaml(text.encode(), root=ROOT)

    assert {p: n.data for p, n in state.items()} == {
        "/app/port": b"5432",
        "/app/on": b"yes",
        "/app/ver": b"1.10",
        "/app/hex": b"0x1F",
        "/app/date": b"2024-01-01",
    }


@pytest.mark.parametrize("null", ["~", "null", "Null", ""])
def test_a_yaml_null_means_empty_data(null: str) -> None:
    state = load_yaml(f"/app/a: {null}\n".encode(), root=ROOT)

    assert state["/app/a"].data == b""


def test_a_yaml_binary_value_gives_raw_bytes() -> None:
    encoded = base64.b64encode(b"\x00\xff\xfe").decode()

    state = load_yaml(f"bin: !!binary {encoded}\n".encode(), root=ROOT)

    assert state["/app/bin"].data == b"\x00\xff\xfe"


def test_yaml_merge_keys_work_in_the_nested_layout() -> None:
    text = "base: &base\n  timeout: '5'\nsvc:\n  <<: *base\n  name: api\n"

    state = load_yaml(text.encode(), root=ROOT)

    assert state["/app/svc/timeout"].data == b"5"
    assert state["/app/svc/name"].data == b"api"


def test_a_duplicate_yaml_key_is_rejected_with_its_line_and_the_first_line() -> None:
    text = "db:\n  host: a\n  port: '1'\n  host: b\n"

    with pytest.raises(FormatError, match=r"duplicate key \(first at line 2\)") as info:
        load_yaml(text.encode(), root=ROOT, source="d.yaml")

    assert info.value.line == 4
    assert info.value.entry == "host"
    assert str(info.value).startswith("d.yaml:4: entry 'host'")


def test_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    source = write(tmp_path, "d.yaml", "a: 1\nb: 2\nc: [unclosed\nd: 4\n")

    with pytest.raises(FormatError, match="malformed YAML") as info:
        load_desired(source, root=ROOT)

    assert info.value.source == str(source)
    assert info.value.line is not None
    assert info.value.line >= 3
    assert f"{source}:{info.value.line}:" in str(info.value)


def test_badly_indented_yaml_reports_the_line_and_column_of_the_problem() -> None:
    text = "a:\n  b: 1\n c: 2\n"

    with pytest.raises(FormatError, match="malformed YAML") as info:
        load_yaml(text.encode(), root=ROOT, source="d.yaml")
    assert info.value.line == 3
    assert "(column 2)" in str(info.value)
    assert info.value.entry is None
    assert "c: 2" not in str(info.value)


def test_an_invalid_path_in_flat_yaml_is_rejected_with_line_and_entry() -> None:
    text = "/app/a: '1'\n/app/b//c: '2'\n"

    with pytest.raises(FormatError, match="invalid ZooKeeper path") as info:
        load_yaml(text.encode(), root=ROOT, source="d.yaml")
    assert info.value.line == 2
    assert info.value.entry == "/app/b//c"


def test_a_flat_yaml_path_outside_root_is_rejected_with_its_line() -> None:
    with pytest.raises(FormatError, match="outside root") as info:
        load_yaml(b"/app/a: x\n/etc/b: y\n", root=ROOT)
    assert info.value.line == 2
    assert info.value.entry == "/etc/b"


def test_yaml_mixing_flat_and_nested_keys_is_rejected() -> None:
    with pytest.raises(FormatError, match="mixes absolute paths") as info:
        load_yaml(b"/app/a: x\nb: y\n", root=ROOT)
    assert info.value.line == 2
    assert info.value.entry == "b"


def test_a_nested_yaml_key_containing_a_slash_is_rejected() -> None:
    with pytest.raises(FormatError, match="must not contain '/'") as info:
        load_yaml(b"db:\n  a/b: x\n", root=ROOT)
    assert info.value.line == 2
    assert info.value.entry == "db/a/b"


def test_a_nested_yaml_key_that_is_not_a_valid_segment_is_rejected() -> None:
    with pytest.raises(FormatError, match="invalid ZooKeeper path") as info:
        load_yaml(b"db:\n  '..': x\n", root=ROOT)
    assert info.value.line == 2
    assert info.value.entry == "db/.."


def test_a_yaml_list_value_is_rejected_naming_the_entry() -> None:
    with pytest.raises(FormatError, match="lists are not supported") as info:
        load_yaml(b"db:\n  hosts:\n    - a\n    - b\n", root=ROOT)
    assert info.value.line == 2
    assert info.value.entry == "db/hosts"


def test_a_yaml_key_that_is_not_a_string_is_rejected() -> None:
    with pytest.raises(FormatError, match="keys must be strings") as info:
        load_yaml(b"a: x\n!!int 5: y\n", root=ROOT)
    assert info.value.line == 2


def test_a_yaml_value_with_a_non_string_tag_is_rejected() -> None:
    with pytest.raises(FormatError, match="value must be a string") as info:
        load_yaml(b"/app/a: !!int 5\n", root=ROOT)
    assert info.value.entry == "/app/a"


def test_an_empty_yaml_document_is_rejected() -> None:
    with pytest.raises(FormatError, match="empty"):
        load_yaml(b"# nothing\n", root=ROOT)


def test_yaml_with_a_control_character_is_rejected_with_its_line() -> None:
    with pytest.raises(FormatError, match="unreadable YAML") as info:
        load_yaml(b"a: x\nb: \x01\n", root=ROOT)
    assert info.value.line == 2


# --- directory trees --------------------------------------------------------------


def test_a_directory_tree_round_trips_awkward_values_exactly(tmp_path: Path) -> None:
    state = awkward_state()
    # Directory trees always describe the root and every ancestor.
    nodes = dict(AWKWARD_VALUES)
    nodes["/app/caf\u00e9"] = b""
    nodes["/app/with space"] = b"dir data \xff"
    # A directory refuses files larger than one request carries; the largest
    # value it accepts round-trips.
    nodes["/app/large"] = ONE_MIB[:MAX_OP_BYTES]
    state = TreeState.of(ROOT, nodes)

    dump_directory(state, tmp_path / "out")
    loaded = load_desired(tmp_path / "out", root=ROOT)

    assert loaded == state
    assert (tmp_path / "out" / "large").read_bytes() == ONE_MIB[:MAX_OP_BYTES]
    assert (tmp_path / "out" / "with space" / ".zkdata").read_bytes() == b"dir data \xff"


def test_a_directory_maps_files_to_leaves_and_zkdata_to_a_parents_own_data(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "tree"
    (tree / "db" / "replicas").mkdir(parents=True)
    (tree / ".zkdata").write_bytes(b"root")
    (tree / "db" / ".zkdata").write_bytes(b"\x00db")
    (tree / "db" / "host").write_bytes(b"db.internal\n")
    (tree / "empty file").write_bytes(b"")

    state = load_directory(tree, root="/svc")

    assert {p: n.data for p, n in state.items()} == {
        "/svc": b"root",
        "/svc/db": b"\x00db",
        "/svc/db/host": b"db.internal\n",
        "/svc/db/replicas": b"",
        "/svc/empty file": b"",
    }


def test_a_file_name_that_is_not_a_valid_znode_name_is_rejected_naming_the_file(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "ok").write_bytes(b"1")
    (tree / "bad\x01name").write_bytes(b"2")

    with pytest.raises(FormatError, match="invalid ZooKeeper path") as info:
        load_directory(tree, root=ROOT)
    assert info.value.entry == "bad\x01name"
    assert info.value.source == str(tree / "bad\x01name")


def test_a_symlink_to_a_directory_is_rejected(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "real").mkdir(parents=True)
    os.symlink(tree / "real", tree / "link")

    with pytest.raises(FormatError, match="symbolic links to directories"):
        load_directory(tree, root=ROOT)


def test_dump_directory_refuses_to_write_into_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "stale").write_bytes(b"")

    with pytest.raises(FileExistsError):
        dump_directory(TreeState.of(ROOT, {"/app/a": b""}), tmp_path)


def test_dump_directory_refuses_a_node_named_like_the_data_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reserved"):
        dump_directory(TreeState.of(ROOT, {"/app/.zkdata": b""}), tmp_path / "out")


# --- load_desired --------------------------------------------------------------------


def small_state() -> TreeState:
    return TreeState.of(ROOT, {"/app": b"", "/app/a b": b"\xff\x00", "/app/t": b"text"})


@pytest.mark.parametrize(
    ("name", "render"),
    [
        ("export.json", lambda s: dump_export(s, tree="app")),
        ("export.data", lambda s: dump_export(s, tree="app")),
        ("backup.json", dump_zkshell_json),
        ("desired.yaml", lambda s: dump_yaml(s).encode()),
        ("desired.yml", lambda s: dump_yaml(s).encode()),
        ("desired.conf", lambda s: dump_yaml(s).encode()),
        (
            "flat.json",
            lambda s: json.dumps(
                {p: {"base64": base64.b64encode(n.data).decode()} for p, n in s.items()}
            ).encode(),
        ),
    ],
)
def test_load_desired_recognises_each_file_format(
    tmp_path: Path, name: str, render: object
) -> None:
    assert callable(render)
    source = write(tmp_path, name, render(small_state()))

    assert load_desired(source, root=ROOT) == small_state()


def test_load_desired_recognises_a_directory(tmp_path: Path) -> None:
    dump_directory(small_state(), tmp_path / "tree")

    assert load_desired(tmp_path / "tree", root=ROOT) == small_state()


def test_load_desired_from_an_export_drops_stat_and_ephemeral_nodes(tmp_path: Path) -> None:
    source = write(tmp_path, "live.json", dump_export(live_state(), tree="app"))

    state = load_desired(source, root=ROOT)

    assert list(state) == ["/app"]
    assert state["/app"] == Znode("/app", b"hello", None, live_state()["/app"].acl)


def test_load_desired_rejects_an_export_outside_the_requested_root(tmp_path: Path) -> None:
    source = write(
        tmp_path, "e.json", dump_export(TreeState.of("/other", {"/other/x": b""}), tree="o")
    )

    with pytest.raises(FormatError, match="outside root '/app'") as info:
        load_desired(source, root=ROOT)
    assert info.value.entry == "/other/x"
    assert info.value.line == 8


def test_load_desired_rejects_a_json_file_claiming_another_format(tmp_path: Path) -> None:
    source = write(tmp_path, "x.json", '{"format": "something-else", "nodes": []}')

    with pytest.raises(FormatError, match="not a zkdrift export"):
        load_desired(source, root=ROOT)


def test_loading_is_all_or_nothing_even_when_only_the_last_entry_is_bad(tmp_path: Path) -> None:
    entries = {f"/app/n{i:03}": "v" for i in range(200)}
    text = json.dumps(entries, indent=1)[:-2] + ',\n "/app/bad/": "x"\n}'
    source = write(tmp_path, "d.json", text)

    with pytest.raises(FormatError) as info:
        load_desired(source, root=ROOT)
    assert info.value.entry == "/app/bad/"
    assert info.value.line == 202


def test_load_desired_rejects_an_invalid_root(tmp_path: Path) -> None:
    source = write(tmp_path, "d.yaml", "/app/a: x\n")

    with pytest.raises(ValueError, match="not absolute"):
        load_desired(source, root="app")


# -- ACLs in YAML ------------------------------------------------------------------------

OPS_ACL = "digest:ops:x3Qm0aSCQ4Yw1bD2sKDuTOG0kcQ=:cdrwa"


def test_yaml_nested_nodes_carry_an_acl_under_the_reserved_key() -> None:
    state = load_yaml(
        b"db:\n"
        b"  _acl: ['" + OPS_ACL.encode() + b"']\n"
        b"  password:\n"
        b"    _value: hunter2\n"
        b"    _acl: ['" + OPS_ACL.encode() + b"', 'world:anyone:r']\n"
        b"  host: db.internal\n",
        root="/app",
    )

    ops = Acl.parse(OPS_ACL)
    assert state["/app/db"].acl == (ops,)
    assert state["/app/db/password"].data == b"hunter2"
    assert set(state["/app/db/password"].acl or ()) == {ops, Acl.parse("world:anyone:r")}
    assert state["/app/db/host"].acl is None


def test_yaml_flat_values_may_be_a_mapping_of_value_and_acl_and_dump_round_trips() -> None:
    source = b"/app/a: plain\n/app/b: {_value: secret, _acl: ['" + OPS_ACL.encode() + b"']}\n"
    state = load_yaml(source, root="/app")

    assert state["/app/a"].acl is None
    assert state["/app/b"].data == b"secret" and state["/app/b"].acl == (Acl.parse(OPS_ACL),)
    assert load_yaml(dump_yaml(state).encode(), root="/app") == state


@pytest.mark.parametrize(
    ("acl", "problem"),
    [("[]", "non-empty list"), ("'world:anyone:r'", "non-empty list"), ("['world']", "scheme:id")],
)
def test_a_malformed_yaml_acl_names_the_entry_and_line(acl: str, problem: str) -> None:
    with pytest.raises(FormatError) as caught:
        load_yaml(f"db:\n  _value: x\n  _acl: {acl}\n".encode(), root="/app", source="d.yaml")
    assert caught.value.line == 3 and caught.value.entry == "db"
    assert problem in str(caught.value)
