"""Desired state: imports, single-path edits, adopt, rollback and export, on real databases."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from sqlalchemy import func, select

from tests.support.db import make_app
from tests.support.zk import create_tree
from zkdrift import desired
from zkdrift.app import App
from zkdrift.errors import InvalidInputError
from zkdrift.formats import dump_directory, dump_export, dump_yaml, dump_zkshell_json
from zkdrift.model import TreeState
from zkdrift.policy import MAX_OP_BYTES
from zkdrift.reconcile import adopt
from zkdrift.snapshot import take_snapshot
from zkdrift.store import desired as desired_store
from zkdrift.store import trees as tree_store
from zkdrift.store.models import Apply, Configuration, DesiredRevision
from zkdrift.trees import TreeSpec, add_tree, update_tree

STATE = {
    "/app": b"",
    "/app/db": b"",
    "/app/db/host": b"db.internal",
    "/app/db/port": b"5432",
    "/app/blob": bytes(range(256)),
    "/app/latin1": "caf\xe9".encode("latin-1"),
    "/app/multi": b"line one\nline two\n",
}


def register(app: App, hosts: str, **kw: object) -> None:
    add_tree(app, TreeSpec(name="app", hosts=hosts, root="/app", **kw), check=False)  # type: ignore[arg-type]


def revision_count(app: App) -> int:
    with app.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(DesiredRevision)) or 0)


def current(app: App) -> dict[str, bytes]:
    return {p: n.data for p, n in desired.export_desired(app, "app").state.nodes.items()}


def write_yaml(tmp_path: Path, text: str, name: str = "desired.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_import_writes_a_revision_with_author_message_and_source(
    app: App, zk_chroot: str, tmp_path: Path
) -> None:
    register(app, zk_chroot)
    source = write_yaml(tmp_path, "db:\n  host: db.internal\n  port: 5432\n")

    result = desired.import_desired(app, "app", source, message="first", author="alice")

    assert result is not None
    assert (result.revision, result.author, result.message, result.source) == (
        1,
        "alice",
        "first",
        "import",
    )
    assert (result.entries, result.added, result.removed, result.modified) == (4, 4, 0, 0)
    assert current(app) == {
        "/app": b"",
        "/app/db": b"",
        "/app/db/host": b"db.internal",
        "/app/db/port": b"5432",
    }


def test_importing_an_unchanged_state_writes_no_revision(
    app: App, zk_chroot: str, tmp_path: Path
) -> None:
    register(app, zk_chroot)
    source = write_yaml(tmp_path, "/app/a: '1'\n")
    desired.import_desired(app, "app", source, message="one")

    again = desired.import_desired(app, "app", source, message="again")

    assert again is None
    assert revision_count(app) == 1


def test_every_import_format_reads_the_same_bytes(app: App, zk_chroot: str, tmp_path: Path) -> None:
    register(app, zk_chroot)
    state = TreeState.of("/app", STATE)
    (tmp_path / "export.json").write_bytes(dump_export(state, tree="app"))
    (tmp_path / "flat.yaml").write_text(dump_yaml(state))
    (tmp_path / "zkshell.json").write_bytes(dump_zkshell_json(state))
    dump_directory(state, tmp_path / "dir")

    first = desired.import_desired(app, "app", tmp_path / "export.json", message="export")
    others = [
        desired.import_desired(app, "app", tmp_path / name, message=name)
        for name in ("flat.yaml", "zkshell.json", "dir")
    ]

    assert first is not None
    assert others == [None, None, None]  # each one equals what is already desired
    assert current(app) == STATE


def test_binary_and_non_utf8_values_round_trip_through_import_and_export(
    app: App, zk_chroot: str, tmp_path: Path
) -> None:
    register(app, zk_chroot)
    (tmp_path / "in.json").write_bytes(dump_export(TreeState.of("/app", STATE), tree="app"))
    desired.import_desired(app, "app", tmp_path / "in.json", message="binary")

    exported = desired.export_desired(app, "app")
    (tmp_path / "out.json").write_bytes(dump_export(exported.state, tree="app"))
    reimport = desired.import_desired(app, "app", tmp_path / "out.json", message="again")

    assert {p: n.data for p, n in exported.state.nodes.items()} == STATE
    assert reimport is None


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.yaml", "db:\n  host: a\n  port: [1\n", r"bad\.yaml:\d+"),
        ("bad.json", '{\n  "/app/a": "1",\n  "/app/b" "2"\n}\n', r"bad\.json:3"),
        ("dup.yaml", "/app/a: '1'\n/app/b: '2'\n/app/a: '3'\n", r"dup\.yaml:3.*'/app/a'"),
        ("dup.json", '{\n"/app/a": "1",\n"/app/a": "2"\n}\n', r"dup\.json:3.*'/app/a'"),
        ("rel.yaml", "/app/a: '1'\napp/b: '2'\n", r"app/b"),
        ("dots.yaml", "/app/a/../b: '1'\n", r"/app/a/\.\./b"),
        ("outside.yaml", "/other/a: '1'\n", r"'/other/a'.*outside"),
    ],
)
def test_bad_input_is_refused_naming_the_entry_and_writes_no_revision(
    app: App, zk_chroot: str, tmp_path: Path, name: str, text: str, expected: str
) -> None:
    register(app, zk_chroot)
    source = write_yaml(tmp_path, text, name)

    with pytest.raises(InvalidInputError, match=expected):
        desired.import_desired(app, "app", source, message="bad")

    assert revision_count(app) == 0


def test_a_path_under_an_excluded_glob_is_refused_naming_the_glob(
    app: App, zk_chroot: str, tmp_path: Path
) -> None:
    register(app, zk_chroot, excludes=("/app/runtime",))
    source = write_yaml(tmp_path, "/app/a: '1'\n/app/runtime/leader: host-1\n")

    with pytest.raises(InvalidInputError, match=r"'/app/runtime/leader'.*'/app/runtime'"):
        desired.import_desired(app, "app", source, message="bad")
    with pytest.raises(InvalidInputError, match="exclude glob"):
        desired.set_value(app, "app", "/app/runtime/x", b"1")

    assert revision_count(app) == 0


def test_a_directory_file_larger_than_one_request_is_refused_unless_the_tree_allows_it(
    app: App, zk_chroot: str, tmp_path: Path
) -> None:
    register(app, zk_chroot)
    tree = tmp_path / "dir"
    tree.mkdir()
    (tree / "blob").write_bytes(b"x" * (MAX_OP_BYTES + 1))

    with pytest.raises(InvalidInputError, match=f"larger than {MAX_OP_BYTES:,} bytes"):
        desired.import_desired(app, "app", tree, message="too big")
    assert revision_count(app) == 0

    # A tree whose servers take larger requests says so in its policy.
    update_tree(app, "app", max_op_bytes=2 * MAX_OP_BYTES)
    desired.import_desired(app, "app", tree, message="allowed")
    assert current(app)["/app/blob"] == b"x" * (MAX_OP_BYTES + 1)


def test_an_unreadable_source_is_a_clear_error(app: App, zk_chroot: str, tmp_path: Path) -> None:
    register(app, zk_chroot)
    with pytest.raises(InvalidInputError, match="cannot read"):
        desired.import_desired(app, "app", tmp_path / "missing.yaml", message="x")


def test_set_and_unset_each_write_one_revision(app: App, zk_chroot: str, tmp_path: Path) -> None:
    register(app, zk_chroot)
    desired.import_desired(app, "app", write_yaml(tmp_path, "/app/a: '1'\n"), message="base")

    set_result = desired.set_value(app, "app", "/app/b", b"\xff\x00two", author="bob")
    same = desired.set_value(app, "app", "/app/b", b"\xff\x00two")
    unset_result = desired.unset_value(app, "app", "/app/a", message="drop a")

    assert set_result is not None and set_result.revision == 2
    assert (set_result.added, set_result.source, set_result.author) == (1, "set", "bob")
    assert same is None
    assert (unset_result.revision, unset_result.removed, unset_result.message) == (3, 1, "drop a")
    assert current(app) == {"/app/b": b"\xff\x00two"}


def test_unset_of_a_path_with_descendants_needs_recursive(
    app: App, zk_chroot: str, tmp_path: Path
) -> None:
    register(app, zk_chroot)
    desired.import_desired(app, "app", write_yaml(tmp_path, "db:\n  host: h\n"), message="m")

    with pytest.raises(InvalidInputError, match="--recursive"):
        desired.unset_value(app, "app", "/app/db")
    with pytest.raises(InvalidInputError, match="not in the desired state"):
        desired.unset_value(app, "app", "/app/nope")
    result = desired.unset_value(app, "app", "/app/db", recursive=True)

    assert result.removed == 2
    assert current(app) == {"/app": b""}


def test_set_refuses_invalid_paths_and_paths_outside_the_root(app: App, zk_chroot: str) -> None:
    register(app, zk_chroot)
    for bad, match in (("app/x", "not absolute"), ("/app//x", "empty segment"), ("/x", "outside")):
        with pytest.raises(InvalidInputError, match=match):
            desired.set_value(app, "app", bad, b"1")
    assert revision_count(app) == 0


def test_include_globs_limit_what_desired_state_may_hold(
    app: App, zk_chroot: str, tmp_path: Path
) -> None:
    register(app, zk_chroot, includes=("/app/config/**",))

    desired.set_value(app, "app", "/app/config/a", b"1")
    with pytest.raises(InvalidInputError, match="include globs"):
        desired.set_value(app, "app", "/app/other", b"1")

    assert current(app) == {"/app/config/a": b"1"}


def test_rollback_writes_a_new_revision_equal_to_the_old_one(
    app: App, zk_chroot: str, tmp_path: Path
) -> None:
    register(app, zk_chroot)
    desired.import_desired(app, "app", write_yaml(tmp_path, "/app/a: '1'\n"), message="v1")
    desired.set_value(app, "app", "/app/a", b"2")
    desired.set_value(app, "app", "/app/b", b"3")

    result = desired.rollback(app, "app", 1, author="carol")
    again = desired.rollback(app, "app", 1)

    assert result is not None
    assert (result.revision, result.source, result.message) == (
        4,
        "rollback",
        "rollback to revision 1",
    )
    assert again is None
    assert current(app) == {"/app/a": b"1"}
    assert {p: n.data for p, n in desired.export_desired(app, "app", revision=3).state.items()} == {
        "/app/a": b"2",
        "/app/b": b"3",
    }
    with pytest.raises(InvalidInputError, match="no desired-state revision 9"):
        desired.rollback(app, "app", 9)


def test_log_lists_revisions_newest_first(app: App, zk_chroot: str, tmp_path: Path) -> None:
    register(app, zk_chroot)
    desired.set_value(app, "app", "/app/a", b"1", message="one", author="a1")
    desired.set_value(app, "app", "/app/a", b"2", message="two", author="a2")

    log = desired.desired_log(app, "app")

    assert [(r.revision, r.message, r.author, r.modified) for r in log] == [
        (2, "two", "a2", 1),
        (1, "one", "a1", 0),
    ]


def test_author_comes_from_the_setting_or_else_the_os_user(
    db_url: str, zk_chroot: str, tmp_path: Path
) -> None:
    configured = make_app(db_url, tmp_path / "home", author="deploy-bot")
    plain = make_app(db_url, tmp_path / "home")
    try:
        register(configured, zk_chroot)
        first = desired.set_value(configured, "app", "/app/a", b"1")
        second = desired.set_value(plain, "app", "/app/a", b"2")
    finally:
        configured.close()
        plain.close()

    assert first is not None and first.author == "deploy-bot"
    assert second is not None and second.author == getpass.getuser()


def test_adopt_takes_managed_live_nodes_as_desired_and_marks_them_applied(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, {"/app/a": b"1", "/app/b": b"\x00\xff", "/app/runtime/x": b"r"})
    zk.create("/app/leader", b"host-1", ephemeral=True)
    register(app, zk_chroot, excludes=("/app/runtime",))

    result = adopt(app, "app", message="baseline", actor="ops")
    again = adopt(app, "app")

    assert result.revision is not None and result.revision.source == "adopt"
    assert current(app) == {"/app": b"", "/app/a": b"1", "/app/b": b"\x00\xff"}
    assert again.revision is None  # desired already equals live
    assert again.applied_revision == result.applied_revision == 1
    with app.db.session() as session:
        tree = tree_store.get_tree(session, "app")
        base = desired_store.applied_state(session, tree)
        audits = list(session.scalars(select(Apply).order_by(Apply.id)))
    assert base is not None and set(base) == {"/app", "/app/a", "/app/b"}
    assert [(a.direction, a.actor, a.outcome) for a in audits] == [
        ("adopt", "ops", "adopted"),
        ("adopt", getpass.getuser(), "no-op"),
    ]


def test_adopting_a_recorded_snapshot_takes_its_values_but_not_as_applied_when_live_moved(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, {"/app/a": b"old"})
    register(app, zk_chroot)
    snap = take_snapshot(app, "app").snapshot_id
    zk.set("/app/a", b"new")

    result = adopt(app, "app", snapshot_id=snap)

    assert result.snapshot_id == snap
    assert current(app)["/app/a"] == b"old"
    assert result.applied_revision is None  # live holds "new": an apply has work to do
    with app.db.session() as session:
        assert tree_store.get_tree(session, "app").applied_revision_id is None


def test_adopting_a_snapshot_that_still_equals_live_marks_it_applied(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, {"/app/a": b"same"})
    register(app, zk_chroot)
    snap = take_snapshot(app, "app").snapshot_id

    result = adopt(app, "app", snapshot_id=snap)

    assert result.revision is not None
    assert result.applied_revision == result.revision.revision


def test_a_failed_revision_write_leaves_nothing_behind(
    app: App, zk_chroot: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(app, zk_chroot)

    def explode(*_a: object, **_k: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr("zkdrift.store.temporal.store_blobs", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        desired.import_desired(app, "app", write_yaml(tmp_path, "/app/a: '1'\n"), message="m")

    assert revision_count(app) == 0
    with app.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Configuration)) == 0


def test_export_of_a_tree_without_desired_state_says_how_to_make_one(
    app: App, zk_chroot: str
) -> None:
    register(app, zk_chroot)
    with pytest.raises(InvalidInputError, match="desired import"):
        desired.export_desired(app, "app")
