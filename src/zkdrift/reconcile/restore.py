"""Restore: make live what the tree held at a recorded snapshot, in one step.

The snapshot is named by id, or found by time: the snapshot in force at a
time is the last one taken at or before it (a time between two snapshots
picks the earlier one, and says so). The restore writes a desired revision
that says what it restores, shows the plan, and (when told to go ahead)
applies it under the tree's lock, audited as ``restore``. It prunes: nodes
created since the snapshot are deleted (with ``paths``, only under them).
Ephemeral and excluded nodes are never touched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from zkdrift.app import App
from zkdrift.desired import RevisionResult, refuse_hand_change, write_state
from zkdrift.errors import InvalidInputError, UnknownSnapshotError
from zkdrift.model import TreeState, Znode
from zkdrift.reconcile.adopt import _selected
from zkdrift.reconcile.apply import DEFAULT_LOCK_WAIT, apply_tree
from zkdrift.reconcile.outcomes import ApplyResult, Direction, PlanResult
from zkdrift.reconcile.planning import compute, guards, load_tree, plan_result, read_live
from zkdrift.store import desired as desired_store
from zkdrift.store import snapshots as snapshot_store
from zkdrift.store import trees as tree_store
from zkdrift.store.models import Snapshot, Tree
from zkdrift.vocabulary import iso, utc_text
from zkdrift.zk import client as zk


@dataclass(frozen=True)
class SnapshotChoice:
    """The snapshot a restore goes back to, and why it is that one."""

    snapshot_id: int
    taken_at: dt.datetime
    note: str


@dataclass(frozen=True)
class RestoreResult:
    """A restore: the snapshot, the revision it wrote (None for a preview, which writes
    nothing), the plan, and the apply (None for a preview)."""

    tree: str
    choice: SnapshotChoice
    paths: tuple[str, ...]
    revision: RevisionResult | None
    plan: PlanResult | None
    apply: ApplyResult | None

    @property
    def preview(self) -> bool:
        return self.apply is None

    @property
    def ok(self) -> bool:
        return self.apply is None or self.apply.ok

    def as_json(self, redactor: Any) -> dict[str, Any]:
        return {
            "tree": self.tree,
            "snapshot_id": self.choice.snapshot_id,
            "snapshot_taken_at": iso(self.choice.taken_at),
            "note": self.choice.note,
            "paths": list(self.paths),
            "preview": self.preview,
            "revision": None if self.revision is None else self.revision.as_json(),
            "plan": None if self.plan is None else self.plan.as_json(redactor),
            "apply": None if self.apply is None else self.apply.as_json(redactor),
        }


def _naive_utc(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        return when
    return when.astimezone(dt.UTC).replace(tzinfo=None)


def choose_snapshot(
    app: App, name: str, *, snapshot_id: int | None = None, at: dt.datetime | None = None
) -> SnapshotChoice:
    """Snapshot ``snapshot_id``, or the one in force at ``at`` (naive times are UTC):
    the last taken at or before it."""
    if (snapshot_id is None) == (at is None):
        raise InvalidInputError("give the snapshot to restore: --snapshot ID or --at TIME")
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        if snapshot_id is not None:
            snap = snapshot_store.get_snapshot(session, tree, snapshot_id)
            return SnapshotChoice(
                snap.id,
                snap.started_at,
                f"snapshot {snap.id}, taken {utc_text(snap.started_at)}",
            )
        assert at is not None
        when = _naive_utc(at)
        by_tree = select(Snapshot).where(Snapshot.tree_id == tree.id)
        before = session.scalar(
            by_tree.where(Snapshot.started_at <= when)
            .order_by(Snapshot.started_at.desc(), Snapshot.id.desc())
            .limit(1)
        )
        after = session.scalar(
            by_tree.where(Snapshot.started_at > when)
            .order_by(Snapshot.started_at, Snapshot.id)
            .limit(1)
        )
        if before is None:
            first = (
                "it has no snapshots yet"
                if after is None
                else f"its first is snapshot {after.id}, taken {utc_text(after.started_at)}"
            )
            raise UnknownSnapshotError(
                f"no snapshot of tree {name!r} was taken at or before {utc_text(when)}; {first}"
            )
        taken = f"snapshot {before.id}, taken {utc_text(before.started_at)}"
        if before.started_at == when:
            note = f"{taken}: taken at {utc_text(when)} exactly"
        elif after is None:
            note = f"{taken}: the latest snapshot, in force at {utc_text(when)}"
        else:
            note = (
                f"{taken}: {utc_text(when)} falls between snapshot {before.id} and snapshot"
                f" {after.id} (taken {utc_text(after.started_at)}), so the earlier one, in"
                " force then, is restored"
            )
        return SnapshotChoice(before.id, before.started_at, note)


def _target(app: App, tree: Tree, choice: SnapshotChoice, paths: Sequence[str]) -> dict[str, Znode]:
    """The desired state that makes live equal the snapshot (for ``paths`` only, when given)."""
    with app.db.session() as session:
        attached = tree_store.get_tree(session, tree.name)
        snap = snapshot_store.get_snapshot(session, attached, choice.snapshot_id)
        with_acl = bool(snap.with_acl) and tree.capture_acl
        recorded = snapshot_store.load_snapshot(session, attached, snap)
        current = dict(desired_store.load_desired(session, attached).nodes)
    taken: dict[str, Znode] = {}
    for path, node in app.scope(tree).managed(recorded).items():
        keep = current.get(path)
        acl = node.acl if with_acl else (None if keep is None else keep.acl)
        taken[path] = Znode(path, node.data, None, acl)
    return _selected(tree, current, taken, paths) if paths else taken


def restore(
    app: App,
    name: str,
    *,
    snapshot_id: int | None = None,
    at: dt.datetime | None = None,
    choice: SnapshotChoice | None = None,
    paths: Sequence[str] = (),
    yes: bool = False,
    force: bool = False,
    reason: str = "",
    actor: str | None = None,
    override: bool = False,
    wait: float = DEFAULT_LOCK_WAIT,
) -> RestoreResult:
    """Make live equal what ``name`` held at a snapshot (see the module docs).

    Without ``yes`` it is a preview: live is read and the plan shown, and
    nothing is written anywhere. With ``yes`` it writes the desired revision
    and applies it under the lock (direction ``restore``); ``force`` lifts
    the size guards (a restore often deletes). ``choice`` is a snapshot
    already chosen (:func:`choose_snapshot`), e.g. for a preview then the restore.
    """
    tree = load_tree(app, name)
    refuse_hand_change(tree, "restore", override=override)
    if choice is None:
        choice = choose_snapshot(app, name, snapshot_id=snapshot_id, at=at)
    globs = tuple(paths)
    target = TreeState(tree.root, _target(app, tree, choice, globs))
    where = f" ({', '.join(globs)})" if globs else ""
    if not yes:
        with zk.session(app.target(tree)) as client:
            live = read_live(client, tree)
            plan = compute(app, tree, target, live, prune=True, client=client, prune_only=globs)
        refusals = guards(app, tree, plan, target, live, force=force)
        preview = plan_result(
            plan, None, refusals, snapshot_id=None, desired=None, prune=True, live=live
        )
        return RestoreResult(name, choice, globs, None, preview, None)
    who = app.actor(actor)
    message = f"restore {choice.note}{where}"
    with app.db.session() as session:
        attached = tree_store.get_tree(session, name)
        tree_store.lock_tree(session, attached)
        revision = write_state(
            app,
            session,
            attached,
            target,
            author=who,
            message=message,
            source="restore",
            override=override,
            # Recorded even when desired already held the snapshot (live drifted):
            # the revision says what was restored, and when.
            allow_empty=True,
        )
        latest = desired_store.latest_revision(session, attached)
        expected = None if latest is None else latest.id
    number = "" if latest is None else f" as desired revision {latest.number}"
    applied = apply_tree(
        app,
        name,
        yes=True,
        prune=True,
        force=force,
        reason=f"restore to snapshot {choice.snapshot_id}{where}{number}"
        + (f": {reason}" if reason else ""),
        actor=who,
        wait=wait,
        direction=Direction.RESTORE,
        prune_only=globs,
        expect_revision_id=expected,
    )
    return RestoreResult(name, choice, globs, revision, applied.plan, applied)
