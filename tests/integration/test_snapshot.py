"""Capturing live trees into the store, against a real ZooKeeper and databases."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from sqlalchemy import func, select, text

from tests.support.zk import create_tree
from zkdrift.app import App
from zkdrift.desired import set_value
from zkdrift.errors import RootNotFoundError, UnknownTreeError
from zkdrift.history import EventKind, path_history
from zkdrift.model import Acl, path_key
from zkdrift.snapshot import load_snapshot, take_snapshot
from zkdrift.store import snapshots
from zkdrift.store import trees as tree_store
from zkdrift.store.digests import DigestWorker, DigestWorkerError
from zkdrift.store.models import INLINE_MAX, Blob, NodeState, Snapshot
from zkdrift.trees import TreeSpec, add_tree
from zkdrift.wire import WireNodes
from zkdrift.zk import reader
from zkdrift.zk.reader import _TreeRead, read_tree

CONFIG = {
    "/app": b"",
    "/app/billing": b"",
    "/app/billing/url": b"https://billing.internal",
    "/app/billing/timeout": b"30",
    "/app/search": b"",
    "/app/search/synonyms": bytes(range(256)),
    "/app/search/empty": b"",
}


def register(app: App, hosts: str, name: str = "app", root: str = "/app", **kw: object) -> None:
    add_tree(app, TreeSpec(name=name, hosts=hosts, root=root, **kw))  # type: ignore[arg-type]


def node_rows(app: App) -> int:
    with app.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(NodeState)) or 0)


def test_snapshot_captures_every_node_with_its_bytes_and_stat(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, CONFIG)
    register(app, zk_chroot)

    result = take_snapshot(app, "app")

    assert result.node_count == len(CONFIG)
    assert result.added == len(CONFIG)
    loaded = load_snapshot(app, "app")
    assert {p: n.data for p, n in loaded.state.nodes.items()} == CONFIG
    _data, live_stat = zk.get("/app/billing/url")
    stat = loaded.state["/app/billing/url"].stat
    assert stat is not None
    assert (stat.version, stat.mzxid, stat.ctime, stat.mtime) == (
        live_stat.version,
        live_stat.mzxid,
        live_stat.ctime,
        live_stat.mtime,
    )
    assert loaded.state["/app"].stat is not None
    assert loaded.state["/app"].stat.num_children == 2


def test_resnapshot_of_an_unchanged_tree_writes_no_node_rows(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, CONFIG)
    register(app, zk_chroot)
    take_snapshot(app, "app")
    rows_after_first = node_rows(app)

    second = take_snapshot(app, "app")
    third = take_snapshot(app, "app")

    assert (second.changed, third.changed) == (0, 0)
    assert node_rows(app) == rows_after_first == len(CONFIG)


def test_stored_path_digests_are_the_models_path_keys(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, CONFIG | {"/app/caf\u00e9 \u2603": b"x"})
    register(app, zk_chroot)
    take_snapshot(app, "app")
    set_value(app, "app", "/app/desired only", b"y")

    with app.db.session() as session:
        stored = session.execute(
            text(
                "SELECT path, path_digest FROM node_states"
                " UNION ALL SELECT path, path_digest FROM configurations"
            )
        ).all()
    assert len(stored) == len(CONFIG) + 2
    assert all(bytes(d) == path_key(p) and len(bytes(d)) == 12 for p, d in stored)


def test_snapshot_writes_rows_only_for_changed_nodes_and_rebuilds_old_snapshots_exactly(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, CONFIG)
    register(app, zk_chroot)
    first = take_snapshot(app, "app")
    zk.set("/app/billing/timeout", b"45")
    zk.delete("/app/search/empty")
    zk.create("/app/billing/retries", b"3")

    second = take_snapshot(app, "app")

    assert (second.added, second.removed, second.modified) == (1, 1, 1)
    # timeout changed; retries added; /app/billing and /app/search changed stat (children).
    assert node_rows(app) == len(CONFIG) + 4
    old = load_snapshot(app, "app", first.snapshot_id).state
    new = load_snapshot(app, "app", second.snapshot_id).state
    assert {p: n.data for p, n in old.nodes.items()} == CONFIG
    assert new["/app/billing/timeout"].data == b"45"
    assert "/app/search/empty" not in new
    assert new["/app/billing/retries"].data == b"3"


def test_large_values_are_stored_once_however_many_nodes_hold_them(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    large = b"L" * (INLINE_MAX + 1)
    create_tree(
        zk,
        {f"/app/n{i}": large for i in range(50)}
        | {f"/app/s{i}": b"same value" for i in range(50)}
        | {"/app": b""},
    )
    register(app, zk_chroot)

    take_snapshot(app, "app")

    with app.db.session() as session:
        # Small values are held in their rows; the large one once, in blobs.
        assert session.scalars(select(Blob.data)).all() == [large]
        inline = session.scalar(
            select(func.count()).select_from(NodeState).where(NodeState.data.is_not(None))
        )
        assert inline == 51


BYTES = {
    "/app": b"",
    "/app/empty": b"",
    "/app/nul": b"\x00",
    "/app/binary": bytes(range(256)) * 4,  # INLINE_MAX bytes: the largest inline value
    "/app/over": b"\x00\xff" * (INLINE_MAX // 2) + b"\x00",  # one byte more: a blob
    "/app/utf8": "caf\u00e9 \u2603 \U0001f600".encode(),
    "/app/large": bytes(i % 251 for i in range(1000 * 1000)),  # near jute.maxbuffer
    "/app/quote": b"' \\ \" % %s ?",
}


def test_values_come_back_byte_identical_inline_and_from_blobs(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, BYTES)
    register(app, zk_chroot)

    first = take_snapshot(app, "app")
    zk.set("/app/nul", b"\x00\x00")
    zk.set("/app/over", b"now small")
    second = take_snapshot(app, "app")

    old = load_snapshot(app, "app", first.snapshot_id).state
    new = load_snapshot(app, "app", second.snapshot_id).state
    assert {p: n.data for p, n in old.nodes.items()} == BYTES
    assert {p: n.data for p, n in new.nodes.items()} == BYTES | {
        "/app/nul": b"\x00\x00",
        "/app/over": b"now small",
    }
    assert (second.modified, second.added, second.removed) == (2, 0, 0)
    with app.db.session() as session:
        in_blobs = set(session.scalars(select(Blob.size)))
    assert in_blobs == {len(BYTES["/app/over"]), len(BYTES["/app/large"])}


def test_path_history_lists_each_content_of_a_path_in_order(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, CONFIG)
    register(app, zk_chroot)
    snaps = [take_snapshot(app, "app").snapshot_id]
    for value in (b"31", b"32"):
        zk.set("/app/billing/timeout", value)
        snaps.append(take_snapshot(app, "app").snapshot_id)
    snaps.append(take_snapshot(app, "app").snapshot_id)

    events = path_history(app, "app", "/app/billing/timeout")

    assert [(e.kind, e.snapshot_id, e.after.version if e.after else None) for e in events] == [
        (EventKind.INITIAL, snaps[0], 0),
        (EventKind.CHANGED, snaps[1], 1),
        (EventKind.CHANGED, snaps[2], 2),
    ]


def test_ephemeral_nodes_are_recorded_as_ephemeral(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, CONFIG)
    zk.create("/app/billing/leader", b"host-1", ephemeral=True)
    register(app, zk_chroot)

    result = take_snapshot(app, "app")

    state = load_snapshot(app, "app").state
    assert result.ephemeral == 1
    assert state["/app/billing/leader"].ephemeral
    assert not state["/app/billing/url"].ephemeral


def test_excluded_subtrees_are_not_captured(app: App, zk: KazooClient, zk_chroot: str) -> None:
    create_tree(zk, CONFIG)
    register(app, zk_chroot, excludes=("/app/search",))

    take_snapshot(app, "app")

    assert sorted(load_snapshot(app, "app").state) == [
        "/app",
        "/app/billing",
        "/app/billing/timeout",
        "/app/billing/url",
    ]


def test_acls_are_captured_when_the_tree_asks_for_them(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, CONFIG)
    zk.set_acls("/app/billing/url", [_acl(1, "world", "anyone")])
    register(app, zk_chroot, capture_acl=True)

    take_snapshot(app, "app")

    state = load_snapshot(app, "app").state
    assert state["/app/billing/url"].acl == (Acl(1, "world", "anyone"),)
    assert state["/app"].acl == (Acl(31, "world", "anyone"),)


def _acl(perms: int, scheme: str, ident: str) -> object:
    from kazoo.security import ACL, Id

    return ACL(perms, Id(scheme, ident))


def test_a_failed_write_leaves_no_partial_snapshot(
    app: App, zk: KazooClient, zk_chroot: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_tree(zk, CONFIG)
    register(app, zk_chroot)
    take_snapshot(app, "app")
    zk.set("/app/billing/timeout", b"99")
    rows_before = node_rows(app)

    def explode(*_a: object, **_k: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr("zkdrift.store.snapshots.store_blob_keys", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        take_snapshot(app, "app")

    with app.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Snapshot)) == 1
        open_rows = session.scalar(
            select(func.count()).select_from(NodeState).where(NodeState.valid_to.is_(None))
        )
    assert node_rows(app) == rows_before
    assert open_rows == len(CONFIG)


class _Workers:
    """Digest workers started by captures, from the first batch of two nodes; the
    worker of ``kill_after`` sends is killed right after it. Once ``hold_after`` is
    set, the reader waits after that many sends of a worker until the worker is
    gone (or ten seconds passed), so the worker cannot reach the end of the tree."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, kill_after: int = 0) -> None:
        self.started: list[DigestWorker] = []
        self.hold_after = 0
        self.held_too_long = False
        monkeypatch.setattr(snapshots, "DIGEST_WORKER_AFTER", 0)
        monkeypatch.setattr(reader, "BATCH", 2)
        workers = self

        class Watched(DigestWorker):
            sent = 0

            def __init__(self) -> None:
                super().__init__()
                workers.started.append(self)

            def send(self, nodes: WireNodes) -> None:
                if workers.hold_after and self.sent == workers.hold_after:
                    deadline = time.monotonic() + 10
                    while self.process.poll() is None:
                        if time.monotonic() > deadline:
                            workers.held_too_long = True
                            break
                        time.sleep(0.01)
                super().send(nodes)
                self.sent += 1
                if self.sent == kill_after:
                    self.process.kill()

        monkeypatch.setattr(snapshots, "DigestWorker", Watched)


