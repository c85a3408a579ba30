"""Promote: another tree's values, mapped onto this tree's root, as its desired state.

``promote(app, "staging", "prod")`` takes what staging holds (live, read
now and recorded as a snapshot, or its current desired revision), maps
each path from staging's root onto prod's, and writes the result as a new
desired revision of prod. Prod's own rules decide what may land:

- paths prod does not manage (its excludes, includes, lock root) are left out;
- paths under prod's protected globs keep prod's current desired value;
- secret paths (prod's secret globs, or staging's) keep prod's current
  desired value unless ``with_secrets`` asks for them;
- values move, ACLs do not: a promoted path keeps the ACL prod's desired
  state gives it, and a new one gets prod's default (or inherits).

With ``paths`` (globs in the source tree's paths), only those subtrees
move; elsewhere prod's desired state stays as it is. Within what moves, a
path the source lacks is dropped from prod's desired state. Then prod is
planned, or applied under its own lock like any apply, audited as
``promote`` with the source tree and its revision or snapshot named.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zkdrift.app import App
from zkdrift.desired import RevisionResult, refuse_hand_change, write_state
from zkdrift.diff import diff
from zkdrift.errors import InvalidInputError
from zkdrift.model import Change, TreeState, Znode
from zkdrift.paths import is_under, matches_self_or_ancestor
from zkdrift.reconcile.apply import DEFAULT_LOCK_WAIT, apply_tree
from zkdrift.reconcile.outcomes import ApplyResult, Direction, PlanResult
from zkdrift.reconcile.planning import load_tree, plan_tree
from zkdrift.redact import node_json
from zkdrift.snapshot import read_live, record_snapshot
from zkdrift.store import desired as desired_store
from zkdrift.store import trees as tree_store
from zkdrift.store.models import Tree


class Side(enum.StrEnum):
    """Which state of a tree is taken or compared."""

    LIVE = "live"
    DESIRED = "desired"


def parse_side(value: str, option: str) -> Side:
    try:
        return Side(value)
    except ValueError:
        raise InvalidInputError(f"{option} {value!r}: choose 'live' or 'desired'") from None


def map_path(path: str, from_root: str, to_root: str) -> str:
    """``path`` under ``from_root`` moved to the same place under ``to_root``."""
    rest = path[len(from_root) :] if from_root != "/" else path
    if not rest:
        return to_root
    return rest if to_root == "/" else to_root + rest


@dataclass(frozen=True)
class TreeSide:
    """One tree's state as taken for a promote or a comparison, and where it came from."""

    tree: str
    side: Side
    state: TreeState
    # "snapshot 17" (live, as just recorded) or "desired revision 4".
    label: str
    snapshot_id: int | None = None
    revision: int | None = None


def take_side(app: App, name: str, side: Side, *, source: str = "cli") -> TreeSide:
    """``name``'s live state (read now and recorded as a snapshot) or current desired
    state, restricted to what the tree manages."""
    tree = load_tree(app, name)
    scope = app.scope(tree)
    if side is Side.LIVE:
        state = read_live(app, tree)
        recorded = record_snapshot(app, tree, state, source=source)
        managed = TreeState(tree.root, scope.managed(state))
        sid = recorded.snapshot_id
        return TreeSide(name, side, managed, f"snapshot {sid}", snapshot_id=sid)
    with app.db.session() as session:
        attached = tree_store.get_tree(session, name)
        rev = desired_store.latest_revision(session, attached)
        if rev is None:
            raise InvalidInputError(
                f"tree {name!r} has no desired state yet; take its live state instead, or"
                f" import one with 'zkdrift desired import {name} FILE'"
            )
        state = desired_store.load_desired(session, attached, rev)
        number = rev.number
    managed = TreeState(tree.root, scope.managed(state))
    return TreeSide(name, side, managed, f"desired revision {number}", revision=number)


