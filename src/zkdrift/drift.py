"""Drift checks: live ZooKeeper (a snapshot) against the desired state, recorded.

:func:`check_drift` is the library call behind ``zkdrift diff NAME`` and the
drift flow: snapshot the live tree, compare what zkdrift manages of it with
the current desired state, classify each difference three-way against what
zkdrift last applied, and record the run. :func:`check_against_snapshot` and
:func:`compare_snapshots` compare with a recorded snapshot instead.

The returned :class:`DriftReport` is plain frozen dataclasses all the way
down, so it pickles (Prefect passes it between tasks). It holds values as
bytes for the caller to plan with; the recorded run holds digests and sizes
only.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from zkdrift.app import App
from zkdrift.diff import DriftItem, classify, diff, without_paths
from zkdrift.errors import InvalidInputError
from zkdrift.model import Change, ChangeKind, DriftClass, Znode
from zkdrift.redact import Redactor, node_json
from zkdrift.scope import PathFilter
from zkdrift.snapshot import capture_with
from zkdrift.store import compare
from zkdrift.store import desired as desired_store
from zkdrift.store import drift as drift_store
from zkdrift.store import snapshots as snapshot_store
from zkdrift.store import trees as tree_store
from zkdrift.store.compare import Side
from zkdrift.store.models import DesiredRevision, Tree, utcnow
from zkdrift.zk import client as zk

log = logging.getLogger(__name__)


class NoDesiredStateError(InvalidInputError):
    """A drift check needs a desired state and the tree has none yet."""


@dataclass(frozen=True)
class DriftReport:
    """The outcome of one recorded drift check.

    ``against`` is ``"desired"`` (live compared with desired revision
    ``desired_revision``) or ``"snapshot"`` (live compared with the recorded
    snapshot ``reference_snapshot_id``, which then plays the desired side of
    every item). ``snapshot_id`` is the live snapshot that was compared.
    """

    run_id: int
    tree: str
    root: str
    snapshot_id: int
    desired_revision: int | None
    items: tuple[DriftItem, ...]
    against: str = "desired"
    applied_revision: int | None = None
    reference_snapshot_id: int | None = None
    ephemeral_ignored: int = 0
    checked_at: dt.datetime | None = None

    def _count(self, cls: DriftClass) -> int:
        return sum(1 for item in self.items if item.classification is cls)

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def drift(self) -> int:
        return self._count(DriftClass.DRIFT)

    @property
    def pending(self) -> int:
        return self._count(DriftClass.PENDING)

    @property
    def conflict(self) -> int:
        return self._count(DriftClass.CONFLICT)

    @property
    def has_differences(self) -> bool:
        return bool(self.items)

    def as_json(self, redactor: Redactor) -> dict[str, Any]:
        return {
            "tree": self.tree,
            "against": self.against,
            "run_id": self.run_id,
            "snapshot_id": self.snapshot_id,
            "desired_revision": self.desired_revision,
            "applied_revision": self.applied_revision,
            "reference_snapshot_id": self.reference_snapshot_id,
            "has_differences": self.has_differences,
            "counts": {
                "total": self.total,
                "drift": self.drift,
                "pending": self.pending,
                "conflict": self.conflict,
            },
            "ephemeral_ignored": self.ephemeral_ignored,
            "items": [
                {
                    "path": i.path,
                    "kind": str(i.kind),
                    "classification": str(i.classification),
                    "desired": node_json(redactor, i.desired),
                    "live": node_json(redactor, i.live),
                    "base": node_json(redactor, i.base),
                }
                for i in self.items
            ],
        }


@dataclass(frozen=True)
class SnapshotDiff:
    """What changed in the managed tree between two recorded snapshots."""

    tree: str
    from_id: int
    to_id: int
    changes: tuple[Change, ...]

    def as_json(self, redactor: Redactor) -> dict[str, Any]:
        return {
            "tree": self.tree,
            "from_snapshot_id": self.from_id,
            "to_snapshot_id": self.to_id,
            "has_differences": bool(self.changes),
            "counts": {"total": len(self.changes)},
            "items": [
                {
                    "path": c.path,
                    "kind": str(c.kind),
                    "before": node_json(redactor, c.before),
                    "after": node_json(redactor, c.after),
                }
                for c in self.changes
            ],
        }


@dataclass(frozen=True)
class _Live:
    """The live side of a check: a fresh snapshot, or a recorded one."""

    snapshot_id: int
    ephemeral: int
    started: dt.datetime
    source: str
    digest_of: Callable[[str, bytes], str]

    @property
    def side(self) -> Side:
        return Side("snapshot", self.snapshot_id)


def _live_state(app: App, tree: Tree, snapshot_id: int | None, source: str) -> _Live:
    """A fresh snapshot of ``tree`` (recorded), or a recorded one when ``snapshot_id`` is given.

    Either way the comparison streams the recorded snapshot out of the store:
    nothing of the tree stays in memory once it is recorded.
    """
    started = utcnow()
    if snapshot_id is None:
        with zk.session(app.target(tree)) as client:
            snapshot_id = capture_with(app, tree, client, source=source).snapshot_id
    with app.db.session() as session:
        snap = snapshot_store.get_snapshot(session, tree, snapshot_id)
        return _Live(snap.id, snap.ephemeral_count, started, source, app.redactor().digest)


def _record(
    session: Session,
    tree: Tree,
    items: list[DriftItem],
    live: _Live,
    *,
    desired_revision_id: int | None = None,
    desired_revision: int | None = None,
    applied_revision: int | None = None,
    reference_snapshot_id: int | None = None,
) -> DriftReport:
    """Record one check (against desired, or against a reference snapshot) and report it."""
    against = "desired" if reference_snapshot_id is None else "snapshot"
    run = drift_store.record_run(
        session,
        tree,
        items,
        against=against,
        snapshot_id=live.snapshot_id,
        desired_revision_id=desired_revision_id,
        base_snapshot_id=reference_snapshot_id,
        started_at=live.started,
        source=live.source,
        digest_of=live.digest_of,
    )
    return DriftReport(
        run_id=run.id,
        tree=tree.name,
        root=tree.root,
        snapshot_id=live.snapshot_id,
        desired_revision=desired_revision,
        items=tuple(items),
        against=against,
        applied_revision=applied_revision,
        reference_snapshot_id=reference_snapshot_id,
        ephemeral_ignored=live.ephemeral,
        checked_at=live.started,
    )


def check_drift(
    app: App, name: str, *, source: str = "cli", snapshot_id: int | None = None
) -> DriftReport:
    """Compare live (a fresh snapshot, or ``snapshot_id``) with the current desired state.

    Only what the tree manages is compared: excluded and not-included paths
    and ephemeral nodes are left out on both sides. Each difference is
    classified against the revision zkdrift last applied (see
    :func:`zkdrift.diff.classify`); the run is recorded with digests and
    sizes. Raises :class:`NoDesiredStateError` when the tree has no desired
    state yet, before touching ZooKeeper.
    """
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        revision = desired_store.latest_revision(session, tree)
        if revision is None:
            raise NoDesiredStateError(
                f"tree {name!r} has no desired state yet; import one with "
                f"'zkdrift desired import {name} FILE' or adopt live with "
                f"'zkdrift desired adopt {name}'"
            )
        revision_id, revision_number = revision.id, revision.number
    live = _live_state(app, tree, snapshot_id, source)
    managed = app.scope(tree).path_filter(keep_ephemeral=False)
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        desired_side = Side("desired", revision_id)
        found = compare.differences(
            session,
            tree,
            live.side,
            desired_side,
            left_view=managed,
            right_view=managed,
            compare_acl=tree.capture_acl,
            right_ancestors=True,
        )
        # Usually live was last made equal to the current revision: then the
        # base is the desired state itself.
        applied = (
            None
            if tree.applied_revision_id is None
            else session.get(DesiredRevision, tree.applied_revision_id)
        )
        base_side = None if applied is None else Side("desired", applied.id)
        base = compare.load(session, tree, base_side, found.paths)
        never_applied = next(compare.paths(session, tree, base_side, managed), None) is None
        items = classify(
            _managed(base, managed),
            _managed(found.right, managed),
            _managed(found.left, managed),
            compare_acl=tree.capture_acl,
            never_applied=never_applied,
        )
        removed = {i.path for i in items if i.kind is ChangeKind.REMOVED}
        # Live-only nodes that desired paths need as parents are no drift.
        needed = compare.ancestors_among(
            removed,
            found.right_counts,
            lambda: compare.paths(session, tree, desired_side, managed),
        )
        items = without_paths(items, needed)
        report = _record(
            session,
            tree,
            items,
            live,
            desired_revision_id=revision_id,
            desired_revision=revision_number,
            applied_revision=None if applied is None else applied.number,
        )
    log.info(
        "drift run %d of %s: %d differences (%d drift, %d pending, %d conflict)",
        report.run_id,
        name,
        report.total,
        report.drift,
        report.pending,
        report.conflict,
    )
    return report


def check_against_snapshot(
    app: App,
    name: str,
    reference_id: int,
    *,
    source: str = "cli",
    snapshot_id: int | None = None,
) -> DriftReport:
    """Compare live (a fresh snapshot, or ``snapshot_id``) with recorded snapshot ``reference_id``.

    The reference plays the desired side: an item's ``kind`` says what would
    make live equal the reference again, and every item is ``DRIFT``. The
    run is recorded with ``against="snapshot"``.
    """
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        reference_snap = snapshot_store.get_snapshot(session, tree, reference_id)
        with_acl = reference_snap.with_acl
    live = _live_state(app, tree, snapshot_id, source)
    managed = app.scope(tree).path_filter(keep_ephemeral=False)
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        compare_acl = tree.capture_acl and with_acl
        found = compare.differences(
            session,
            tree,
            live.side,
            Side("snapshot", reference_id),
            left_view=managed,
            right_view=managed,
            compare_acl=compare_acl,
        )
        items = classify(
            None,
            _managed(found.right, managed),
            _managed(found.left, managed),
            compare_acl=compare_acl,
        )
        return _record(session, tree, items, live, reference_snapshot_id=reference_id)


def compare_snapshots(app: App, name: str, from_id: int, to_id: int) -> SnapshotDiff:
    """What changed in the managed tree from snapshot ``from_id`` to ``to_id``.

    Ephemeral, excluded and not-included nodes are left out, as in a drift
    check. ACLs are compared when both snapshots captured them. Nothing is
    recorded: this looks at history, not at live.
    """
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        before_snap = snapshot_store.get_snapshot(session, tree, from_id)
        after_snap = snapshot_store.get_snapshot(session, tree, to_id)
        with_acl = before_snap.with_acl and after_snap.with_acl
        managed = app.scope(tree).path_filter(keep_ephemeral=False)
        found = compare.differences(
            session,
            tree,
            Side("snapshot", before_snap.id),
            Side("snapshot", after_snap.id),
            left_view=managed,
            right_view=managed,
            compare_acl=with_acl,
        )
    changes = diff(
        _managed(found.left, managed), _managed(found.right, managed), compare_acl=with_acl
    )
    return SnapshotDiff(name, from_id, to_id, tuple(changes))


def _managed(nodes: dict[str, Znode], view: PathFilter) -> dict[str, Znode]:
    """What ``view`` keeps of some loaded nodes (the rule the streams were filtered by)."""
    return {path: node for path, node in nodes.items() if view(path, node.ephemeral)}
