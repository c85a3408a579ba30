"""Drift and plans streamed out of the store give exactly what the whole-tree
functions give on the same recorded trees.

Each case records a live snapshot and desired revisions straight into the store
(no ZooKeeper: this is the store-to-answer half), then compares the streaming use
cases (:func:`zkdrift.drift.check_drift`, :func:`compute_recorded`) with the pure
functions fed whole :class:`TreeState`s, as the use cases did before they streamed.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from sqlalchemy import event

from tests.support.db import make_app
from zkdrift.app import App
from zkdrift.diff import DriftItem, classify, diff, without_required_parents
from zkdrift.drift import check_against_snapshot, check_drift, compare_snapshots
from zkdrift.model import Acl, Stat, TreeState, Znode, digest
from zkdrift.plan import check_guards
from zkdrift.policy import TreePolicy
from zkdrift.reconcile.planning import (
    compute,
    compute_recorded,
    current_revision,
    guards,
    live_values,
    recorded_guards,
)
from zkdrift.scope import Scope
from zkdrift.store import bulk, compare, keysets
from zkdrift.store import desired as desired_store
from zkdrift.store import snapshots as snapshot_store
from zkdrift.store import trees as tree_store
from zkdrift.store.models import Tree

OPEN = (Acl(31, "world", "anyone"),)
READ_ONLY = (Acl(1, "world", "anyone"), Acl(31, "digest", "admin:x"))
T0 = dt.datetime(2026, 1, 1)


def stat(version: int = 1, *, children: int = 0, ephemeral: int = 0, aversion: int = 0) -> Stat:
    return Stat(
        version=version, aversion=aversion, num_children=children, ephemeral_owner=ephemeral
    )


def live_nodes(acl: bool) -> dict[str, Znode]:
    """A live tree with every kind of node a plan or a drift check treats apart."""
    a = OPEN if acl else None
    nodes = [
        Znode("/app", b"", stat(children=9), a),
        Znode("/app/same", b"same", stat(3), a),
        Znode("/app/changed", b"old", stat(4), a),
        Znode("/app/empty-now", b"was full", stat(2), a),
        Znode("/app/binary", b"\x00\xff\xfe", stat(5), a),
        Znode("/app/utf8", "vérité".encode(), stat(1), a),
        Znode("/app/gone", b"live only", stat(1, children=2), a),
        Znode("/app/gone/child", b"c", stat(1), a),
        Znode("/app/gone/child2", b"", stat(1), a),
        # A live-only parent of a desired node: needed, never deleted.
        Znode("/app/parent", b"p", stat(1, children=1), a),
        Znode("/app/parent/kid", b"k", stat(1), a),
        # A live-only node whose stat counts a child zkdrift did not read.
        Znode("/app/unseen", b"u", stat(1, children=2), a),
        Znode("/app/unseen/read", b"r", stat(1), a),
        # Ephemeral: one desired with other data, one live only under a live-only parent.
        Znode("/app/session", b"eph", stat(1, ephemeral=77), a),
        Znode("/app/brokers", b"", stat(1, children=1), a),
        Znode("/app/brokers/1", b"host", stat(1, ephemeral=78), a),
        Znode("/app/excluded", b"x", stat(1, children=1), a),
        Znode("/app/excluded/deep", b"live", stat(1), a),
        Znode("/app/secrets", b"", stat(1, children=1), a),
        Znode("/app/secrets/password", b"hunter2", stat(2), a),
        Znode("/app/acl", b"a", stat(1, aversion=3), READ_ONLY if acl else None),
        Znode("/app/unread", b"u", stat(1), None),
        Znode("/app/deep", b"", stat(1, children=1), a),
        Znode("/app/deep/a", b"", stat(1, children=1), a),
        Znode("/app/deep/a/b", b"", stat(1), a),
    ]
    return {n.path: n for n in nodes}


def desired_nodes(acl: bool) -> dict[str, Znode]:
    a = OPEN if acl else None
    nodes = [
        Znode("/app", b"", None, a),
        Znode("/app/same", b"same", None, a),
        Znode("/app/changed", b"new", None, a),
        Znode("/app/empty-now", b"", None, a),
        Znode("/app/binary", b"\x00\xff\xff", None, a),
        Znode("/app/utf8", "vérité".encode(), None, a),
        Znode("/app/parent/kid", b"k", None, a),
        Znode("/app/parent/kid/new", b"under an existing one", None, a),
        Znode("/app/session", b"other", None, a),
        Znode("/app/secrets/password", b"s3cret", None, a),
        Znode("/app/secrets/token", b"new secret", None, None),
        Znode("/app/acl", b"a", None, OPEN if acl else None),
        Znode("/app/unread", b"u", None, OPEN),
        Znode("/app/missing/parents/leaf", b"needs parents", None, a),
        Znode("/app/seq-0000000012", b"looks sequential", None, a),
        Znode("/app/deep/a/b", b"", None, a),
        Znode("/app/deep/a/b/c", b"", None, a),
    ]
    return {n.path: n for n in nodes}


@dataclass
class Case:
    name: str
    excludes: list[str] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)
    capture_acl: bool = False
    default_acl: bool = False
    applied_first: bool = False  # a first revision applied, then the desired one
    live_missing: bool = False


CASES = [
    # No scope rule and no ACL: on SQLite the trees are compared as arrays of keys.
    Case("whole"),
    Case("plain", excludes=["/app/excluded"]),
    Case("acl", excludes=["/app/excluded"], capture_acl=True),
    Case("default-acl", capture_acl=True, default_acl=True),
    Case("includes", includes=["/app/*", "/app/parent/**"]),
    Case("applied", excludes=["/app/excluded"], applied_first=True),
    Case("no-live", live_missing=True),
]


def record(app: App, case: Case) -> tuple[Tree, int | None]:
    acl = case.capture_acl
    policy = TreePolicy(default_acl=("world:anyone:cdrwa",)) if case.default_acl else TreePolicy()
    with app.db.session() as session:
        tree = tree_store.add_tree(
            session,
            name=case.name,
            hosts="127.0.0.1:1",
            root="/app",
            excludes=case.excludes,
            includes=case.includes,
            capture_acl=case.capture_acl,
            options=policy.to_options(),
        )
        if case.applied_first:
            first = dict(live_nodes(acl))
            first = {p: Znode(p, n.data, None, n.acl) for p, n in first.items() if not n.ephemeral}
            first["/app/changed"] = Znode("/app/changed", b"older", None, first["/app/acl"].acl)
            written = desired_store.write_revision(
                session, tree, TreeState("/app", first), author="t", message="", source="set"
            )
            assert written is not None
            desired_store.mark_applied(session, tree, written[0])
        desired_store.write_revision(
            session,
            tree,
            TreeState("/app", desired_nodes(acl)),
            author="t",
            message="",
            source="import",
        )
        if case.live_missing:
            return tree, None
        result = snapshot_store.write_snapshot(
            session, tree, TreeState("/app", live_nodes(acl)), started_at=T0, read_seconds=0.0
        )
        return tree, result.snapshot_id


def whole_trees(
    app: App, tree: Tree, snapshot_id: int | None
) -> tuple[TreeState, TreeState | None, TreeState | None]:
    with app.db.session() as session:
        tree = tree_store.get_tree(session, tree.name)
        desired = desired_store.load_desired(session, tree)
        base = desired_store.applied_state(session, tree)
        if snapshot_id is None:
            return desired, base, None
        snap = snapshot_store.get_snapshot(session, tree, snapshot_id)
        return desired, base, snapshot_store.load_snapshot(session, tree, snap)


def whole_drift(
    scope: Scope, tree: Tree, desired: TreeState, base: TreeState | None, live: TreeState
) -> list[DriftItem]:
    wanted = scope.managed(desired)
    return without_required_parents(
        classify(
            None if base is None else scope.managed(base),
            wanted,
            scope.managed(live),
            compare_acl=tree.capture_acl,
        ),
        wanted,
    )


@pytest.fixture(params=["collected", "streamed"])
def ancestors_by(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which parents exist live, or are needed by desired, comes from the ancestors
    collected while the trees stream, or (past the limit) from a stream of its own."""
    if request.param == "streamed":
        monkeypatch.setattr(compare, "ANCESTOR_LIMIT", 1)
    return str(request.param)


