"""Snapshots as a temporal table of node states.

A node state row is valid from the snapshot that first saw its content up
to (not including) the snapshot that saw it change or vanish. Writing a
snapshot therefore touches only what changed: it closes the rows of changed
and removed paths and opens rows for changed and added ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, and_, null, or_, select, type_coerce
from sqlalchemy.orm import Session

from zkdrift.diff import NodeKey
from zkdrift.errors import UnknownSnapshotError
from zkdrift.model import Acl, Stat, TreeState, Znode, digest, path_digest
from zkdrift.store.blobs import load_blobs
from zkdrift.store.bulk import chunks, ordered_rows, streamed_chunks
from zkdrift.store.models import NodeState, Snapshot, Tree, utcnow
from zkdrift.store.temporal import UNCHANGED, TemporalWrite
from zkdrift.store.trees import lock_tree

_STAT = struct.Struct(">iiiqqqqqqii")


def acl_to_json(acl: tuple[Acl, ...] | None) -> list[list[Any]] | None:
    return None if acl is None else [[a.perms, a.scheme, a.id] for a in acl]


def acl_from_json(value: list[list[Any]] | None) -> tuple[Acl, ...] | None:
    return None if value is None else tuple(Acl(int(p), str(s), str(i)) for p, s, i in value)


def acl_key(value: Any) -> frozenset[tuple[int, str, str]] | None:
    """A stored ACL as compared in a stream: the set of its entries (None: not read).

    ``value`` is the column as the driver returns it when read as text (see
    :func:`acl_text`): JSON text, or already decoded by drivers that decode JSON.
    """
    if isinstance(value, str):
        value = json.loads(value)
    if value is None:
        return None
    return frozenset((int(p), str(s), str(i)) for p, s, i in value)


def acl_text(column: Any) -> Any:
    """An ACL column read without the JSON type's decoding: most nodes have none, and
    decoding ``null`` a million times costs seconds."""
    return type_coerce(column, Text)


# Rows per query when a tree streams out of the store: memory holds one chunk.
STREAM_CHUNK = 5000


def state_digest(data_digest: str, stat: Stat, acl: tuple[Acl, ...] | None) -> str:
    """A digest of everything recorded for a node: equal digests, equal rows."""
    h = hashlib.blake2b(digest_size=16)
    h.update(data_digest.encode())
    h.update(
        _STAT.pack(
            stat.version,
            stat.cversion,
            stat.aversion,
            stat.czxid,
            stat.mzxid,
            stat.pzxid,
            stat.ctime,
            stat.mtime,
            stat.ephemeral_owner,
            stat.num_children,
            stat.data_length,
        )
    )
    if acl is not None:
        h.update(repr(acl_to_json(acl)).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class SnapshotResult:
    snapshot_id: int
    tree: str
    node_count: int
    total_bytes: int
    added: int
    removed: int
    modified: int
    ephemeral: int
    read_seconds: float
    write_seconds: float
    fuzzy: bool = False
    # True when another snapshot, read after this one began and seeing later
    # changes, was recorded first: this one was not recorded, and the result
    # describes that newer snapshot instead.
    superseded: bool = False

    @property
    def changed(self) -> int:
        return self.added + self.removed + self.modified

    def describe(self) -> str:
        return (
            f"snapshot {self.snapshot_id} of {self.tree}: {self.node_count:,} nodes,"
            f" {self.changed:,} changed since the last one"
            f" (+{self.added} -{self.removed} ~{self.modified})"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "tree": self.tree,
            "nodes": self.node_count,
            "bytes": self.total_bytes,
            "changed": self.changed,
            "added": self.added,
            "removed": self.removed,
            "modified": self.modified,
            "ephemeral": self.ephemeral,
            "duration_seconds": round(self.read_seconds + self.write_seconds, 3),
            "read_seconds": round(self.read_seconds, 3),
            "write_seconds": round(self.write_seconds, 3),
            "fuzzy": self.fuzzy,
            "superseded": self.superseded,
        }


def write_snapshot(
    session: Session,
    tree: Tree,
    state: TreeState,
    *,
    started_at: dt.datetime,
    read_seconds: float,
    source: str = "cli",
) -> SnapshotResult:
    """Record ``state`` as a new snapshot of ``tree`` in the session's transaction.

    Writers of one tree take turns (:func:`~zkdrift.store.trees.lock_tree`).
    When the snapshot recorded last was read after this one began and saw
    later zxids, ``state`` is older than what the history already holds: it
    is not recorded, and the result describes that newer snapshot
    (``superseded``), so history never steps back in time.
    """
    t0 = time.perf_counter()
    lock_tree(session, tree)
    latest = session.scalar(
        select(Snapshot).where(Snapshot.tree_id == tree.id).order_by(Snapshot.id.desc()).limit(1)
    )
    if (
        latest is not None
        and state.zxid_end
        and latest.zxid_end
        and latest.started_at >= started_at
        and latest.zxid_end > state.zxid_end
    ):
        return _result(tree, latest, read_seconds, superseded=True)
    with_acl = any(node.acl is not None for node in state.nodes.values())
    snap = Snapshot(
        tree_id=tree.id,
        started_at=started_at,
        finished_at=started_at,
        node_count=len(state),
        total_bytes=state.total_bytes,
        with_acl=with_acl,
        source=source,
        zxid_start=state.zxid_start or None,
        zxid_end=state.zxid_end or None,
        fuzzy=state.fuzzy,
    )
    session.add(snap)
    session.flush()
    sid = snap.id

    write = TemporalWrite(session, NodeState, tree.id, "state_digest", "data_digest", "acl")
    added = modified = ephemeral = 0
    max_mzxid = 0
    for path, node in state.nodes.items():
        stat = node.stat or Stat(data_length=len(node.data))
        if stat.ephemeral_owner:
            ephemeral += 1
        max_mzxid = max(max_mzxid, stat.mzxid)
        dd = digest(node.data)
        sd = state_digest(dd, stat, node.acl)
        acl = acl_to_json(node.acl)
        previous = write.put(
            path,
            node.data,
            dd,
            {
                "state_digest": sd,
                "version": stat.version,
                "cversion": stat.cversion,
                "aversion": stat.aversion,
                "czxid": stat.czxid,
                "mzxid": stat.mzxid,
                "pzxid": stat.pzxid,
                "ctime": stat.ctime,
                "mtime": stat.mtime,
                "ephemeral_owner": stat.ephemeral_owner,
                "num_children": stat.num_children,
                "acl": acl,
            },
            key=(sd,),
        )
        if previous is UNCHANGED:
            continue
        if previous is None:
            added += 1
        elif previous[2] != dd or (with_acl and previous[3] != acl):
            # A new stat alone (a child came or went) is not a modification.
            modified += 1
    removed = write.removed
    write.commit(sid)

    snap.added, snap.removed, snap.modified = added, removed, modified
    snap.ephemeral_count = ephemeral
    snap.max_mzxid = max_mzxid
    snap.read_seconds = read_seconds
    snap.finished_at = utcnow()
    snap.write_seconds = time.perf_counter() - t0
    session.flush()
    return _result(tree, snap, read_seconds)


def _result(
    tree: Tree, snap: Snapshot, read_seconds: float, *, superseded: bool = False
) -> SnapshotResult:
    return SnapshotResult(
        snapshot_id=snap.id,
        tree=tree.name,
        node_count=snap.node_count,
        total_bytes=snap.total_bytes,
        added=snap.added,
        removed=snap.removed,
        modified=snap.modified,
        ephemeral=snap.ephemeral_count,
        read_seconds=read_seconds,
        write_seconds=snap.write_seconds,
        fuzzy=snap.fuzzy,
        superseded=superseded,
    )


def list_snapshots(session: Session, tree: Tree, limit: int | None = None) -> list[Snapshot]:
    query = select(Snapshot).where(Snapshot.tree_id == tree.id).order_by(Snapshot.id.desc())
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def get_snapshot(session: Session, tree: Tree, snapshot_id: int | None = None) -> Snapshot:
    """The given snapshot of ``tree``, or its latest when ``snapshot_id`` is None."""
    if snapshot_id is None:
        snap = session.scalar(
            select(Snapshot)
            .where(Snapshot.tree_id == tree.id)
            .order_by(Snapshot.id.desc())
            .limit(1)
        )
        if snap is None:
            raise UnknownSnapshotError(
                f"tree {tree.name!r} has no snapshots yet; "
                f"take one with 'zkdrift snapshot {tree.name}'"
            )
        return snap
    snap = session.get(Snapshot, snapshot_id)
    if snap is None or snap.tree_id != tree.id:
        raise UnknownSnapshotError(f"snapshot {snapshot_id} does not exist for tree {tree.name!r}")
    return snap


def valid_at(snapshot_id: int) -> Any:
    """SQL condition: a node state row that was current at ``snapshot_id``."""
    return and_(
        NodeState.valid_from <= snapshot_id,
        or_(NodeState.valid_to.is_(None), NodeState.valid_to > snapshot_id),
    )


def load_snapshot(
    session: Session, tree: Tree, snapshot: Snapshot, *, under: str | None = None
) -> TreeState:
    """Rebuild a snapshot exactly: every node with its data, stat and ACL."""
    query = select(NodeState).where(NodeState.tree_id == tree.id, valid_at(snapshot.id))
    rows = list(session.scalars(query))
    if under is not None:
        from zkdrift.paths import is_under

        rows = [r for r in rows if is_under(r.path, under)]
    values = load_blobs(session, (r.data_digest for r in rows))
    nodes = {}
    for r in sorted(rows, key=lambda r: r.path):
        nodes[r.path] = _znode(r, values[r.data_digest])
    return TreeState(tree.root, nodes)


def _znode(r: Any, data: bytes) -> Znode:
    return Znode(
        r.path,
        data,
        Stat(
            version=r.version,
            cversion=r.cversion,
            aversion=r.aversion,
            czxid=r.czxid,
            mzxid=r.mzxid,
            pzxid=r.pzxid,
            ctime=r.ctime,
            mtime=r.mtime,
            ephemeral_owner=r.ephemeral_owner,
            num_children=r.num_children,
            data_length=r.data_length,
        ),
        acl_from_json(r.acl),
    )


def path_order(session: Session, column: Any) -> Any:
    """``column`` (a path) as an ORDER BY that sorts like Python strings: by code point.

    SQLite's BINARY collation already does. PostgreSQL's "C" collation compares
    bytes, and UTF-8 bytes sort in code-point order; MariaDB's ``utf8mb4_bin``
    ignores trailing spaces, its ``nopad`` twin does not.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return column.collate("C")
    if dialect in ("mysql", "mariadb"):
        return column.collate("utf8mb4_nopad_bin")
    return column


