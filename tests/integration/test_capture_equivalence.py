"""The streaming capture records exactly what the live tree held, node for node, as the
whole-tree path (``read_tree`` then ``record_snapshot``) does: additions, removals and
modifications counted alike, ACLs, ephemeral owners, excludes, and values byte for
byte (empty, not UTF-8, 1 MB), whether the digests are worked out in the capture's
process or by a digest worker. Checked against kazoo's own per-node reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.security import ACL, Id, make_digest_acl

from tests.support.db import make_app
from tests.support.zk import create_tree
from zkdrift.app import App
from zkdrift.model import Acl, Stat, TreeState, Znode
from zkdrift.snapshot import load_snapshot, record_snapshot, take_snapshot
from zkdrift.store import snapshots
from zkdrift.store import trees as tree_store
from zkdrift.store.digests import DigestWorker
from zkdrift.store.snapshots import _CaptureWrite
from zkdrift.trees import TreeSpec, add_tree
from zkdrift.zk.client import session
from zkdrift.zk.reader import read_tree

MB = b"\x00\xff" * 500_000
TREE = {
    "/eq": b"",
    "/eq/empty": b"",
    "/eq/binary": bytes(range(256)) * 3,
    "/eq/latin1": "café".encode("latin-1"),
    "/eq/big": MB,
    "/eq/svc": b'{"a": 1}',
    "/eq/svc/k1": b"one",
    "/eq/svc/k2": b"two",
    "/eq/svc/deep": b"",
    "/eq/svc/deep/x": b"x",
    "/eq/skip": b"excluded",
    "/eq/skip/child": b"excluded too",
}
EXCLUDES = ("/eq/skip",)


@pytest.fixture(autouse=True, params=["digested here", "digest worker"])
def workers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every capture here twice: digested in the capture's own process, and (past
    DIGEST_WORKER_AFTER nodes, here from the first batch) by a digest worker. The
    pids of the workers started."""
    started: list[int] = []
    request.node.digest_mode = request.param
    if request.param == "digest worker":
        monkeypatch.setattr(snapshots, "DIGEST_WORKER_AFTER", 0)

        class Counted(DigestWorker):
            def __init__(self) -> None:
                super().__init__()
                started.append(self.process.pid)

        monkeypatch.setattr(snapshots, "DigestWorker", Counted)
    return started


def reference(zk: KazooClient, root: str, *, acl: bool) -> TreeState:
    """The live tree read node by node with kazoo's own calls (excludes applied)."""
    nodes: dict[str, Znode] = {}
    todo = [root]
    while todo:
        path = todo.pop()
        if path in EXCLUDES:
            continue
        data, s = zk.get(path)
        acls = None
        if acl:
            raw, _ = zk.get_acls(path)
            acls = tuple(sorted(Acl(a.perms, a.id.scheme, a.id.id) for a in raw))
        stat = Stat(
            version=s.version,
            cversion=s.cversion,
            aversion=s.aversion,
            czxid=s.czxid,
            mzxid=s.mzxid,
            pzxid=s.pzxid,
            ctime=s.ctime,
            mtime=s.mtime,
            ephemeral_owner=s.ephemeralOwner,
            num_children=s.numChildren,
            data_length=s.dataLength,
        )
        nodes[path] = Znode(path, data or b"", stat, acls)
        todo.extend(f"{path}/{c}" for c in zk.get_children(path))
    return TreeState(root, dict(sorted(nodes.items())))


def recorded(app: App, name: str, snapshot_id: int | None = None) -> TreeState:
    state = load_snapshot(app, name, snapshot_id).state
    return TreeState(state.root, dict(state.nodes))


def whole_tree_snapshot(app: App, name: str) -> object:
    """The capture as it was before it streamed: the whole tree in memory, then written."""
    with app.db.session() as s:
        tree = tree_store.get_tree(s, name)
    with session(app.target(tree)) as client:
        state = read_tree(client, tree.root, excludes=tree.excludes, with_acl=tree.capture_acl)
    return record_snapshot(app, tree, state)


def counts(result: object) -> tuple[int, int, int, int, int]:
    r = result
    return (r.node_count, r.added, r.removed, r.modified, r.ephemeral)  # type: ignore[attr-defined]


