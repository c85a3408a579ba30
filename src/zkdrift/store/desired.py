"""Desired state: the ``configurations`` table, versioned in revisions.

Stored like snapshots: a row per (tree, path, value) valid from the revision
that set it until the revision that changed or removed it. Every write is a
new revision with author, message and source; any revision can be rebuilt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, null, or_, select
from sqlalchemy.orm import Session

from zkdrift.diff import NodeKey
from zkdrift.errors import InvalidInputError
from zkdrift.model import TreeState, Znode, digest, path_key
from zkdrift.store.blobs import store_blobs
from zkdrift.store.bulk import (
    by_path_digest,
    close_rows,
    insert_plain,
    not_indexed,
    ordered_rows,
    streamed_chunks,
)
from zkdrift.store.models import INLINE_MAX, Configuration, DesiredRevision, Tree
from zkdrift.store.snapshots import (
    STREAM_CHUNK,
    acl_from_json,
    acl_key,
    acl_text,
    acl_to_json,
    blob_values,
    path_order,
    row_value,
)
from zkdrift.store.temporal import UNCHANGED, ConcurrentWriteError, TemporalWrite
from zkdrift.store.trees import lock_tree


class UnknownRevisionError(InvalidInputError):
    pass


@dataclass(frozen=True)
class RevisionOrigin:
    """Where a revision synced from Git came from (``url`` with credentials masked)."""

    commit: str
    author: str
    message: str
    url: str


@dataclass(frozen=True)
class RevisionChange:
    added: int
    removed: int
    modified: int

    @property
    def total(self) -> int:
        return self.added + self.removed + self.modified


def latest_revision(session: Session, tree: Tree) -> DesiredRevision | None:
    return session.scalar(
        select(DesiredRevision)
        .where(DesiredRevision.tree_id == tree.id)
        .order_by(DesiredRevision.number.desc())
        .limit(1)
    )


def get_revision(session: Session, tree: Tree, number: int) -> DesiredRevision:
    rev = session.scalar(
        select(DesiredRevision).where(
            DesiredRevision.tree_id == tree.id, DesiredRevision.number == number
        )
    )
    if rev is None:
        latest = latest_revision(session, tree)
        known = f"revisions 1..{latest.number}" if latest else "no revisions yet"
        raise UnknownRevisionError(
            f"tree {tree.name!r} has no desired-state revision {number} ({known})"
        )
    return rev


def list_revisions(session: Session, tree: Tree, limit: int | None = None) -> list[DesiredRevision]:
    query = (
        select(DesiredRevision)
        .where(DesiredRevision.tree_id == tree.id)
        .order_by(DesiredRevision.number.desc())
    )
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def _valid_at(revision_id: int) -> Any:
    return and_(
        Configuration.valid_from <= revision_id,
        or_(Configuration.valid_to.is_(None), Configuration.valid_to > revision_id),
    )


# What a desired node is read from: its value in the row, or in blobs by digest.
_VALUE_COLUMNS = (
    Configuration.path,
    Configuration.data_digest,
    Configuration.data,
    Configuration.acl,
)


def _znode(r: Any, values: dict[str, bytes]) -> Znode:
    return Znode(
        r.path, row_value(r, values), None, None if r.acl is None else acl_from_json(r.acl)
    )


def load_desired(
    session: Session, tree: Tree, revision: DesiredRevision | None = None
) -> TreeState:
    """The desired state at ``revision`` (default: the latest); empty when none exists."""
    if revision is None:
        revision = latest_revision(session, tree)
        if revision is None:
            return TreeState(tree.root, {})
    # Plain columns, not ORM objects: building 20k entities costs more than
    # the query itself.
    rows = sorted(
        session.execute(
            select(*_VALUE_COLUMNS).where(Configuration.tree_id == tree.id, _valid_at(revision.id))
        ).all()
    )
    values = blob_values(session, rows)
    nodes = {r.path: _znode(r, values) for r in rows}
    return TreeState(tree.root, nodes)


def iter_desired_keys(
    session: Session,
    tree: Tree,
    revision_id: int,
    *,
    with_acl: bool = True,
    chunk: int = STREAM_CHUNK,
) -> Iterator[NodeKey]:
    """The desired state at a revision as comparison keys (see
    :data:`zkdrift.diff.NodeKey`; never ephemeral), in path digest order, one query
    per ``chunk`` rows. Without ``with_acl`` every ACL comes out as None."""
    columns = (
        Configuration.path_digest,
        Configuration.path,
        Configuration.data_digest,
        acl_text(Configuration.acl) if with_acl else null(),
        false(),
    )
    query = select(*columns).where(Configuration.tree_id == tree.id, _valid_at(revision_id))
    rows = ordered_rows(session, query, Configuration.path_digest, chunk, tree_id=tree.id)
    if not with_acl:
        # The rows are the keys already: no tuple, nor frame, of our own per entry.
        return rows
    return (
        (pd, path, dd, acl if acl is None else acl_key(acl), False)
        for pd, path, dd, acl, _ephemeral in rows
    )


def iter_desired_paths(
    session: Session, tree: Tree, revision_id: int, *, chunk: int = STREAM_CHUNK
) -> Iterator[str]:
    """The paths of the desired state at a revision, in no particular order."""
    query = select(Configuration.path).where(
        Configuration.tree_id == tree.id, _valid_at(revision_id)
    )
    for rows in streamed_chunks(session, query, None, chunk, plain=True):
        for (path,) in rows:
            yield path


def iter_desired_nodes(
    session: Session, tree: Tree, revision_id: int, *, chunk: int = STREAM_CHUNK
) -> Iterator[Znode]:
    """The desired state at a revision, sorted by path, ``chunk`` nodes at a time:
    :func:`load_desired` for states too large to hold."""
    query = select(*_VALUE_COLUMNS).where(Configuration.tree_id == tree.id, _valid_at(revision_id))
    for rows in streamed_chunks(session, query, path_order(session, Configuration.path), chunk):
        values = blob_values(session, rows)
        for r in rows:
            yield _znode(r, values)


def load_desired_nodes(
    session: Session, tree: Tree, revision_id: int, paths: Iterable[str]
) -> dict[str, Znode]:
    """The desired nodes at ``paths`` in a revision, with their values, by path;
    paths the revision lacks are left out."""
    query = select(*_VALUE_COLUMNS).where(
        Configuration.tree_id == tree.id,
        not_indexed(Configuration.valid_from) <= revision_id,
        or_(Configuration.valid_to.is_(None), Configuration.valid_to > revision_id),
    )
    rows = by_path_digest(session, query, Configuration.path_digest, paths)
    rows.sort(key=lambda r: r.path)
    values = blob_values(session, rows)
    return {r.path: _znode(r, values) for r in rows}


def write_revision(
    session: Session,
    tree: Tree,
    desired: TreeState,
    *,
    author: str,
    message: str,
    source: str,
    origin: RevisionOrigin | None = None,
    override: bool = False,
    allow_empty: bool = False,
) -> tuple[DesiredRevision, RevisionChange] | None:
    """Make ``desired`` the tree's desired state as a new revision.

    Returns None (and writes nothing) when it equals the current desired
    state, unless ``allow_empty`` (a new Git commit with the same content is
    still recorded). Ephemeral nodes are never part of desired state.
    ``origin`` records the commit a synced revision came from; ``override``
    flags a hand-made change to a tree whose desired state comes from Git.
    """
    lock_tree(session, tree)
    write = TemporalWrite(session, Configuration, tree.id, "data_digest", "acl")
    added = modified = 0
    for path, node in desired.nodes.items():
        if node.ephemeral:
            continue
        dd = digest(node.data)
        acl = acl_to_json(node.acl)
        previous = write.put(path, node.data, dd, {"acl": acl}, key=(dd, acl))
        if previous is UNCHANGED:
            continue
        if previous is None:
            added += 1
        else:
            modified += 1
    removed = write.removed
    changed = write.changed
    if not changed and not allow_empty:
        return None

    latest = latest_revision(session, tree)
    entry_count = len(desired.nodes) - sum(1 for n in desired.nodes.values() if n.ephemeral)
    revision = DesiredRevision(
        tree_id=tree.id,
        number=(latest.number + 1) if latest else 1,
        author=author,
        message=message,
        source=source,
        entry_count=entry_count,
        added=added,
        removed=removed,
        modified=modified,
        source_commit=None if origin is None else origin.commit,
        source_author=None if origin is None else origin.author[:500],
        source_message=None if origin is None else origin.message,
        source_url=None if origin is None else origin.url[:2000],
        override=override,
    )
    session.add(revision)
    session.flush()
    if changed:
        write.commit(revision.id)
    elif latest is not None and tree.applied_revision_id == latest.id:
        # Same content as the revision live was made equal to: live equals this one too.
        tree.applied_revision_id = revision.id
    session.flush()
    return revision, RevisionChange(added, removed, modified)


def write_revision_stream(
    session: Session,
    tree: Tree,
    nodes: Iterable[Znode],
    *,
    author: str,
    message: str,
    source: str,
    override: bool = False,
    chunk: int = STREAM_CHUNK,
) -> tuple[DesiredRevision, RevisionChange] | None:
    """:func:`write_revision` for a desired state too large to hold.

    ``nodes`` come sorted by path, each path once (``ValueError`` otherwise, and
    the transaction must roll back); ephemeral ones are left out. The current
    rows stream out of the store in the same order and the two are merged: each
    chunk of changes is written as it fills, in the session's transaction.
    Returns None, having written nothing, when the state equals the current one.
    """
    lock_tree(session, tree)
    latest = latest_revision(session, tree)
    revision = DesiredRevision(
        tree_id=tree.id,
        number=(latest.number + 1) if latest else 1,
        author=author,
        message=message,
        source=source,
        override=override,
    )
    session.add(revision)
    session.flush()
    rid = revision.id
    query = select(
        Configuration.id, Configuration.path, Configuration.data_digest, Configuration.acl
    ).where(
        Configuration.tree_id == tree.id,
        Configuration.valid_to.is_(None),
        Configuration.valid_from < rid,
    )
    order = path_order(session, Configuration.path)
    rows = _in_path_order(
        row for part in streamed_chunks(session, query, order, chunk) for row in part
    )
    pending = _Pending(session, tree.id, rid)
    added = modified = removed = entries = 0
    previous: str | None = None
    row = next(rows, None)
    for node in nodes:
        path = node.path
        if previous is not None and not previous < path:
            raise ValueError(f"desired nodes out of path order: {path!r} after {previous!r}")
        previous = path
        if node.ephemeral:
            continue
        entries += 1
        while row is not None and row[1] < path:
            pending.close(row[0])
            removed += 1
            row = next(rows, None)
        dd = digest(node.data)
        acl = acl_to_json(node.acl)
        if row is not None and row[1] == path:
            if row[2] == dd and row[3] == acl:
                row = next(rows, None)
                continue
            pending.close(row[0])
            modified += 1
            row = next(rows, None)
        else:
            added += 1
        pending.open(path, node.data, dd, acl)
        if pending.full(chunk):
            pending.flush()
    while row is not None:
        pending.close(row[0])
        removed += 1
        row = next(rows, None)
    pending.flush()
    if not (added or modified or removed):
        session.delete(revision)
        session.flush()
        return None
    revision.entry_count = entries
    revision.added, revision.removed, revision.modified = added, removed, modified
    session.flush()
    return revision, RevisionChange(added, removed, modified)


def _in_path_order(rows: Iterator[Any]) -> Iterator[Any]:
    """``rows`` (path second), checked to come in Python's path order, as a merge needs."""
    previous: str | None = None
    for row in rows:
        if previous is not None and not previous < row[1]:
            raise RuntimeError(f"the database sorted {row[1]!r} after {previous!r}")
        previous = row[1]
        yield row


