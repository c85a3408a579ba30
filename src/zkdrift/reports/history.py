"""History frames: how the live tree grew and changed, snapshot by snapshot.

Vocabulary: a *change* is a difference between a snapshot and the one
before it (``added``, ``removed``, ``data_changed``, ``acl_changed``); a
tree's first snapshot is its *baseline* and has no changes. The frames never
hold digests of values; values appear only in :func:`change_log` with
``values=True``, rendered through a :class:`~zkdrift.redact.Redactor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Text, and_, case, cast, exists, func, literal, null, or_, select, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from zkdrift.errors import InvalidInputError
from zkdrift.model import ChangeKind
from zkdrift.redact import Redactor
from zkdrift.reports.common import (
    Source,
    engine_of,
    read_frame,
    redactor_of,
    tree_row,
    window_conditions,
)
from zkdrift.reports.window import When
from zkdrift.store.models import (
    Apply,
    Blob,
    DriftItem,
    DriftRun,
    NodeState,
    Snapshot,
    Tree,
    WatchEvent,
)

# Rendered values longer than this are cut (with an ellipsis) in change logs.
MAX_VALUE_CHARS = 160


def _baseline_id(tree_id: int) -> Any:
    # Never correlated: the baseline is the tree's first snapshot, whatever the outer row.
    first = aliased(Snapshot)
    return select(func.min(first.id)).where(first.tree_id == tree_id).scalar_subquery()


def snapshots_over_time(
    source: Source, name: str, *, since: When = None, until: When = None
) -> pd.DataFrame:
    """One row per snapshot: size (nodes, bytes) and changes since the previous snapshot.

    Columns: tree, snapshot_id, taken_at, nodes, bytes, added, removed,
    modified, changes, ephemeral, baseline, source, read_seconds, write_seconds.
    The baseline (the tree's first snapshot) counts every node as added.
    """
    with engine_of(source).connect() as conn:
        tree_id, _root = tree_row(conn, name)
        query = (
            select(
                literal(name).label("tree"),
                Snapshot.id.label("snapshot_id"),
                Snapshot.started_at.label("taken_at"),
                Snapshot.node_count.label("nodes"),
                Snapshot.total_bytes.label("bytes"),
                Snapshot.added,
                Snapshot.removed,
                Snapshot.modified,
                (Snapshot.added + Snapshot.removed + Snapshot.modified).label("changes"),
                Snapshot.ephemeral_count.label("ephemeral"),
                (Snapshot.id == _baseline_id(tree_id)).label("baseline"),
                Snapshot.source,
                Snapshot.read_seconds,
                Snapshot.write_seconds,
            )
            .where(
                Snapshot.tree_id == tree_id, *window_conditions(Snapshot.started_at, since, until)
            )
            .order_by(Snapshot.id)
        )
        return read_frame(
            conn,
            query,
            dates=["taken_at"],
            ints=["snapshot_id", "nodes", "bytes", "added", "removed", "modified", "changes"],
            bools=["baseline"],
        )


def _changes(tree_id: int, path_digests: Sequence[str] | None = None) -> Any:
    """Every change of a tree, as a subquery: snapshot_id, path_digest, path, kind,
    before_size, after_size, before_digest, after_digest. With ``path_digests``,
    only the changes of those paths (read through the path index).

    A node-state row opened by a snapshot is an addition when no row of the same
    path was closed by it, else a modification when data or ACL differ (rows that
    differ only in stat, such as a parent's cversion, are not changes). A row
    closed by a snapshot that opened none for its path is a removal.
    """
    new, old = aliased(NodeState), aliased(NodeState)
    baseline = _baseline_id(tree_id)
    # An ACL not read is SQL NULL (JSON null in rows before migration 0007): the
    # same "not read" on both sides, and different from any ACL that was read.
    acl_differs = func.coalesce(cast(old.acl, Text), "null") != func.coalesce(
        cast(new.acl, Text), "null"
    )
    opened = (
        select(
            new.valid_from.label("snapshot_id"),
            new.path_digest,
            new.path,
            case(
                (old.id.is_(None), literal(ChangeKind.ADDED.value)),
                (old.data_digest != new.data_digest, literal(ChangeKind.DATA_CHANGED.value)),
                else_=literal(ChangeKind.ACL_CHANGED.value),
            ).label("kind"),
            old.data_length.label("before_size"),
            new.data_length.label("after_size"),
            old.data_digest.label("before_digest"),
            new.data_digest.label("after_digest"),
            old.data.label("before_data"),
            new.data.label("after_data"),
        )
        .select_from(new)
        .outerjoin(
            old,
            and_(
                old.tree_id == new.tree_id,
                old.path_digest == new.path_digest,
                old.valid_to == new.valid_from,
            ),
        )
        .where(
            new.tree_id == tree_id,
            new.valid_from != baseline,
            or_(old.id.is_(None), old.data_digest != new.data_digest, acl_differs),
            *([] if path_digests is None else [new.path_digest.in_(path_digests)]),
        )
    )
    reopened = (
        select(new.id)
        .where(
            new.tree_id == old.tree_id,
            new.path_digest == old.path_digest,
            new.valid_from == old.valid_to,
        )
        .correlate(old)
    )
    closed = select(
        old.valid_to.label("snapshot_id"),
        old.path_digest,
        old.path,
        literal(ChangeKind.REMOVED.value).label("kind"),
        old.data_length.label("before_size"),
        null().label("after_size"),
        old.data_digest.label("before_digest"),
        null().label("after_digest"),
        old.data.label("before_data"),
        null().label("after_data"),
    ).where(
        old.tree_id == tree_id,
        old.valid_to.is_not(None),
        ~exists(reopened),
        *([] if path_digests is None else [old.path_digest.in_(path_digests)]),
    )
    return union_all(opened, closed).subquery("changes")


def change_log(
    source: Source,
    name: str,
    *,
    since: When = None,
    until: When = None,
    limit: int | None = None,
    values: bool = False,
    redactor: Redactor | None = None,
) -> pd.DataFrame:
    """Every change between consecutive snapshots, oldest first.

    Columns: tree, snapshot_id, taken_at, path, kind, before_size, after_size,
    and with ``values`` also ``before`` and ``after``: the values rendered for
    display, secrets as placeholders, long values cut at
    :data:`MAX_VALUE_CHARS`. ``limit`` keeps the newest ``limit`` changes.
    """
    with engine_of(source).connect() as conn:
        tree_id, _root = tree_row(conn, name)
        ch = _changes(tree_id)
        query = (
            select(
                literal(name).label("tree"),
                ch.c.snapshot_id,
                Snapshot.started_at.label("taken_at"),
                ch.c.path,
                ch.c.kind,
                ch.c.before_size,
                ch.c.after_size,
                ch.c.before_digest,
                ch.c.after_digest,
                ch.c.before_data,
                ch.c.after_data,
            )
            .join(Snapshot, Snapshot.id == ch.c.snapshot_id)
            .where(*window_conditions(Snapshot.started_at, since, until))
        )
        if limit is not None:
            query = query.order_by(ch.c.snapshot_id.desc(), ch.c.path.desc()).limit(limit)
        picked = query.subquery("picked")
        shown = [c for c in picked.c if not c.name.endswith(("_digest", "_data"))]
        query = select(*shown)
        if values:
            # Values are fetched for the picked changes only, after the limit.
            before, after = aliased(Blob), aliased(Blob)
            query = (
                query.add_columns(
                    func.coalesce(picked.c.before_data, before.data).label("before"),
                    func.coalesce(picked.c.after_data, after.data).label("after"),
                )
                .outerjoin(before, before.digest == picked.c.before_digest)
                .outerjoin(after, after.digest == picked.c.after_digest)
            )
        df = read_frame(
            conn,
            query,
            dates=["taken_at"],
            ints=["snapshot_id", "before_size", "after_size"],
        )
    df = df.sort_values(["snapshot_id", "path"], kind="stable", ignore_index=True)
    if values:
        rd = redactor_of(source, redactor)
        for col in ("before", "after"):
            df[col] = [
                None if data is None else _cut(rd.render(path, bytes(data)))
                for path, data in zip(df["path"], df[col], strict=True)
            ]
    return df


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _path_counts(conn: Connection, tree_id: int, since: When, until: When) -> pd.DataFrame:
    ch = _changes(tree_id)

    def kind_count(kind: ChangeKind) -> Any:
        return func.sum(case((ch.c.kind == kind.value, 1), else_=0)).label(kind.value)

    query = (
        select(
            func.max(ch.c.path).label("path"),
            func.count().label("changes"),
            kind_count(ChangeKind.ADDED),
            kind_count(ChangeKind.REMOVED),
            kind_count(ChangeKind.DATA_CHANGED),
            kind_count(ChangeKind.ACL_CHANGED),
            func.min(Snapshot.started_at).label("first_changed"),
            func.max(Snapshot.started_at).label("last_changed"),
        )
        .join(Snapshot, Snapshot.id == ch.c.snapshot_id)
        .where(*window_conditions(Snapshot.started_at, since, until))
        # Group by the digest: MariaDB groups long TEXT values by a prefix only.
        .group_by(ch.c.path_digest)
        .order_by(func.count().desc(), func.max(ch.c.path))
    )
    return read_frame(
        conn,
        query,
        dates=["first_changed", "last_changed"],
        ints=["changes", *(k.value for k in ChangeKind)],
    )


def churn_by_path(
    source: Source,
    name: str,
    *,
    since: When = None,
    until: When = None,
    limit: int | None = 20,
) -> pd.DataFrame:
    """The most changed paths, most changes first (ties by path).

    Columns: tree, path, changes, added, removed, data_changed, acl_changed,
    first_changed, last_changed.
    """
    with engine_of(source).connect() as conn:
        tree_id, _root = tree_row(conn, name)
        df = _path_counts(conn, tree_id, since, until)
    if limit is not None:
        df = df.head(limit)
    df.insert(0, "tree", name)
    return df.reset_index(drop=True)


def subtree_at(paths: pd.Series, root: str, depth: int) -> pd.Series:
    """Each path's ancestor ``depth`` levels below ``root`` (or the path itself when
    it is shallower)."""
    base = root.rstrip("/")
    rel = paths.str.slice(len(base))
    head = rel.str.split("/").str.slice(1, depth + 1).str.join("/")
    return (base + "/" + head).where(head != "", root)


def churn_by_subtree(
    source: Source,
    name: str,
    *,
    depth: int = 1,
    since: When = None,
    until: When = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Changes summed per subtree ``depth`` levels below the tree's root.

    Columns: tree, subtree, changes, paths (distinct paths changed). Counting
    runs in SQL per path; only the (much smaller) per-path result is rolled up
    to subtrees here, since path prefixes at a depth are not portable SQL.
    """
    if depth < 1:
        raise InvalidInputError(f"subtree depth must be at least 1, not {depth}")
    with engine_of(source).connect() as conn:
        tree_id, root = tree_row(conn, name)
        per_path = _path_counts(conn, tree_id, since, until)
    per_path["subtree"] = subtree_at(per_path["path"].astype(str), root, depth)
    df = (
        per_path.groupby("subtree", as_index=False)
        .agg(changes=("changes", "sum"), paths=("path", "count"))
        .sort_values(["changes", "subtree"], ascending=[False, True], kind="stable")
    )
    df["changes"] = df["changes"].astype("Int64")
    df["paths"] = df["paths"].astype("Int64")
    if limit is not None:
        df = df.head(limit)
    df.insert(0, "tree", name)
    return df.reset_index(drop=True)


def summary(source: Source, name: str, *, since: When = None, until: When = None) -> pd.DataFrame:
    """One row describing the tree and its history in the window.

    Columns: tree, root, hosts, snapshots, first_snapshot_at,
    last_snapshot_at, nodes, bytes (of the latest snapshot before ``until``),
    changes, drift_checks, open_drift, applies.
    """
    with engine_of(source).connect() as conn:
        tree_id, _root = tree_row(conn, name)
        in_window = (
            Snapshot.tree_id == tree_id,
            *window_conditions(Snapshot.started_at, since, until),
        )

        def snap_stat(expr: Any, label: str) -> Any:
            return select(expr).where(*in_window).scalar_subquery().label(label)

        def latest(column: Any, label: str) -> Any:
            return (
                select(column)
                .where(
                    Snapshot.tree_id == tree_id,
                    *window_conditions(Snapshot.started_at, None, until),
                )
                .order_by(Snapshot.id.desc())
                .limit(1)
                .scalar_subquery()
                .label(label)
            )

        latest_check = (
            select(func.max(DriftRun.id))
            .where(
                DriftRun.tree_id == tree_id,
                DriftRun.against == "desired",
                *window_conditions(DriftRun.started_at, None, until),
            )
            .scalar_subquery()
        )
        changes = func.coalesce(
            func.sum(
                case(
                    (
                        Snapshot.id != _baseline_id(tree_id),
                        Snapshot.added + Snapshot.removed + Snapshot.modified,
                    ),
                    else_=0,
                )
            ),
            0,
        )
        query = select(
            Tree.name.label("tree"),
            Tree.root,
            Tree.hosts,
            snap_stat(func.count(), "snapshots"),
            snap_stat(func.min(Snapshot.started_at), "first_snapshot_at"),
            snap_stat(func.max(Snapshot.started_at), "last_snapshot_at"),
            latest(Snapshot.node_count, "nodes"),
            latest(Snapshot.total_bytes, "bytes"),
            snap_stat(changes, "changes"),
            select(func.count())
            .where(
                DriftRun.tree_id == tree_id,
                DriftRun.against == "desired",
                *window_conditions(DriftRun.started_at, since, until),
            )
            .scalar_subquery()
            .label("drift_checks"),
            # Open drift: what the latest check before ``until`` reported.
            select(func.count())
            .where(DriftItem.run_id == latest_check)
            .scalar_subquery()
            .label("open_drift"),
            select(func.count())
            .where(Apply.tree_id == tree_id, *window_conditions(Apply.started_at, since, until))
            .scalar_subquery()
            .label("applies"),
        ).where(Tree.id == tree_id)
        df = read_frame(
            conn,
            query,
            dates=["first_snapshot_at", "last_snapshot_at"],
            ints=[
                "snapshots",
                "nodes",
                "bytes",
                "changes",
                "drift_checks",
                "open_drift",
                "applies",
            ],
        )
    return df


def history_note(summary_frame: pd.DataFrame) -> str | None:
    """A sentence to show instead of empty charts when there is too little history, else None."""
    row = summary_frame.iloc[0]
    snapshots = int(row["snapshots"] or 0)
    if snapshots == 0:
        return (
            f"Tree {row['tree']!r} has no snapshots in this window yet: "
            f"take one with 'zkdrift snapshot {row['tree']}'."
        )
    if snapshots == 1:
        return (
            f"Tree {row['tree']!r} has a single snapshot in this window "
            f"({int(row['nodes'] or 0):,} nodes): no history to compare yet."
        )
    return None


def watch_log(
    source: Source,
    name: str,
    *,
    since: When = None,
    until: When = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Every change a watcher saw as it happened (the events between snapshots),
    oldest first; ``limit`` keeps the newest ``limit``.

    Columns: tree, seen_at, path, kind (``created``, ``changed``, ``deleted``, or
    ``resync`` for a full read, with its reason in ``detail``), mzxid, version.
    Never values.
    """
    with engine_of(source).connect() as conn:
        tree_id, _root = tree_row(conn, name)
        query = select(
            literal(name).label("tree"),
            WatchEvent.id,
            WatchEvent.seen_at,
            WatchEvent.path,
            WatchEvent.kind,
            WatchEvent.mzxid,
            WatchEvent.version,
            WatchEvent.detail,
        ).where(WatchEvent.tree_id == tree_id, *window_conditions(WatchEvent.seen_at, since, until))
        if limit is not None:
            query = query.order_by(WatchEvent.id.desc()).limit(limit)
        df = read_frame(conn, query, dates=["seen_at"], ints=["id"])
    return df.sort_values("id", ignore_index=True).drop(columns=["id"])