@pytest.fixture(params=["index", "sorted scan"])
def rows_by(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """On SQLite the trees stream in path digest order through the path index, or
    from a read of the whole table sorted (when the tree is most of it)."""
    monkeypatch.setattr(bulk, "SCAN_SHARE", 2.0 if request.param == "index" else 0.0)
    return str(request.param)


@pytest.fixture(params=["arrays", "rows"])
def compared_by(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, app: App
) -> Iterator[str]:
    """On SQLite, trees no scope rule narrows are compared as arrays of keys; the
    same comparison row by row (as every other store does it) finds the same."""
    arrays: list[object] = []
    if request.param == "rows":
        monkeypatch.setattr(keysets, "key_arrays", lambda *_args: None)
    else:
        original = keysets.key_arrays
        monkeypatch.setattr(
            keysets, "key_arrays", lambda *args: arrays.append(original(*args)) or arrays[-1]
        )
    yield str(request.param)
    case = request.node.callspec.params["case"]
    sqlite = app.db.engine.dialect.name == "sqlite"
    arrays_used = any(keys is not None for keys in arrays)
    narrowed = bool(case.excludes or case.includes or case.capture_acl)
    assert arrays_used == (request.param == "arrays" and not narrowed and sqlite)


@pytest.mark.parametrize("case", [c for c in CASES if not c.live_missing], ids=lambda c: c.name)
def test_a_streamed_drift_check_finds_what_the_whole_trees_give(
    app: App, case: Case, ancestors_by: str, rows_by: str, compared_by: str
) -> None:
    tree, snapshot_id = record(app, case)
    desired, base, live = whole_trees(app, tree, snapshot_id)
    assert live is not None

    report = check_drift(app, case.name, snapshot_id=snapshot_id)

    expected = whole_drift(app.scope(tree), tree, desired, base, live)
    assert list(report.items) == expected
    assert report.ephemeral_ignored == 2
    assert {i.path for i in expected} >= {"/app/changed", "/app/gone", "/app/session"}


def test_streamed_snapshot_comparisons_find_what_the_whole_trees_give(app: App) -> None:
    case = Case("snaps", excludes=["/app/excluded"], capture_acl=True)
    tree, first = record(app, case)
    assert first is not None
    later = {
        p: Znode(p, n.data + b"!", n.stat, n.acl) if i % 3 == 0 else n
        for i, (p, n) in enumerate(live_nodes(True).items())
        if i % 5
    }
    later["/app/brand-new"] = Znode("/app/brand-new", b"", stat(), OPEN)
    with app.db.session() as session:
        second = snapshot_store.write_snapshot(
            session,
            tree_store.get_tree(session, case.name),
            TreeState("/app", later),
            started_at=T0,
            read_seconds=0.0,
        ).snapshot_id
    scope = app.scope(tree)
    _d, _b, live = whole_trees(app, tree, second)
    _d, _b, reference = whole_trees(app, tree, first)
    assert live is not None and reference is not None

    assert list(compare_snapshots(app, case.name, first, second).changes) == diff(
        scope.managed(reference), scope.managed(live), compare_acl=True
    )
    report = check_against_snapshot(app, case.name, first, snapshot_id=second)
    assert list(report.items) == classify(
        None, scope.managed(reference), scope.managed(live), compare_acl=True
    )


@pytest.mark.parametrize("prune", [False, True])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_streamed_plan_is_the_plan_of_the_whole_trees(
    app: App, case: Case, prune: bool, ancestors_by: str, compared_by: str
) -> None:
    tree, snapshot_id = record(app, case)
    desired, _base, live = whole_trees(app, tree, snapshot_id)

    plan, inputs = compute_recorded(
        app, tree, current_revision(app, tree), snapshot_id, prune=prune
    )

    expected = compute(app, tree, desired, live, prune=prune)
    assert plan == expected
    assert recorded_guards(app, tree, plan, inputs, force=False) == guards(
        app, tree, expected, desired, live, force=False
    )
    assert live_values(plan, inputs.live) == live_values(expected, live)
    assert plan.ops


def test_the_delete_guard_counts_the_whole_live_tree(app: App) -> None:
    """Counts come from the streams, not from the differing paths the plan holds."""
    tree, snapshot_id = record(app, Case("counted", excludes=["/app/excluded"]))
    desired, _base, live = whole_trees(app, tree, snapshot_id)
    plan, inputs = compute_recorded(app, tree, current_revision(app, tree), snapshot_id, prune=True)
    scope = app.scope(tree)
    assert live is not None

    for fraction in (0.0, 0.1, 0.3, 1.0):
        streamed = check_guards(
            plan,
            inputs.desired,
            inputs.live,
            root="/app",
            max_delete_fraction=fraction,
            counts=inputs.counts,
        )
        whole = check_guards(
            plan,
            scope.managed(desired),
            scope.plan_view(live),
            root="/app",
            max_delete_fraction=fraction,
        )
        assert streamed == whole


def test_a_streamed_export_is_byte_for_byte_the_whole_export(app: App) -> None:
    """Paths that sort apart only by a trailing space, a space before a slash, accents,
    or past their first 1,024 bytes come out in code-point order on every database."""
    long = "/app/" + "l" * 1100
    nodes = dict(live_nodes(True))
    for path, data in (
        ("/app/a", b"1"),
        ("/app/a ", b"trailing space"),
        ("/app/a b", b""),
        ("/app/a/b", b"\xff"),
        ("/app/\u00e9t\u00e9", "\u00e9".encode()),
        ("/app/\U0001f600", b"emoji"),
        (long + "/b", b"long b"),
        (long + "/a", b"long a"),
    ):
        parent_stat = stat()
        nodes[path] = Znode(path, data, parent_stat, OPEN)
    nodes[long] = Znode(long, b"", stat(), OPEN)
    from zkdrift.formats import dump_export
    from zkdrift.snapshot import export_snapshot, load_snapshot

    with app.db.session() as session:
        tree = tree_store.add_tree(session, name="exp", hosts="127.0.0.1:1", root="/app")
        snapshot_id = snapshot_store.write_snapshot(
            session, tree, TreeState("/app", nodes), started_at=T0, read_seconds=0.0
        ).snapshot_id
    loaded = load_snapshot(app, "exp", snapshot_id)

    with export_snapshot(app, "exp", snapshot_id) as (info, pieces):
        streamed = b"".join(pieces)

    whole = dump_export(loaded.state, tree="exp", snapshot_id=snapshot_id, taken_at=loaded.taken_at)
    assert streamed == whole
    assert info.nodes == len(nodes)


def import_tree(app: App, name: str, excludes: tuple[str, ...] = ()) -> None:
    with app.db.session() as session:
        tree = tree_store.add_tree(
            session, name=name, hosts="127.0.0.1:1", root="/app", excludes=list(excludes)
        )
        desired_store.write_revision(
            session,
            tree,
            TreeState("/app", desired_nodes(True)),
            author="t",
            message="",
            source="set",
        )


def exported(tmp_path: Path, indent: int | None = None) -> Path:
    from zkdrift.formats import dump_export

    nodes = dict(live_nodes(True))
    nodes["/app/empty"] = Znode("/app/empty", b"", stat(), None)
    payload = dump_export(TreeState("/app", nodes), tree="app")
    if indent is not None:
        payload = json.dumps(json.loads(payload), indent=indent).encode()
    target = tmp_path / "export.json"
    target.write_bytes(payload)
    return target


@pytest.mark.parametrize("indent", [None, 2], ids=["as-written", "reindented"])
def test_an_imported_export_writes_the_revision_a_whole_read_writes(
    app: App, tmp_path: Path, indent: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export as zkdrift writes it streams (the whole-file reader is never called);
    one laid out otherwise is read whole. Both write the same revision."""
    import zkdrift.desired
    from zkdrift.desired import import_desired
    from zkdrift.formats import load_desired

    source = exported(tmp_path, indent)
    import_tree(app, "streamed")
    import_tree(app, "whole")
    if indent is None:
        monkeypatch.setattr(zkdrift.desired, "load_desired", None)

    result = import_desired(app, "streamed", source, message="m", author="a")
    with app.db.session() as session:
        whole = tree_store.get_tree(session, "whole")
        written = desired_store.write_revision(
            session,
            whole,
            load_desired(source, root="/app"),
            author="a",
            message="m",
            source="import",
        )
    assert result is not None and written is not None
    revision, change = written
    assert (result.revision, result.entries, result.added, result.removed, result.modified) == (
        revision.number,
        revision.entry_count,
        change.added,
        change.removed,
        change.modified,
    )
    with app.db.session() as session:
        streamed_state = desired_store.load_desired(
            session, tree_store.get_tree(session, "streamed")
        )
        whole_state = desired_store.load_desired(session, tree_store.get_tree(session, "whole"))
    assert streamed_state.nodes == whole_state.nodes
    assert "/app/session" not in streamed_state  # ephemeral: never desired
    assert import_desired(app, "streamed", source, message="again") is None


def test_a_broken_or_unmanaged_export_is_refused_as_a_whole_read_refuses_it(
    app: App, tmp_path: Path
) -> None:
    from zkdrift.desired import import_desired
    from zkdrift.errors import InvalidInputError
    from zkdrift.formats import FormatError, load_desired

    source = exported(tmp_path)
    import_tree(app, "broken")
    import_tree(app, "excluding", excludes=("/app/gone",))
    lines = source.read_bytes().split(b"\n")
    lines[12] = lines[12].replace(b'"sha256": "', b'"sha256": "0', 1)
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"\n".join(lines))

    with pytest.raises(FormatError) as whole:
        load_desired(broken, root="/app")
    with pytest.raises(FormatError) as streamed:
        import_desired(app, "broken", broken, message="m")
    assert str(streamed.value) == str(whole.value)
    assert whole.value.line == 13
    with pytest.raises(InvalidInputError, match="exclude glob '/app/gone'"):
        import_desired(app, "excluding", source, message="m")
    with app.db.session() as session:
        for name in ("broken", "excluding"):
            latest = desired_store.latest_revision(session, tree_store.get_tree(session, name))
            assert latest is not None and latest.number == 1


def test_adopting_all_of_live_streamed_writes_what_adopting_every_path_writes(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    """A plain adopt streams the recorded snapshot into the revision; ``--paths ROOT``
    still goes the whole-tree way. Same revision, same changes, both applied."""
    from kazoo.security import make_acl

    from tests.support.zk import create_tree
    from zkdrift.reconcile import adopt
    from zkdrift.trees import TreeSpec, add_tree

    create_tree(
        zk,
        {
            "/t/a": b"1",
            "/t/bin": b"\x00\xff\xfe",
            "/t/empty": b"",
            "/t/sub/deep": "vérité".encode(),
            "/t/runtime/x": b"r",
            "/t/secrets/password": b"hunter2",
        },
    )
    zk.create("/t/leader", b"host-1", ephemeral=True)
    zk.set_acls("/t/a", [make_acl("world", "anyone", read=True, write=True)])
    results = []
    for name in ("streamed", "whole"):
        add_tree(
            app,
            TreeSpec(
                name=name,
                hosts=zk_chroot,
                root="/t",
                excludes=("/t/runtime",),
                capture_acl=True,
            ),
            check=False,
        )
        with app.db.session() as session:
            tree = tree_store.get_tree(session, name)
            desired_store.write_revision(
                session,
                tree,
                TreeState(
                    "/t",
                    {
                        "/t/a": Znode("/t/a", b"0"),
                        "/t/bin": Znode(
                            "/t/bin", b"\x00\xff\xfe", None, (Acl(1, "world", "anyone"),)
                        ),
                        "/t/old": Znode("/t/old", b"o"),
                    },
                ),
                author="t",
                message="",
                source="set",
            )
        results.append(adopt(app, name, paths=() if name == "streamed" else ("/t",)))

    streamed, whole = results
    assert (streamed.added, streamed.removed, streamed.modified, streamed.paths) == (
        whole.added,
        whole.removed,
        whole.modified,
        whole.paths,
    )
    assert streamed.applied_revision == whole.applied_revision == 2
    with app.db.session() as session:
        states = [
            desired_store.load_desired(session, tree_store.get_tree(session, name)).nodes
            for name in ("streamed", "whole")
        ]
    assert states[0] == states[1]
    assert "/t/leader" not in states[0] and "/t/runtime/x" not in states[0]
    assert states[0]["/t/a"].acl == (Acl(3, "world", "anyone"),)
    # The audits agree op for op: kinds, paths and digests (keyed for the secret).
    from zkdrift.store import audit as audit_store

    with app.db.session() as session:
        audits = [
            sorted(audit_store.entry_ops(session, r.apply_id), key=lambda op: (op.path, op.kind))
            for r in results
        ]
    assert audits[0] == audits[1]
    kinds = {(op.path, op.kind) for op in audits[0]}
    assert {("/t/a", "data_changed"), ("/t/bin", "acl_changed"), ("/t/old", "removed")} <= kinds
    assert ("/t/bin", "data_changed") not in kinds
    assert ("/t/secrets/password", "added") in kinds
    secret = next(op for op in audits[0] if op.path == "/t/secrets/password")
    assert secret.after_digest != digest(b"hunter2")


def test_a_streamed_desired_export_is_byte_for_byte_the_whole_export(app: App) -> None:
    from zkdrift.desired import export_desired, export_desired_json
    from zkdrift.formats import dump_export

    import_tree(app, "desired-out")
    with app.db.session() as session:
        tree = tree_store.get_tree(session, "desired-out")
        nodes = dict(desired_nodes(True))
        nodes["/app/a "] = Znode("/app/a ", b"trailing", None, None)
        nodes["/app/a"] = Znode("/app/a", b"\xff\x00", None, OPEN)
        desired_store.write_revision(
            session, tree, TreeState("/app", nodes), author="t", message="", source="set"
        )

    for revision in (1, 2):
        with export_desired_json(app, "desired-out", revision=revision) as (info, pieces):
            streamed = b"".join(pieces)
        whole = export_desired(app, "desired-out", revision=revision)
        assert streamed == dump_export(whole.state, tree="desired-out")
        assert (info.revision, info.entries) == (revision, len(whole.state))


def test_lookups_by_path_find_rows_through_the_path_digest(sqlite_url: str, tmp_path: Path) -> None:
    """Loading the differing nodes seeks them by path digest; a range on the validity
    columns would read every row of the tree for each chunk of paths."""
    app = make_app(sqlite_url, tmp_path / "home")
    try:
        tree, snapshot_id = record(app, CASES[0])
        assert snapshot_id is not None
        lookups: list[tuple[str, Any]] = []

        def seen(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
            if " IN (" in statement:
                lookups.append((statement, params))

        with app.db.session() as session:
            engine = session.get_bind()
            event.listen(engine, "before_cursor_execute", seen)
            try:
                nodes = snapshot_store.load_nodes(session, tree, snapshot_id, ["/app/same"])
                revision = desired_store.latest_revision(session, tree)
                assert revision is not None
                wanted = desired_store.load_desired_nodes(
                    session, tree, revision.id, ["/app/same", "/nowhere"]
                )
            finally:
                event.remove(engine, "before_cursor_execute", seen)
            assert list(nodes) == ["/app/same"] and list(wanted) == ["/app/same"]
            plans = [
                " ".join(
                    str(row[3])
                    for row in session.connection().exec_driver_sql(
                        f"EXPLAIN QUERY PLAN {statement}", params
                    )
                )
                for statement, params in lookups
                if "node_states" in statement or "configurations" in statement
            ]
        assert len(plans) == 2
        for plan in plans:
            assert "path_digest=?" in plan, plan
    finally:
        app.close()


def test_sqlite_sorts_a_read_of_the_table_only_for_a_tree_that_is_a_large_part_of_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Streamed in path digest order, a small tree among large ones follows its index;
    a tree holding at least SCAN_SHARE of the rows is read whole and sorted, and
    both give the same rows in the same order."""
    app = make_app(sqlite_url, tmp_path / "home")
    try:
        small, small_snapshot = record(app, CASES[0])
        big_case = Case("big")
        big, _ = record(app, big_case)
        assert small_snapshot is not None
        with app.db.session() as session:
            for i in range(40):
                big_tree = tree_store.get_tree(session, big.name)
                nodes = {f"/app/n{j}": Znode(f"/app/n{j}", f"{i}".encode()) for j in range(20)}
                snapshot_store.write_snapshot(
                    session, big_tree, TreeState("/app", nodes), started_at=T0, read_seconds=0.0
                )
        statements: list[str] = []
        with app.db.session() as session:
            tree = tree_store.get_tree(session, small.name)
            node_states = snapshot_store.NodeState.__table__
            driver = session.connection().connection.driver_connection
            driver.set_trace_callback(statements.append)  # type: ignore[union-attr]
            try:
                assert not bulk.scan_beats_index(session, node_states, tree.id)
                assert bulk.scan_beats_index(
                    session, node_states, tree_store.get_tree(session, big.name).id
                )
                by_index = list(snapshot_store.iter_node_keys(session, tree, small_snapshot))
                with pytest.MonkeyPatch.context() as m:
                    m.setattr(bulk, "SCAN_SHARE", 0.0)
                    by_scan = list(snapshot_store.iter_node_keys(session, tree, small_snapshot))
            finally:
                driver.set_trace_callback(None)  # type: ignore[union-attr]
        streams = [s for s in statements if "ORDER BY node_states.path_digest" in s]
        assert ["NOT INDEXED" in s for s in streams] == [False, True]
        assert by_scan == by_index
        assert [key[0] for key in by_index] == sorted(key[0] for key in by_index)
        assert len(by_index) == len(live_nodes(False))
    finally:
        app.close()


def test_an_adopt_of_many_changes_audits_every_one_a_chunk_at_a_time(
    app: App, zk: KazooClient, zk_chroot: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The changes of a streamed adopt are worked out and audited chunk by chunk; its
    result names the first PATHS_SHOWN changed paths in path order and counts them all."""
    from tests.support.zk import create_tree
    from zkdrift.store import audit as audit_store
    from zkdrift.trees import TreeSpec, add_tree

    # The package exports the function under the module's name.
    adopt_module = importlib.import_module("zkdrift.reconcile.adopt")
    monkeypatch.setattr(adopt_module, "CHANGES_CHUNK", 3)
    monkeypatch.setattr(adopt_module, "PATHS_SHOWN", 4)
    create_tree(zk, {f"/m/k{i:02d}": f"v{i}".encode() for i in range(12)})
    add_tree(app, TreeSpec(name="many", hosts=zk_chroot, root="/m"), check=False)
    with app.db.session() as session:
        tree = tree_store.get_tree(session, "many")
        old = {f"/m/k{i:02d}": Znode(f"/m/k{i:02d}", b"old") for i in range(0, 12, 2)}
        old["/m/gone"] = Znode("/m/gone", b"g")
        desired_store.write_revision(
            session, tree, TreeState("/m", old), author="t", message="", source="set"
        )

    result = adopt_module.adopt(app, "many")

    # /m and the six odd keys are added, the six even keys changed, /m/gone removed
    changed = sorted({"/m", "/m/gone", *(f"/m/k{i:02d}" for i in range(12))})
    assert (result.added, result.removed, result.modified) == (7, 1, 6)
    assert result.paths_total == len(changed) == 14
    assert result.paths == tuple(changed[:4])
    assert result.applied_revision == 2
    with app.db.session() as session:
        tree = tree_store.get_tree(session, "many")
        entry = audit_store.get_entry(session, tree, result.apply_id)
        ops = audit_store.entry_ops(session, result.apply_id)
        desired = desired_store.load_desired(session, tree).nodes
    assert entry is not None and (entry.ops_total, entry.ops_applied) == (14, 14)
    assert sorted(op.path for op in ops) == changed
    assert {op.outcome for op in ops} == {"adopted"}
    assert {p: n.data for p, n in desired.items()} == {
        "/m": b"",
        **{f"/m/k{i:02d}": f"v{i}".encode() for i in range(12)},
    }
