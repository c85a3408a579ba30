"""Adopt: accept live (or a recorded snapshot) as the desired state.

The one operation behind ``zkdrift adopt``, ``zkdrift desired adopt`` and
``seed --register``. It takes the tree's lock (so it never reads live
halfway through somebody's apply), writes a desired-state revision, and is
audited like an apply (direction ``adopt``). The new revision is recorded as
applied only when live, read under the lock, equals it.
"""

from __future__ import annotations

import pickle
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from zkdrift.app import App
from zkdrift.desired import RevisionResult, refuse_hand_change, write_state, write_streamed
from zkdrift.diff import NodeKey, diff, differing
from zkdrift.errors import InvalidInputError, RootNotFoundError
from zkdrift.model import Change, ChangeKind, OpStatus, TreeState, Znode
from zkdrift.paths import matches_self_or_ancestor
from zkdrift.plan import make_plan
from zkdrift.reconcile.apply import DEFAULT_LOCK_WAIT
from zkdrift.reconcile.audit import AuditedRun, audited_run
from zkdrift.reconcile.outcomes import Direction, Outcome
from zkdrift.reconcile.planning import load_tree
from zkdrift.redact import Redactor
from zkdrift.scope import PathFilter, scope_of
from zkdrift.snapshot import capture_with
from zkdrift.store import audit as audit_store
from zkdrift.store import compare
from zkdrift.store import desired as desired_store
from zkdrift.store import snapshots as snapshot_store
from zkdrift.store import trees as tree_store
from zkdrift.store.compare import Counts, Side
from zkdrift.store.models import Tree
from zkdrift.zk import client as zk
from zkdrift.zk.lock import held_lock, make_identifier


@dataclass(frozen=True)
class AdoptResult:
    """An adopt: what it took as desired, the revision it wrote (None when desired
    already equalled it) and the revision now recorded as applied (None when live
    differs from the new desired state, e.g. after adopting an older snapshot).
    ``paths`` names the first :data:`PATHS_SHOWN` changed paths in path order,
    ``paths_total`` counts them all (every one is audited)."""

    apply_id: int
    tree: str
    snapshot_id: int
    revision: RevisionResult | None
    applied_revision: int | None
    added: int
    removed: int
    modified: int
    paths: tuple[str, ...]
    paths_total: int

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
            "paths_total": self.paths_total,
        }


# The order diff() gives the changes of one path.
_KIND_ORDER = {kind: i for i, kind in enumerate(ChangeKind)}
# Changed paths an adopt's result names (all of them are audited).
PATHS_SHOWN = 1000
# Differing paths whose changes are worked out at a time.
CHANGES_CHUNK = 2000


