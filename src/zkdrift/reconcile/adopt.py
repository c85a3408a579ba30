"""Adopt: accept live (or a recorded snapshot) as the desired state.

The one operation behind ``zkdrift adopt``, ``zkdrift desired adopt`` and
``seed --register``. It takes the tree's lock (so it never reads live
halfway through somebody's apply), writes a desired-state revision, and is
audited like an apply (direction ``adopt``). The new revision is recorded as
applied only when live, read under the lock, equals it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zkdrift.app import App
from zkdrift.desired import RevisionResult, refuse_hand_change, write_state, write_streamed
from zkdrift.diff import diff
from zkdrift.errors import InvalidInputError, RootNotFoundError
from zkdrift.model import Change, OpStatus, TreeState, Znode
from zkdrift.paths import matches_self_or_ancestor
from zkdrift.plan import make_plan
from zkdrift.reconcile.apply import DEFAULT_LOCK_WAIT
from zkdrift.reconcile.audit import AuditedRun, audited_run
from zkdrift.reconcile.outcomes import Direction, Outcome
from zkdrift.reconcile.planning import load_tree, read_live, record_live
from zkdrift.scope import scope_of
from zkdrift.store import audit as audit_store
from zkdrift.store import compare
from zkdrift.store import desired as desired_store
from zkdrift.store import snapshots as snapshot_store
from zkdrift.store import trees as tree_store
from zkdrift.store.compare import Side
from zkdrift.store.models import Tree
from zkdrift.zk import client as zk
from zkdrift.zk.lock import held_lock, make_identifier


@dataclass(frozen=True)
class AdoptResult:
    """An adopt: what it took as desired, the revision it wrote (None when desired
    already equalled it) and the revision now recorded as applied (None when live
    differs from the new desired state, e.g. after adopting an older snapshot)."""

    apply_id: int
    tree: str
    snapshot_id: int
    revision: RevisionResult | None
    applied_revision: int | None
    added: int
    removed: int
    modified: int
    paths: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.revision is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "apply_id": self.apply_id,
            "tree": self.tree,
            "snapshot_id": self.snapshot_id,
            "changed": self.changed,
            "revision": None if self.revision is None else self.revision.as_json(),
            "applied_revision": self.applied_revision,
            "added": self.added,
            "removed": self.removed,
            "modified": self.modified,
            "paths": list(self.paths),
        }


def _selected(
    tree: Tree, current: dict[str, Znode], taken: dict[str, Znode], globs: Sequence[str]
) -> dict[str, Znode]:
    """``current`` with the paths matching ``globs`` replaced by what was ``taken``.

    A glob matches a path when it matches the path or one of its ancestors,
    so ``/app/db`` adopts that whole subtree.
    """
    candidates = set(current) | set(taken)
    unmatched = [g for g in globs if not any(matches_self_or_ancestor(p, [g]) for p in candidates)]
    if unmatched:
        # A glob that matches nothing is a typo far more often than a no-op.
        raise InvalidInputError(
            f"--paths {', '.join(repr(g) for g in unmatched)} match no managed path of tree "
            f"{tree.name!r}"
        )
    new = dict(current)
    for p in candidates:
        if matches_self_or_ancestor(p, globs):
            if p in taken:
                new[p] = taken[p]
            else:
                new.pop(p, None)
    return new


def adopt(
    app: App,
    name: str,
    *,
    paths: Sequence[str] = (),
    snapshot_id: int | None = None,
    message: str | None = None,
    actor: str | None = None,
    source: str = "adopt",
    wait: float = DEFAULT_LOCK_WAIT,
    override: bool = False,
) -> AdoptResult:
    """Desired := live for the paths matching ``paths`` (all managed paths when empty).

    Live is read under the tree's lock and recorded as a snapshot. With
    ``snapshot_id``, that recorded snapshot is adopted instead of live. Only
    what the tree manages is adopted: no ephemeral, excluded, not-included
    or zkdrift-owned nodes; ACLs when the tree captures them.
    """
    tree = load_tree(app, name)
    refuse_hand_change(tree, "adopt", override=override)
    who = app.actor(actor)
    what = f"snapshot {snapshot_id}" if snapshot_id is not None else "live state"
    reason = message or f"adopt {what}"
    with audited_run(app, tree, direction=Direction.ADOPT, actor=who, reason=reason) as run:
        identifier = make_identifier(uuid.uuid4().hex[:12], who, purpose=f"adopt {run.apply_id}")
        run.lock_identifier = identifier
        with (
            zk.session(app.target(tree)) as client,
            held_lock(client, app.lock_path(tree), identifier, wait=wait),
        ):
            live = read_live(client, tree)
        if live is None:
            raise RootNotFoundError(
                f"the root {tree.root} of tree {tree.name!r} does not exist live: nothing to adopt"
            )
        live_id = record_live(app, tree, live, source)
        assert live_id is not None  # live exists
        if not paths and snapshot_id is None:
            # All of live, as recorded: streamed out of the store, never held whole.
            del live
            changes, revision, applied, run.revision_id = _adopt_recorded(
                app, tree, live_id, who=who, reason=reason, source=source, override=override
            )
            return _finish(run, tree, what, live_id, changes, revision, applied)
        taken_state = live if snapshot_id is None else _recorded(app, tree, snapshot_id)
        scope = app.scope(tree)
        taken = {
            p: Znode(p, n.data, None, n.acl if tree.capture_acl else None)
            for p, n in scope.managed(taken_state).items()
        }
        with app.db.session() as session:
            attached = tree_store.get_tree(session, tree.name)
            # Under the tree's write lock: a partial adopt keeps the rest of the
            # desired state as it is now, not as it was a moment ago.
            tree_store.lock_tree(session, attached)
            current = desired_store.load_desired(session, attached)
            new = _selected(tree, dict(current.nodes), taken, paths) if paths else taken
            changes = diff(current, new, compare_acl=tree.capture_acl)
            revision = write_state(
                app,
                session,
                attached,
                TreeState(tree.root, new),
                author=who,
                message=reason,
                source=source,
                override=override,
            )
            latest = desired_store.latest_revision(session, attached)
            # Live (read under the ZooKeeper lock) equals the new desired state:
            # nothing an apply would do, so it is applied.
            in_sync = make_plan(
                tree.name,
                new,
                scope.plan_view(live.nodes),
                prune=True,
                compare_acl=tree.capture_acl,
                root=tree.root,
            ).empty
            applied = None
            if in_sync and latest is not None:
                desired_store.mark_applied(session, attached, latest)
                applied = latest.number
            run.revision_id = None if latest is None else latest.id
        return _finish(
            run,
            tree,
            what,
            live_id if snapshot_id is None else snapshot_id,
            changes,
            revision,
            applied,
        )


def _finish(
    run: AuditedRun,
    tree: Tree,
    what: str,
    snapshot_id: int,
    changes: Sequence[Change],
    revision: RevisionResult | None,
    applied: int | None,
) -> AdoptResult:
    """Audit what an adopt changed and describe it."""
    shown = run.app.redactor().digest
    records = [
        audit_store.OpRecord(
            kind=str(c.kind),
            path=c.path,
            expected_version=None,
            before_digest=None if c.before is None else shown(c.path, c.before.data),
            after_digest=None if c.after is None else shown(c.path, c.after.data),
            outcome=str(OpStatus.ADOPTED),
        )
        for c in changes
    ]
    run.ops_total = len(records)
    run.record(0, records)
    if revision is None:
        run.close(Outcome.NO_OP, "desired already equals " + what)
    else:
        run.close(Outcome.ADOPTED, f"desired-state revision {revision.revision}")
    return AdoptResult(
        apply_id=run.apply_id,
        tree=tree.name,
        snapshot_id=snapshot_id,
        revision=revision,
        applied_revision=applied,
        added=0 if revision is None else revision.added,
        removed=0 if revision is None else revision.removed,
        modified=0 if revision is None else revision.modified,
        paths=tuple(sorted({c.path for c in changes})),
    )


def _taken(node: Znode, with_acl: bool) -> Znode:
    """A live node as desired state: its data, and its ACL when the tree captures them."""
    return Znode(node.path, node.data, None, node.acl if with_acl else None)


def _adopt_recorded(
    app: App, tree: Tree, snapshot_id: int, *, who: str, reason: str, source: str, override: bool
) -> tuple[list[Change], RevisionResult | None, int | None, int | None]:
    """Desired := everything the tree manages of a recorded snapshot, streamed.

    Live was recorded under the lock just now, so it equals the new desired
    state: the new revision is recorded as applied (a plan of it against live
    would create, change and delete nothing). Returns what changed, the
    revision written (None: desired already held it), the applied revision
    number and id.
    """
    capture = tree.capture_acl
    managed = app.scope(tree).path_filter(keep_ephemeral=False)
    everything = scope_of("/", (), ()).path_filter(keep_ephemeral=True)
    live_side = Side("snapshot", snapshot_id)
    with app.db.session() as session:
        attached = tree_store.get_tree(session, tree.name)
        # Under the tree's write lock: the revision compared with is the one replaced.
        tree_store.lock_tree(session, attached)
        current = desired_store.latest_revision(session, attached)
        found = compare.differences(
            session,
            attached,
            None if current is None else Side("desired", current.id),
            live_side,
            left_view=everything,
            right_view=managed,
            compare_acl=capture,
        )
        taken = {p: _taken(n, capture) for p, n in found.right.items() if managed(p, n.ephemeral)}
        changes = diff(found.left, taken, compare_acl=capture)
        nodes = (
            _taken(n, capture)
            for n in snapshot_store.iter_snapshot_nodes(session, attached, snapshot_id)
            if managed(n.path, n.ephemeral)
        )
        revision = write_streamed(
            app,
            session,
            attached,
            nodes,
            author=who,
            message=reason,
            source=source,
            override=override,
        )
        latest = desired_store.latest_revision(session, attached)
        if latest is None:
            return changes, revision, None, None
        desired_store.mark_applied(session, attached, latest)
        return changes, revision, latest.number, latest.id


def _recorded(app: App, tree: Tree, snapshot_id: int) -> TreeState:
    with app.db.session() as session:
        snap = snapshot_store.get_snapshot(session, tree, snapshot_id)
        return snapshot_store.load_snapshot(session, tree, snap)