def test_a_digest_worker_killed_mid_capture_fails_it_and_nothing_is_written(
    app: App, zk: KazooClient, zk_chroot: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_tree(zk, CONFIG)
    register(app, zk_chroot)
    take_snapshot(app, "app")
    zk.set("/app/billing/timeout", b"99")
    rows_before = node_rows(app)
    workers = _Workers(monkeypatch, kill_after=2)

    with pytest.raises(DigestWorkerError, match="the digest worker went away: it exited with"):
        take_snapshot(app, "app")

    assert len(workers.started) == 1
    assert workers.started[0].process.returncode == -9
    with app.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Snapshot)) == 1
    assert node_rows(app) == rows_before
    monkeypatch.undo()
    assert take_snapshot(app, "app").modified == 1


def test_a_capture_that_fails_stops_its_digest_worker_and_one_that_ends_lets_it_exit(
    app: App, zk: KazooClient, zk_chroot: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_tree(zk, CONFIG)
    register(app, zk_chroot)
    workers = _Workers(monkeypatch)
    first = take_snapshot(app, "app")
    zk.set("/app/billing/timeout", b"99")
    workers.hold_after = 1

    def explode(*_a: object, **_k: object) -> None:
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        # The first chunk (the first batch) fails while the reader holds the rest of the
        # tree back: the worker is still waiting for it when the capture stops.
        m.setattr(snapshots, "CAPTURE_CHUNK", 1)
        m.setattr(snapshots._CaptureWrite, "put", explode)
        with pytest.raises(RuntimeError, match="disk full"):
            take_snapshot(app, "app")

    assert first.added == len(CONFIG)
    assert not workers.held_too_long  # the capture failed while the worker waited
    assert [w.process.returncode for w in workers.started] == [0, -9]
    assert load_snapshot(app, "app").state["/app/billing/timeout"].data == b"30"


def test_unknown_tree_error_lists_the_known_ones(app: App, zk_chroot: str) -> None:
    register(app, zk_chroot.rsplit("/", 1)[0], name="alpha", root="/")
    with pytest.raises(UnknownTreeError, match="known trees: alpha"):
        take_snapshot(app, "beta")


def test_registering_a_root_that_does_not_exist_is_refused(app: App, zk_chroot: str) -> None:
    with pytest.raises(RootNotFoundError, match="/missing"):
        register(app, zk_chroot, root="/missing")
    with app.db.session() as session:
        assert tree_store.tree_names(session) == []


def test_batched_and_per_node_walks_read_the_same_tree(zk: KazooClient) -> None:
    create_tree(zk, CONFIG | {f"/app/wide/n{i:04d}": str(i).encode() for i in range(1200)})

    batched = [node for batch in _TreeRead(zk, "/app", (), None, 30).batched() for node in batch]
    per_node = _TreeRead(zk, "/app", (), None, 30).per_node()

    assert len(batched) == len(CONFIG) + 1201
    assert {p: (d, s) for p, d, s, _acl in batched} == {
        p: (d, tuple(s)) for p, (d, s) in per_node.items()
    }


def test_nodes_deleted_during_the_walk_are_not_errors(zk: KazooClient) -> None:
    nodes = {f"/app/churn/n{i:04d}": b"x" for i in range(600)}
    create_tree(zk, CONFIG | nodes)
    stop = threading.Event()

    def churn() -> None:
        for path in sorted(nodes, reverse=True):
            if stop.is_set():
                return
            with contextlib.suppress(NoNodeError):
                zk.delete(path)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        states = [read_tree(zk, "/app") for _ in range(5)]
    finally:
        stop.set()
        worker.join()
    for state in states:
        assert set(CONFIG) <= set(state)
        assert all(state[p].data == b"x" for p in state if p.startswith("/app/churn/"))