@dataclass(frozen=True)
class PromoteResult:
    """A promotion: what was taken, what was left out and why, the revision written
    (None: the target's desired state already held it), and the plan or the apply."""

    source: str
    target: str
    taken_from: str  # "snapshot 17" or "desired revision 4" of the source tree
    paths: tuple[str, ...]
    promoted: int
    kept_secret: tuple[str, ...]
    kept_protected: tuple[str, ...]
    unmanaged: tuple[str, ...]
    revision: RevisionResult | None
    plan: PlanResult | None
    apply: ApplyResult | None

    @property
    def ok(self) -> bool:
        return self.apply is None or self.apply.ok

    def as_json(self, redactor: Any) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "taken_from": self.taken_from,
            "paths": list(self.paths),
            "promoted": self.promoted,
            "kept_secret": list(self.kept_secret),
            "kept_protected": list(self.kept_protected),
            "unmanaged": list(self.unmanaged),
            "revision": None if self.revision is None else self.revision.as_json(),
            "plan": None if self.plan is None else self.plan.as_json(redactor),
            "apply": None if self.apply is None else self.apply.as_json(redactor),
        }


@dataclass(frozen=True)
class _Merge:
    nodes: dict[str, Znode]
    promoted: int
    kept_secret: tuple[str, ...]
    kept_protected: tuple[str, ...]
    unmanaged: tuple[str, ...]


def _merge(
    app: App,
    src: Tree,
    dst: Tree,
    taken: TreeState,
    current: dict[str, Znode],
    globs: Sequence[str],
    with_secrets: bool,
) -> _Merge:
    """The target's new desired state: ``current`` with the selected source values."""
    if globs:
        unmatched = [g for g in globs if not any(matches_self_or_ancestor(p, [g]) for p in taken)]
        if unmatched:
            raise InvalidInputError(
                f"--paths {', '.join(repr(g) for g in unmatched)} match no managed path of"
                f" tree {src.name!r}"
            )
    scope = app.scope(dst)
    protected = dst.policy.protected
    redactor = app.redactor()
    incoming = {map_path(p, src.root, dst.root): n for p, n in taken.nodes.items()}
    new = dict(current)
    promoted = 0
    secret: list[str] = []
    guarded: list[str] = []
    unmanaged: list[str] = []
    for q in sorted(set(current) | set(incoming)):
        if not is_under(q, dst.root):
            continue
        p = map_path(q, dst.root, src.root)
        if globs and not matches_self_or_ancestor(p, globs):
            continue
        if scope.unmanaged_problem(q) is not None:
            unmanaged.append(q)
            continue
        if protected and matches_self_or_ancestor(q, protected):
            guarded.append(q)
            continue
        if not with_secrets and (redactor.is_secret(q) or redactor.is_secret(p)):
            secret.append(q)
            continue
        node = incoming.get(q)
        if node is None:
            new.pop(q, None)
            continue
        keep = current.get(q)
        new[q] = Znode(q, node.data, None, None if keep is None else keep.acl)
        promoted += 1
    return _Merge(new, promoted, tuple(secret), tuple(guarded), tuple(unmanaged))


def promote(
    app: App,
    source: str,
    target: str,
    *,
    side: Side = Side.LIVE,
    paths: Sequence[str] = (),
    with_secrets: bool = False,
    apply: bool = False,
    prune: bool = False,
    force: bool = False,
    reason: str = "",
    message: str | None = None,
    actor: str | None = None,
    override: bool = False,
    wait: float = DEFAULT_LOCK_WAIT,
) -> PromoteResult:
    """Write ``source``'s values (``side``: live or desired), mapped onto ``target``'s
    root, as ``target``'s new desired revision; then plan it, or with ``apply`` apply
    it under ``target``'s lock (see the module docs)."""
    if source == target:
        raise InvalidInputError("promote copies between two trees: name two different trees")
    src = load_tree(app, source)
    dst = load_tree(app, target)
    refuse_hand_change(dst, "promote", override=override)
    taken = take_side(app, source, side, source="promote")
    globs = tuple(paths)
    who = app.actor(actor)
    what = f"tree {source}, {taken.label}" + (f" ({', '.join(globs)})" if globs else "")
    with app.db.session() as session:
        attached = tree_store.get_tree(session, target)
        tree_store.lock_tree(session, attached)
        current = dict(desired_store.load_desired(session, attached).nodes)
        merged = _merge(app, src, dst, taken.state, current, globs, with_secrets)
        revision = write_state(
            app,
            session,
            attached,
            TreeState(dst.root, merged.nodes),
            author=who,
            message=message or f"promote from {what}",
            source="promote",
            override=override,
        )
        latest = desired_store.latest_revision(session, attached)
        expected = None if latest is None else latest.id
    plan: PlanResult | None = None
    applied: ApplyResult | None = None
    if apply:
        applied = apply_tree(
            app,
            target,
            yes=True,
            prune=prune,
            force=force,
            reason=f"promote from {what}" + (f": {reason}" if reason else ""),
            actor=who,
            wait=wait,
            direction=Direction.PROMOTE,
            expect_revision_id=expected,
        )
        plan = applied.plan
    else:
        plan = plan_tree(app, target, prune=prune, force=force, actor=who)
    return PromoteResult(
        source=source,
        target=target,
        taken_from=taken.label,
        paths=globs,
        promoted=merged.promoted,
        kept_secret=merged.kept_secret,
        kept_protected=merged.kept_protected,
        unmanaged=merged.unmanaged,
        revision=revision,
        plan=plan,
        apply=applied,
    )