class _Pending:
    """Rows to close and rows to open for one revision, sent a chunk at a time."""

    def __init__(self, session: Session, tree_id: int, revision_id: int) -> None:
        self.session = session
        self.tree_id = tree_id
        self.revision_id = revision_id
        self._close: list[int] = []
        self._rows: list[tuple[Any, ...]] = []
        self._values: dict[str, bytes] = {}

    def close(self, row_id: int) -> None:
        self._close.append(row_id)

    def open(self, path: str, data: bytes, data_digest: str, acl: Any) -> None:
        inline = len(data) <= INLINE_MAX
        # As the driver takes them (see insert_plain): digests as bytes, the ACL as
        # the JSON text the JSON column type writes ('null' for none).
        self._rows.append(
            (
                self.tree_id,
                path_key(path),
                path,
                bytes.fromhex(data_digest),
                data if inline else None,
                len(data),
                json.dumps(acl),
                self.revision_id,
            )
        )
        if not inline:
            self._values[data_digest] = data

    def full(self, chunk: int) -> bool:
        return len(self._rows) + len(self._close) >= chunk

    def flush(self) -> None:
        closed = close_rows(self.session, Configuration, self._close, self.revision_id)
        if closed != len(self._close):
            raise ConcurrentWriteError(
                "another writer changed the configurations of this tree while it was being"
                f" written ({closed} of {len(self._close)} rows were still open); nothing was"
                " written, run it again"
            )
        store_blobs(self.session, self._values)
        insert_plain(self.session, "configurations", _CONFIGURATION_COLUMNS, self._rows)
        self._close.clear()
        self._rows.clear()
        self._values.clear()


_CONFIGURATION_COLUMNS = (
    "tree_id",
    "path_digest",
    "path",
    "data_digest",
    "data",
    "data_length",
    "acl",
    "valid_from",
)


def latest_synced(session: Session, tree: Tree) -> DesiredRevision | None:
    """The newest revision synced from Git (None: never synced)."""
    return session.scalar(
        select(DesiredRevision)
        .where(DesiredRevision.tree_id == tree.id, DesiredRevision.source_commit.is_not(None))
        .order_by(DesiredRevision.number.desc())
        .limit(1)
    )


def mark_applied(session: Session, tree: Tree, revision: DesiredRevision | None) -> None:
    """Record that live now equals ``revision`` (after an apply or an adopt)."""
    tree.applied_revision_id = revision.id if revision is not None else None
    session.flush()


def applied_state(session: Session, tree: Tree) -> TreeState | None:
    """What zkdrift last made live equal to: the base of three-way drift."""
    if tree.applied_revision_id is None:
        return None
    revision = session.get(DesiredRevision, tree.applied_revision_id)
    if revision is None:
        return None
    return load_desired(session, tree, revision)
