"""What watchers record: the changes they see, their resyncs, and whether a tree is watched.

Events carry paths, kinds and zxids, never values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zkdrift.model import path_digest
from zkdrift.store.bulk import bulk_insert
from zkdrift.store.models import DriftRun, Tree, TreeWatch, WatchEvent, utcnow
from zkdrift.store.trees import lock_tree

RESYNC = "resync"
# A watcher's modes: following notifications, reading the tree in full now and then
# (its servers have no addWatch), or stopped.
WATCHING = "watching"
POLLING = "polling"
STOPPED = "stopped"
HEARTBEAT_SECONDS = 5.0
# A watch row whose heartbeat is older than this belongs to a watcher that is gone.
STALE_SECONDS = 4 * HEARTBEAT_SECONDS


@dataclass(frozen=True, slots=True)
class SeenChange:
    """One notification as recorded: ``mzxid``/``version`` None when not read."""

    path: str
    kind: str
    mzxid: int | None = None
    version: int | None = None


def record_events(
    session: Session, tree: Tree, changes: Sequence[SeenChange], *, seen_at: dt.datetime
) -> None:
    rows: list[dict[str, Any]] = [
        {
            "tree_id": tree.id,
            "path_digest": path_digest(c.path),
            "path": c.path,
            "kind": c.kind,
            "mzxid": c.mzxid,
            "version": c.version,
            "seen_at": seen_at,
            "detail": None,
        }
        for c in changes
    ]
    bulk_insert(session, WatchEvent, rows)


def record_resync(
    session: Session, tree: Tree, *, reason: str, zxid: int, seen_at: dt.datetime
) -> None:
    session.add(
        WatchEvent(
            tree_id=tree.id,
            path_digest=path_digest(tree.root),
            path=tree.root,
            kind=RESYNC,
            mzxid=zxid,
            seen_at=seen_at,
            detail=reason[:500],
        )
    )
    session.flush()


def set_watch(
    session: Session,
    tree: Tree,
    *,
    mode: str,
    detail: str | None,
    host: str,
    pid: int,
    started_at: dt.datetime,
    event_at: dt.datetime | None = None,
    resync_at: dt.datetime | None = None,
) -> None:
    """Upsert the tree's watch row: mode and heartbeat now, last event/resync when given.

    Takes the tree's lock first, so two watchers of one tree never both insert.
    """
    lock_tree(session, tree)
    row = session.get(TreeWatch, tree.id, populate_existing=True)
    now = utcnow()
    if row is None:
        row = TreeWatch(tree_id=tree.id, started_at=started_at, last_event_at=None)
        session.add(row)
    row.mode = mode
    row.detail = None if detail is None else detail[:500]
    row.host = host[:255]
    row.pid = pid
    row.started_at = started_at
    row.heartbeat_at = now
    if event_at is not None:
        row.last_event_at = event_at
    if resync_at is not None:
        row.last_resync_at = resync_at
    session.flush()


def watch_of(session: Session, tree: Tree) -> TreeWatch | None:
    return session.get(TreeWatch, tree.id)


def latest_total(session: Session, tree: Tree) -> int | None:
    """How many differences the tree's latest check against desired found (None: never)."""
    return session.scalar(
        select(DriftRun.total)
        .where(DriftRun.tree_id == tree.id, DriftRun.against == "desired")
        .order_by(DriftRun.id.desc())
        .limit(1)
    )


def events_of(
    session: Session, tree: Tree, *, kinds: Sequence[str] | None = None
) -> list[WatchEvent]:
    """The tree's recorded events, oldest first."""
    query = select(WatchEvent).where(WatchEvent.tree_id == tree.id)
    if kinds is not None:
        query = query.where(WatchEvent.kind.in_(list(kinds)))
    return list(session.scalars(query.order_by(WatchEvent.id)))


def event_count(session: Session, tree: Tree) -> int:
    return int(
        session.scalar(select(func.count(WatchEvent.id)).where(WatchEvent.tree_id == tree.id)) or 0
    )