def iter_snapshot_nodes(
    session: Session, tree: Tree, snapshot_id: int, *, chunk: int = STREAM_CHUNK
) -> Iterator[Znode]:
    """Every node of a snapshot, whole, sorted by path, holding ``chunk`` at a time:
    :func:`load_snapshot` for trees too large to hold."""
    query = select(NodeState.__table__).where(NodeState.tree_id == tree.id, valid_at(snapshot_id))
    for rows in streamed_chunks(session, query, path_order(session, NodeState.path), chunk):
        values = load_blobs(session, (r.data_digest for r in rows))
        for r in rows:
            yield _znode(r, values[r.data_digest])


def iter_node_keys(
    session: Session,
    tree: Tree,
    snapshot_id: int,
    *,
    with_acl: bool = True,
    chunk: int = STREAM_CHUNK,
) -> Iterator[NodeKey]:
    """A snapshot's nodes as comparison keys (see :data:`zkdrift.diff.NodeKey`), in
    path digest order, one query per ``chunk`` rows (keyset pagination: the session
    stays free for other queries between chunks). Without ``with_acl`` every ACL
    comes out as None (not read)."""
    columns = (
        NodeState.path_digest,
        NodeState.path,
        NodeState.data_digest,
        acl_text(NodeState.acl) if with_acl else null(),
        NodeState.ephemeral_owner != 0,
    )
    query = select(*columns).where(NodeState.tree_id == tree.id, valid_at(snapshot_id))
    rows = ordered_rows(session, query, NodeState.path_digest, chunk)
    if not with_acl:
        # The rows are the keys already: no tuple of our own per node.
        yield from rows
        return
    for pd, path, dd, acl, ephemeral in rows:
        yield pd, path, dd, acl_key(acl), ephemeral


def iter_paths(
    session: Session, tree: Tree, snapshot_id: int, *, chunk: int = STREAM_CHUNK
) -> Iterator[tuple[str, bool]]:
    """A snapshot's paths, each with whether it is ephemeral, in no particular order."""
    query: Any = select(NodeState.path, NodeState.ephemeral_owner != 0).where(
        NodeState.tree_id == tree.id, valid_at(snapshot_id)
    )
    for rows in streamed_chunks(session, query, None, chunk, plain=True):
        yield from rows


def load_nodes(
    session: Session, tree: Tree, snapshot_id: int, paths: Iterable[str]
) -> dict[str, Znode]:
    """The nodes at ``paths`` in a snapshot, whole (data, stat, ACL), by path;
    paths the snapshot lacks are left out."""
    rows: list[NodeState] = []
    for batch in chunks([path_digest(p) for p in set(paths)]):
        rows.extend(
            session.scalars(
                select(NodeState).where(
                    NodeState.tree_id == tree.id,
                    valid_at(snapshot_id),
                    NodeState.path_digest.in_(batch),
                )
            )
        )
    values = load_blobs(session, (r.data_digest for r in rows))
    return {r.path: _znode(r, values[r.data_digest]) for r in sorted(rows, key=lambda r: r.path)}
