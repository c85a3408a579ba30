"""One line per tree: where it stands. The overview behind ``zkdrift status``.

Reads only the database (no ZooKeeper round trip), so it answers at once even
when a cluster is unreachable: the last snapshot, the desired revision and
whether live was last made equal to it, the last drift check, the last apply.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zkdrift.app import App
from zkdrift.policy import InvalidPolicyError
from zkdrift.store import trees as tree_store
from zkdrift.store import watch as watch_store
from zkdrift.store.drift import out_of_sync_since
from zkdrift.store.models import Apply, DesiredRevision, DriftRun, Snapshot, Tree, utcnow
from zkdrift.store.watch import POLLING, STALE_SECONDS, STOPPED, WATCHING
from zkdrift.vocabulary import iso


@dataclass(frozen=True)
class TreeStatus:
    tree: str
    hosts: str
    root: str
    schedule: str | None
    reconcile: str
    policy_error: str | None
    snapshots: int
    last_snapshot_id: int | None
    last_snapshot_at: dt.datetime | None
    nodes: int | None
    desired_revision: int | None
    applied_revision: int | None
    last_check_at: dt.datetime | None
    drift: int | None
    pending: int | None
    conflict: int | None
    drifted_since: dt.datetime | None  # first of the checks finding differences without a break
    last_apply_at: dt.datetime | None
    last_apply_direction: str | None
    last_apply_outcome: str | None
    last_apply_actor: str | None
    # The watcher following the tree: watching, polling (a server without addWatch)
    # or refused; None when no watcher runs. Its last change seen and last full read.
    watch: str | None = None
    last_event_at: dt.datetime | None = None
    last_resync_at: dt.datetime | None = None

    @property
    def watched(self) -> bool:
        return self.watch in (WATCHING, POLLING)

    @property
    def in_sync(self) -> bool | None:
        """True when the last check found nothing; None when never checked."""
        if self.drift is None or self.pending is None or self.conflict is None:
            return None
        return self.drift + self.pending + self.conflict == 0

    @property
    def differences(self) -> int | None:
        """Paths the last check found differing from desired; None when never checked."""
        if self.drift is None or self.pending is None or self.conflict is None:
            return None
        return self.drift + self.pending + self.conflict

    def as_json(self) -> dict[str, Any]:
        out = {k: iso(v) if isinstance(v, dt.datetime) else v for k, v in vars(self).items()}
        out["in_sync"] = self.in_sync
        out["differences"] = self.differences
        out["watched"] = self.watched
        return out


def _tree_status(session: Session, tree: Tree) -> TreeStatus:
    snapshot_count, last_snapshot_id = session.execute(
        select(func.count(Snapshot.id), func.max(Snapshot.id)).where(Snapshot.tree_id == tree.id)
    ).one()
    snap = session.get(Snapshot, last_snapshot_id) if last_snapshot_id else None
    desired = session.scalar(
        select(func.max(DesiredRevision.number)).where(DesiredRevision.tree_id == tree.id)
    )
    applied = (
        session.scalar(
            select(DesiredRevision.number).where(DesiredRevision.id == tree.applied_revision_id)
        )
        if tree.applied_revision_id is not None
        else None
    )
    check = session.scalar(
        select(DriftRun)
        .where(DriftRun.tree_id == tree.id, DriftRun.against == "desired")
        .order_by(DriftRun.id.desc())
        .limit(1)
    )
    last_apply = session.scalar(
        select(Apply)
        .where(Apply.tree_id == tree.id, Apply.dry_run.is_(False))
        .order_by(Apply.id.desc())
        .limit(1)
    )
    watch = watch_store.watch_of(session, tree)
    watch_mode = None
    if watch is not None and watch.mode != STOPPED:
        fresh = utcnow() - watch.heartbeat_at < dt.timedelta(seconds=STALE_SECONDS)
        watch_mode = watch.mode if fresh else None
    try:
        policy = tree.policy
        schedule = None if policy.schedule is None else policy.schedule.describe()
        reconcile, policy_error = str(policy.reconcile), None
    except InvalidPolicyError as exc:
        schedule, reconcile, policy_error = None, "?", str(exc)
    return TreeStatus(
        tree=tree.name,
        hosts=tree.hosts,
        root=tree.root,
        schedule=schedule,
        reconcile=reconcile,
        policy_error=policy_error,
        snapshots=int(snapshot_count or 0),
        last_snapshot_id=snap.id if snap else None,
        last_snapshot_at=snap.started_at if snap else None,
        nodes=snap.node_count if snap else None,
        desired_revision=desired,
        applied_revision=applied,
        last_check_at=check.started_at if check else None,
        drift=check.drift if check else None,
        pending=check.pending if check else None,
        conflict=check.conflict if check else None,
        drifted_since=out_of_sync_since(session, tree) if check and check.total else None,
        last_apply_at=last_apply.started_at if last_apply else None,
        last_apply_direction=last_apply.direction if last_apply else None,
        last_apply_outcome=last_apply.outcome if last_apply else None,
        last_apply_actor=last_apply.actor if last_apply else None,
        watch=watch_mode,
        last_event_at=watch.last_event_at if watch else None,
        last_resync_at=watch.last_resync_at if watch else None,
    )


def tree_statuses(app: App, names: list[str] | None = None) -> list[TreeStatus]:
    """The status of the named trees (every registered tree when none are named)."""
    with app.db.session() as session:
        trees = (
            [tree_store.get_tree(session, n) for n in names]
            if names
            else tree_store.list_trees(session)
        )
        return [_tree_status(session, t) for t in trees]
