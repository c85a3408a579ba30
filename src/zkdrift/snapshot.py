"""Capturing snapshots: the library calls behind ``zkdrift snapshot`` and the flows."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient

from zkdrift.app import App
from zkdrift.formats.zkjson import iter_export
from zkdrift.model import TreeState
from zkdrift.store import snapshots as snapshot_store
from zkdrift.store import trees as tree_store
from zkdrift.store.models import Tree, utcnow
from zkdrift.vocabulary import iso
from zkdrift.zk import client as zk
from zkdrift.zk.reader import TreeStream, read_tree

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotInfo:
    """One recorded snapshot as listed: when, how big, what changed, how long it took."""

    id: int
    taken_at: dt.datetime
    nodes: int
    bytes: int
    added: int
    removed: int
    modified: int
    ephemeral: int
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "taken_at": iso(self.taken_at),
            "nodes": self.nodes,
            "bytes": self.bytes,
            "added": self.added,
            "removed": self.removed,
            "modified": self.modified,
            "ephemeral": self.ephemeral,
            "seconds": round(self.seconds, 3),
        }


def list_snapshots(app: App, name: str, *, limit: int | None = None) -> list[SnapshotInfo]:
    """A tree's snapshots, newest first."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        return [
            SnapshotInfo(
                id=s.id,
                taken_at=s.started_at,
                nodes=s.node_count,
                bytes=s.total_bytes,
                added=s.added,
                removed=s.removed,
                modified=s.modified,
                ephemeral=s.ephemeral_count,
                seconds=s.read_seconds + s.write_seconds,
            )
            for s in snapshot_store.list_snapshots(session, tree, limit=limit)
        ]


def read_live(app: App, tree: Tree, *, progress: Callable[[int], None] | None = None) -> TreeState:
    """Read the live tree from ZooKeeper (one session, pipelined)."""
    with zk.session(app.target(tree)) as client:
        return read_tree(
            client,
            tree.root,
            excludes=tree.excludes,
            with_acl=tree.capture_acl,
            progress=progress,
        )


def take_snapshot(
    app: App,
    name: str,
    *,
    progress: Callable[[int], None] | None = None,
    source: str = "cli",
) -> snapshot_store.SnapshotResult:
    """Capture the live tree and record it as one snapshot (one transaction).

    The tree streams from ZooKeeper into the database in chunks, under the
    tree's lock: memory does not grow with the tree.
    """
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
    with zk.session(app.target(tree)) as client:
        return capture_with(app, tree, client, progress=progress, source=source)


def capture_with(
    app: App,
    tree: Tree,
    client: KazooClient,
    *,
    progress: Callable[[int], None] | None = None,
    source: str = "cli",
) -> snapshot_store.SnapshotResult:
    """:func:`take_snapshot` on a session the caller holds (a drift check's, or a plan's
    under the tree's lock). Raises RootNotFoundError when the root does not exist."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, tree.name)
        live = TreeStream(
            client,
            tree.root,
            excludes=tree.excludes,
            with_acl=tree.capture_acl,
            progress=progress,
        )
        result = snapshot_store.capture_snapshot(
            session, tree, live, started_at=utcnow(), with_acl=tree.capture_acl, source=source
        )
    log.info("%s", result.describe())
    return result


def record_snapshot(
    app: App,
    tree: Tree,
    state: TreeState,
    *,
    started_at: Any = None,
    read_seconds: float = 0.0,
    source: str = "cli",
) -> snapshot_store.SnapshotResult:
    with app.db.session() as session:
        tree = tree_store.get_tree(session, tree.name)
        result = snapshot_store.write_snapshot(
            session,
            tree,
            state,
            started_at=started_at or utcnow(),
            read_seconds=read_seconds,
            source=source,
        )
    log.info("%s", result.describe())
    return result


@dataclass(frozen=True)
class LoadedSnapshot:
    tree: Tree
    snapshot_id: int
    taken_at: dt.datetime
    state: TreeState


def load_snapshot(
    app: App, name: str, snapshot_id: int | None = None, *, under: str | None = None
) -> LoadedSnapshot:
    """Rebuild a recorded snapshot (the latest when ``snapshot_id`` is None)."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        snap = snapshot_store.get_snapshot(session, tree, snapshot_id)
        state = snapshot_store.load_snapshot(session, tree, snap, under=under)
        return LoadedSnapshot(tree, snap.id, snap.started_at, state)


@dataclass(frozen=True)
class SnapshotExport:
    """A recorded snapshot on its way out as a zkdrift export."""

    tree: str
    snapshot_id: int
    taken_at: dt.datetime
    nodes: int


@contextmanager
def export_snapshot(
    app: App, name: str, snapshot_id: int | None = None
) -> Iterator[tuple[SnapshotExport, Iterator[bytes]]]:
    """A snapshot (the latest when ``snapshot_id`` is None) as zkdrift export bytes,
    streamed out of the store in pieces while the context is open: the bytes of
    :func:`zkdrift.formats.dump_export` of the loaded snapshot, never the whole
    tree in memory."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        snap = snapshot_store.get_snapshot(session, tree, snapshot_id)
        info = SnapshotExport(tree.name, snap.id, snap.started_at, snap.node_count)
        nodes = snapshot_store.iter_snapshot_nodes(session, tree, snap.id)
        yield (
            info,
            iter_export(
                nodes, root=tree.root, tree=name, snapshot_id=snap.id, taken_at=snap.started_at
            ),
        )