class _Changes:
    """An adopt's changes as audit records, spooled to a temporary file while the
    tree's store lock is held (the audit writes in transactions of its own) and
    written a chunk at a time afterwards: memory holds one chunk, whatever the
    number of changes."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by write()
        self.count = 0
        self.paths_total = 0
        self.first_paths: list[str] = []

    def add(self, changes: Sequence[Change]) -> None:
        shown = self.redactor.digest
        adopted = str(OpStatus.ADOPTED)
        self._add(
            [
                _record(
                    c.kind,
                    c.path,
                    None if c.before is None else shown(c.path, c.before.data),
                    None if c.after is None else shown(c.path, c.after.data),
                    adopted,
                )
                for c in changes
            ]
        )

    def add_pairs(
        self,
        pairs: Sequence[tuple[NodeKey | None, NodeKey | None]],
        load: Callable[[list[str]], tuple[dict[str, Znode], dict[str, Znode]]],
        *,
        compare_acl: bool,
    ) -> None:
        """The changes of ``pairs`` from :func:`~zkdrift.diff.differing` (before,
        after), as :func:`~zkdrift.diff.diff` finds them in the nodes: the digests
        of values come from the keys, except for secret paths, whose values
        ``load`` reads for their keyed digests."""
        is_secret = self.redactor.is_secret
        secret = [path for path in map(_path_of, pairs) if is_secret(path)]
        before_nodes, after_nodes = load(secret) if secret else ({}, {})
        keyed = self.redactor.digest
        adopted = str(OpStatus.ADOPTED)
        found: list[tuple[str, int, audit_store.OpRecord]] = []
        for lrow, rrow in pairs:
            path = _path_of((lrow, rrow))
            if path in before_nodes or path in after_nodes:
                before = None if lrow is None else keyed(path, before_nodes[path].data)
                after = None if rrow is None else keyed(path, after_nodes[path].data)
            else:
                before = None if lrow is None else _hex(lrow[2])
                after = None if rrow is None else _hex(rrow[2])

            if lrow is None:
                kinds = [ChangeKind.ADDED]
            elif rrow is None:
                kinds = [ChangeKind.REMOVED]
            else:
                kinds = [ChangeKind.DATA_CHANGED] if lrow[2] != rrow[2] else []
                lacl, racl = lrow[3], rrow[3]
                if compare_acl and lacl is not None and racl is not None and lacl != racl:
                    kinds.append(ChangeKind.ACL_CHANGED)
            found.extend(
                (path, _KIND_ORDER[kind], _record(kind, path, before, after, adopted))
                for kind in kinds
            )
        found.sort(key=lambda f: (f[0], f[1]))
        self._add([record for _path, _order, record in found])

    def _add(self, records: list[audit_store.OpRecord]) -> None:
        if records:
            pickle.dump(records, self.spool)
        self.count += len(records)
        paths = {r.path for r in records}
        self.paths_total += len(paths)
        self.first_paths.extend(paths)
        if len(self.first_paths) > 2 * PATHS_SHOWN:
            self.first_paths = sorted(self.first_paths)[:PATHS_SHOWN]

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(sorted(self.first_paths)[:PATHS_SHOWN])

    def write(self, run: AuditedRun) -> None:
        """Audit every change, in the order they were found."""
        run.ops_total = self.count
        self.spool.seek(0)
        first = 0
        try:
            while True:
                try:
                    records: list[audit_store.OpRecord] = pickle.load(self.spool)
                except EOFError:
                    break
                run.record(first, records, remember=False)
                first += len(records)
            if not first:
                run.record(0, [])
        finally:
            self.spool.close()


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

    Live is read under the tree's lock and recorded as a snapshot, streamed as
    ``zkdrift snapshot`` records it. With ``snapshot_id``, that recorded
    snapshot is adopted instead of live. Only what the tree manages is adopted:
    no ephemeral, excluded, not-included or zkdrift-owned nodes; ACLs when the
    tree captures them. Without ``paths`` the adopt streams out of the store
    and back in: memory does not grow with the tree.
    """
    tree = load_tree(app, name)
    refuse_hand_change(tree, "adopt", override=override)
    if snapshot_id is not None:
        with app.db.session() as session:
            snapshot_store.get_snapshot(session, tree, snapshot_id)  # known, before any read
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
            try:
                live_id = capture_with(app, tree, client, source=source).snapshot_id
            except RootNotFoundError as exc:
                raise RootNotFoundError(
                    f"the root {tree.root} of tree {tree.name!r} does not exist live:"
                    " nothing to adopt"
                ) from exc
        taken_id = live_id if snapshot_id is None else snapshot_id
        changes = _Changes(run.app.redactor())
        if not paths:
            revision, applied, run.revision_id = _adopt_recorded(
                app,
                tree,
                taken_id,
                live_id,
                changes,
                who=who,
                reason=reason,
                source=source,
                override=override,
            )
            return _finish(run, tree, what, taken_id, changes, revision, applied)
        live = _recorded(app, tree, live_id)
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
            new = _selected(tree, dict(current.nodes), taken, paths)
            changes.add(diff(current, new, compare_acl=tree.capture_acl))
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
        return _finish(run, tree, what, taken_id, changes, revision, applied)


def _finish(
    run: AuditedRun,
    tree: Tree,
    what: str,
    snapshot_id: int,
    changes: _Changes,
    revision: RevisionResult | None,
    applied: int | None,
) -> AdoptResult:
    """Audit what an adopt changed and describe it."""
    changes.write(run)
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
        paths=changes.paths,
        paths_total=changes.paths_total,
    )


def _path_of(pair: tuple[NodeKey | None, NodeKey | None]) -> str:
    row = pair[1] if pair[1] is not None else pair[0]
    assert row is not None  # a pair has a row on one side at least
    return row[1]