@dataclass(frozen=True)
class TreeComparison:
    """Two trees compared, the source's paths mapped onto the target's root.

    Each change goes from the target (``before``) to the source (``after``):
    what a promotion would change in the target. Paths are the target's.
    """

    source: TreeSide
    target: TreeSide
    source_root: str
    target_root: str
    changes: tuple[Change, ...]

    @property
    def has_differences(self) -> bool:
        return bool(self.changes)

    def source_path(self, path: str) -> str:
        return map_path(path, self.target_root, self.source_root)

    def shown_as(self, path: str, redactor: Any) -> str:
        """The path whose secret rule renders ``path``'s values: a value is secret when
        either tree's path for it is."""
        other = self.source_path(path)
        return other if redactor.is_secret(other) and not redactor.is_secret(path) else path

    def as_json(self, redactor: Any) -> dict[str, Any]:
        def shown(path: str, node: Znode | None) -> dict[str, Any] | None:
            # A value is secret when either tree's path says so.
            as_path = self.source_path(path) if redactor.is_secret(self.source_path(path)) else path
            out = node_json(
                redactor, None if node is None else Znode(as_path, node.data, None, node.acl)
            )
            if out is not None:
                out["path"] = path
            return out

        return {
            "source": {
                "tree": self.source.tree,
                "side": str(self.source.side),
                "state": self.source.label,
                "root": self.source_root,
            },
            "target": {
                "tree": self.target.tree,
                "side": str(self.target.side),
                "state": self.target.label,
                "root": self.target_root,
            },
            "has_differences": self.has_differences,
            "counts": {"total": len(self.changes)},
            "items": [
                {
                    "path": c.path,
                    "source_path": self.source_path(c.path),
                    "kind": str(c.kind),
                    "target": shown(c.path, c.before),
                    "source": shown(c.path, c.after),
                }
                for c in self.changes
            ],
        }


def compare_trees(app: App, source: str, target: str, side: Side = Side.LIVE) -> TreeComparison:
    """Compare ``source`` with ``target`` (both live, or both desired), the source's paths
    mapped onto the target's root. Only paths both trees manage are compared; ACLs when
    both capture them. Live reads are recorded as snapshots."""
    if source == target:
        raise InvalidInputError("--against-tree compares two trees: name another tree")
    src = load_tree(app, source)
    dst = load_tree(app, target)
    src_side = take_side(app, source, side)
    dst_side = take_side(app, target, side)
    src_scope, dst_scope = app.scope(src), app.scope(dst)
    mapped = {
        q: Znode(q, n.data, None, n.acl)
        for q, n in ((map_path(p, src.root, dst.root), n) for p, n in src_side.state.nodes.items())
        if dst_scope.unmanaged_problem(q) is None
    }
    mine = {
        q: n
        for q, n in dst_side.state.nodes.items()
        if src_scope.unmanaged_problem(map_path(q, dst.root, src.root)) is None
    }
    changes = diff(mine, mapped, compare_acl=src.capture_acl and dst.capture_acl)
    return TreeComparison(src_side, dst_side, src.root, dst.root, tuple(changes))