def test_streamed_and_whole_tree_captures_record_the_same_history(
    app: App, zk: KazooClient, zk_chroot: str, tmp_path: Path
) -> None:
    create_tree(zk, TREE)
    zk.create("/eq/svc/leader", b"me", ephemeral=True)
    zk.set_acls(
        "/eq/svc/k2",
        [make_digest_acl("ops", "secret", all=True), ACL(1, Id("world", "anyone"))],
    )
    other = make_app(str(app.settings.database_url.get_secret_value()), tmp_path / "other")
    try:
        for target, name in ((app, "streamed"), (other, "whole")):
            add_tree(
                target,
                TreeSpec(
                    name=name, hosts=zk_chroot, root="/eq", excludes=EXCLUDES, capture_acl=True
                ),
            )
        steps = []
        first = (take_snapshot(app, "streamed"), whole_tree_snapshot(other, "whole"))
        live_first = reference(zk, "/eq", acl=True)
        steps.append(first)

        # A value changed, one rewritten with the same bytes, a subtree removed, a node
        # added, an ACL changed, a parent whose children changed (a stat-only change).
        zk.set("/eq/svc/k1", b"ONE")
        zk.set("/eq/binary", bytes(range(256)) * 3)
        zk.delete("/eq/svc/deep", recursive=True)
        zk.create("/eq/svc/k3", b"")
        zk.set_acls("/eq/latin1", [ACL(31, Id("world", "anyone")), ACL(1, Id("ip", "10.0.0.1"))])
        second = (take_snapshot(app, "streamed"), whole_tree_snapshot(other, "whole"))
        live_second = reference(zk, "/eq", acl=True)
        unchanged = (take_snapshot(app, "streamed"), whole_tree_snapshot(other, "whole"))

        assert counts(first[0]) == counts(first[1]) == (len(TREE) - 2 + 1, 11, 0, 0, 1)
        # modified: k1 (value), latin1 (ACL); /eq/binary's new version and /eq/svc's
        # new children are stat changes, recorded but not modifications.
        assert counts(second[0]) == counts(second[1]) == (10, 1, 2, 2, 1)
        assert counts(unchanged[0]) == counts(unchanged[1]) == (10, 0, 0, 0, 1)
        for name, target, results in (("streamed", app, 0), ("whole", other, 1)):
            assert recorded(target, name, first[results].snapshot_id) == live_first  # type: ignore[attr-defined]
            assert recorded(target, name, second[results].snapshot_id) == live_second  # type: ignore[attr-defined]
            assert recorded(target, name) == live_second
        state = recorded(app, "streamed")
        assert state["/eq/big"].data == MB
        assert state["/eq/empty"].data == b""
        assert state["/eq/svc/leader"].ephemeral
        assert "/eq/skip" not in state and "/eq/skip/child" not in state
        assert state["/eq/svc/k2"].acl is not None and len(state["/eq/svc/k2"].acl) == 2
    finally:
        other.close()


def test_a_capture_without_acls_records_none_and_finds_nothing_changed_again(
    app: App, zk: KazooClient, zk_chroot: str, workers: list[int], request: pytest.FixtureRequest
) -> None:
    create_tree(zk, TREE)
    add_tree(app, TreeSpec(name="t", hosts=zk_chroot, root="/eq", excludes=EXCLUDES))

    first = take_snapshot(app, "t")
    again = take_snapshot(app, "t")

    expected = reference(zk, "/eq", acl=False)
    assert recorded(app, "t") == expected
    assert all(node.acl is None for node in expected.nodes.values())
    assert (first.added, again.changed) == (len(expected), 0)
    # One digest worker per capture, or none.
    assert len(workers) == (2 if request.node.digest_mode == "digest worker" else 0)


def test_a_tree_emptied_of_everything_but_its_root_closes_every_other_row(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, TREE)
    add_tree(app, TreeSpec(name="t", hosts=zk_chroot, root="/eq"))
    first = take_snapshot(app, "t")
    for child in zk.get_children("/eq"):
        zk.delete(f"/eq/{child}", recursive=True)

    emptied = take_snapshot(app, "t")

    assert (emptied.node_count, emptied.removed) == (1, first.node_count - 1)
    assert recorded(app, "t") == reference(zk, "/eq", acl=False)
    assert recorded(app, "t", first.snapshot_id).keys() == TREE.keys()


@pytest.mark.parametrize("lookup", ["in memory", "packed", "row by row"])
def test_open_rows_matched_in_memory_or_looked_up_find_the_same_changes(
    app: App, zk: KazooClient, zk_chroot: str, monkeypatch: pytest.MonkeyPatch, lookup: str
) -> None:
    """Open rows are matched in memory up to OPEN_ROWS_IN_MEMORY_MAX; past it each
    chunk looks them up, on SQLite as one packed row, and row by row when a digest
    is not of the usual size. All three record the same changes."""
    create_tree(zk, TREE)
    add_tree(app, TreeSpec(name="t", hosts=zk_chroot, root="/eq", excludes=EXCLUDES))
    first = take_snapshot(app, "t")
    zk.set("/eq/svc/k1", b"ONE")
    zk.delete("/eq/svc/deep", recursive=True)
    zk.create("/eq/svc/k3", b"")
    looked_up: list[int] = []

    with monkeypatch.context() as m:
        if lookup != "in memory":
            m.setattr(snapshots, "OPEN_ROWS_IN_MEMORY_MAX", 0)
            original = _CaptureWrite._open_rows
            m.setattr(
                _CaptureWrite,
                "_open_rows",
                lambda self, keys: looked_up.append(len(keys)) or original(self, keys),
            )
        if lookup == "row by row":
            m.setattr(_CaptureWrite, "_open_rows_packed", lambda *_args: False)
        changed = take_snapshot(app, "t")
        assert recorded(app, "t") == reference(zk, "/eq", acl=False)
        assert take_snapshot(app, "t").changed == 0
    zk.set("/eq/svc/k2", b"TWO")
    after = take_snapshot(app, "t")

    assert first.added == len(TREE) - 2
    assert bool(looked_up) == (lookup != "in memory")
    assert (changed.added, changed.removed, changed.modified) == (1, 2, 1)
    assert (after.added, after.removed, after.modified) == (0, 0, 1)
    assert take_snapshot(app, "t").changed == 0
    assert recorded(app, "t") == reference(zk, "/eq", acl=False)