def _hex(value: Any) -> str:
    """A stored data digest (bytes from the driver) as the hex text of :func:`digest`."""
    return value if isinstance(value, str) else bytes(value).hex()


def _record(
    kind: ChangeKind, path: str, before: str | None, after: str | None, outcome: str
) -> audit_store.OpRecord:
    return audit_store.OpRecord(
        kind=str(kind),
        path=path,
        expected_version=None,
        before_digest=before,
        after_digest=after,
        outcome=outcome,
    )


def _taken(node: Znode, with_acl: bool) -> Znode:
    """A live node as desired state: its data, and its ACL when the tree captures them."""
    return Znode(node.path, node.data, None, node.acl if with_acl else None)


def _kept(session: Any, tree: Tree, side: Side | None, view: PathFilter) -> Iterator[NodeKey]:
    """The comparison keys of ``side`` that ``view`` keeps, in path digest order."""
    keys = compare.keys(session, tree, side, with_acl=tree.capture_acl)
    return Counts(tree.root).counted(keys, view)


def _adopt_recorded(
    app: App,
    tree: Tree,
    taken_id: int,
    live_id: int,
    changes: _Changes,
    *,
    who: str,
    reason: str,
    source: str,
    override: bool,
) -> tuple[RevisionResult | None, int | None, int | None]:
    """Desired := everything the tree manages of a recorded snapshot, streamed.

    The changes come from a merge of the current revision's keys with the
    snapshot's, the nodes of a chunk of differing paths loaded at a time, and
    go to ``changes``. The new revision is recorded as applied when live,
    recorded under the lock just now (``live_id``), is that snapshot, or
    manages the same nodes. Returns the revision written (None: desired already
    held it), the applied revision number and id.
    """
    capture = tree.capture_acl
    managed = app.scope(tree).path_filter(keep_ephemeral=False)
    everything = scope_of("/", (), ()).path_filter(keep_ephemeral=True)
    taken_side = Side("snapshot", taken_id)
    with app.db.session() as session:
        attached = tree_store.get_tree(session, tree.name)
        # Under the tree's write lock: the revision compared with is the one replaced.
        tree_store.lock_tree(session, attached)
        current = desired_store.latest_revision(session, attached)
        current_side = None if current is None else Side("desired", current.id)

        def load(paths: list[str]) -> tuple[dict[str, Znode], dict[str, Znode]]:
            return (
                compare.load(session, attached, current_side, paths),
                compare.load(session, attached, taken_side, paths),
            )

        pending: list[tuple[NodeKey | None, NodeKey | None]] = []
        for pair in differing(
            _kept(session, attached, current_side, everything),
            _kept(session, attached, taken_side, managed),
            compare_acl=capture,
        ):
            pending.append(pair)
            if len(pending) >= CHANGES_CHUNK:
                changes.add_pairs(pending, load, compare_acl=capture)
                pending = []
        if pending:
            changes.add_pairs(pending, load, compare_acl=capture)
        nodes = (
            _taken(n, capture)
            for n in snapshot_store.iter_snapshot_nodes(session, attached, taken_id)
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
            return revision, None, None
        if taken_id != live_id and not _same(session, attached, taken_side, live_id, managed):
            return revision, None, latest.id
        desired_store.mark_applied(session, attached, latest)
        return revision, latest.number, latest.id


def _same(session: Any, tree: Tree, taken: Side, live_id: int, managed: PathFilter) -> bool:
    """Whether live (snapshot ``live_id``) manages exactly the nodes ``taken`` does:
    the same paths, values and, when the tree captures them, ACLs."""
    live = Side("snapshot", live_id)
    capture = tree.capture_acl
    pairs = differing(
        _kept(session, tree, taken, managed),
        _kept(session, tree, live, managed),
        compare_acl=capture,
    )
    return next(iter(pairs), None) is None


def _recorded(app: App, tree: Tree, snapshot_id: int) -> TreeState:
    with app.db.session() as session:
        snap = snapshot_store.get_snapshot(session, tree, snapshot_id)
        return snapshot_store.load_snapshot(session, tree, snap)
