"""Planning: read live, load desired, and persist the plan that makes live equal desired.

The rules (what is created, changed and deleted, what may never be, and
which guards refuse a plan) live in the pure :mod:`zkdrift.plan`; this
module feeds them the tree's scope and policy and records what it did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Protocol

from kazoo.client import KazooClient

from zkdrift.app import App
from zkdrift.errors import RootNotFoundError
from zkdrift.model import Acl, OpKind, Plan, TreeState, Znode
from zkdrift.paths import ancestors, matches_self_or_ancestor
from zkdrift.plan import Surroundings, TreeCounts, acl_sources, check_guards, make_plan
from zkdrift.reconcile.outcomes import PlanResult, PlanStatus
from zkdrift.scope import PathFilter
from zkdrift.snapshot import capture_with, record_snapshot
from zkdrift.store import compare
from zkdrift.store import desired as desired_store
from zkdrift.store import plans as plan_store
from zkdrift.store import trees as tree_store
from zkdrift.store.compare import Side
from zkdrift.store.models import Tree
from zkdrift.zk import client as zk
from zkdrift.zk.reader import read_acls_of, read_tree


@dataclass(frozen=True)
class DesiredView:
    """The tree's current desired state and the revision it comes from (None: none yet)."""

    state: TreeState
    revision_id: int | None
    revision_number: int | None


class RevisionRef(Protocol):
    """A desired-state revision by id and number (None: the tree has none yet)."""

    @property
    def revision_id(self) -> int | None: ...

    @property
    def revision_number(self) -> int | None: ...


@dataclass(frozen=True)
class DesiredRevision:
    """The tree's current desired-state revision, without its contents."""

    revision_id: int | None
    revision_number: int | None


def current_revision(app: App, tree: Tree) -> DesiredRevision:
    with app.db.session() as session:
        revision = desired_store.latest_revision(session, tree)
        if revision is None:
            return DesiredRevision(None, None)
        return DesiredRevision(revision.id, revision.number)


@dataclass(frozen=True)
class PlanInputs:
    """What a plan made from the store saw: the managed desired nodes and the live
    nodes (as a plan sees them) at the paths that differ, and the sizes of both trees.
    ``live`` is None when the tree's root did not exist live."""

    desired: dict[str, Znode]
    live: TreeState | None
    counts: TreeCounts


def load_tree(app: App, name: str) -> Tree:
    with app.db.session() as session:
        return tree_store.get_tree(session, name)


def load_desired(app: App, tree: Tree) -> DesiredView:
    with app.db.session() as session:
        revision = desired_store.latest_revision(session, tree)
        state = desired_store.load_desired(session, tree, revision)
        if revision is None:
            return DesiredView(state, None, None)
        return DesiredView(state, revision.id, revision.number)


def read_live(client: KazooClient, tree: Tree) -> TreeState | None:
    """The live tree, or None when its root does not exist. Raises ZkReadError."""
    try:
        return read_tree(client, tree.root, excludes=tree.excludes, with_acl=tree.capture_acl)
    except RootNotFoundError:
        return None


def record_live(app: App, tree: Tree, live: TreeState | None, source: str) -> int | None:
    """Record what was read as a snapshot; a missing root is not recorded as an empty tree."""
    if live is None:
        return None
    return record_snapshot(app, tree, live, source=source).snapshot_id


def compute(
    app: App,
    tree: Tree,
    desired: TreeState,
    live: TreeState | None,
    *,
    prune: bool,
    client: KazooClient | None = None,
    prune_only: Sequence[str] = (),
) -> Plan:
    """The plan that makes what zkdrift manages of ``live`` equal ``desired``.

    With ``client``, the ACLs that created nodes inherit (their nearest
    existing parent's) are read from ZooKeeper when the tree's policy sets
    no default ACL and live was read without them. ``prune_only`` keeps the
    deletes of a prune to the paths those globs match (themselves or an
    ancestor): a restore of some paths deletes nothing outside them.
    """
    scope = app.scope(tree)
    wanted = scope.managed(desired)
    view = scope.plan_view({} if live is None else live.nodes)

    def known(paths: Set[str]) -> Mapping[str, Znode]:
        return {} if live is None else {p: live.nodes[p] for p in paths if p in live.nodes}

    plan = _plan(app, tree, wanted, view, known, prune=prune, client=client)
    return only_pruning(plan, prune, prune_only)


def _plan(
    app: App,
    tree: Tree,
    wanted: Mapping[str, Znode],
    seen: Mapping[str, Znode],
    known: Callable[[Set[str]], Mapping[str, Znode]],
    *,
    prune: bool,
    client: KazooClient | None,
    surroundings: Surroundings | None = None,
) -> Plan:
    """:func:`~zkdrift.plan.make_plan` of ``wanted`` against ``seen`` for ``tree``, with
    the ACLs created nodes inherit when the tree's policy sets no default ACL: those
    ``known(paths)`` gives (live nodes as recorded), the rest read from ZooKeeper
    through ``client`` (none: left unknown, which the guards refuse)."""
    policy = tree.policy
    parent_acls: dict[str, tuple[Acl, ...]] = {}
    if policy.default_acls is None:
        sources = acl_sources(wanted, seen, root=tree.root, surroundings=surroundings)
        for path, node in known(sources).items():
            if node.acl is not None:
                parent_acls[path] = node.acl
        missing = sources - parent_acls.keys()
        if missing and client is not None:
            parent_acls.update(
                read_acls_of(
                    client, tree.root, sorted(missing), timeout=app.settings.zk_session_timeout
                )
            )
    return make_plan(
        tree.name,
        wanted,
        seen,
        prune=prune,
        compare_acl=tree.capture_acl,
        root=tree.root,
        parent_acls=parent_acls,
        default_acl=policy.default_acls,
        surroundings=surroundings,
    )


def only_pruning(plan: Plan, prune: bool, prune_only: Sequence[str]) -> Plan:
    """``plan`` with its deletes kept to the paths ``prune_only`` matches (all when empty)."""
    if not (prune and prune_only):
        return plan
    # A node matched keeps its whole subtree matched, so no kept child ever
    # stands under a deleted parent.
    ops = tuple(
        op
        for op in plan.ops
        if op.kind is not OpKind.DELETE or matches_self_or_ancestor(op.path, prune_only)
    )
    return dataclasses.replace(plan, ops=ops)


def _kept(nodes: Mapping[str, Znode], view: PathFilter) -> dict[str, Znode]:
    return {path: node for path, node in nodes.items() if view(path, node.ephemeral)}


def compute_recorded(
    app: App,
    tree: Tree,
    desired: RevisionRef,
    snapshot_id: int | None,
    *,
    prune: bool,
    client: KazooClient | None = None,
) -> tuple[Plan, PlanInputs]:
    """:func:`compute` for a recorded snapshot (None: the root did not exist live)
    against a stored revision, streaming both out of the store.

    Only the paths that differ are loaded; the questions that reach beyond them
    (which parents exist, which live-only nodes desired needs as parents, how
    big each tree is) are answered by further streams of paths. The plan is the
    one :func:`compute` gives for the whole trees.
    """
    scope = app.scope(tree)
    managed = scope.path_filter(keep_ephemeral=False)
    view = scope.path_filter(keep_ephemeral=True)
    desired_side = None if desired.revision_id is None else Side("desired", desired.revision_id)
    live_side = None if snapshot_id is None else Side("snapshot", snapshot_id)
    with app.db.session() as session:
        tree = tree_store.get_tree(session, tree.name)
        found = compare.differences(
            session,
            tree,
            desired_side,
            live_side,
            left_view=managed,
            right_view=view,
            compare_acl=tree.capture_acl,
            unread_acl=tree.capture_acl,
            left_ancestors=True,
            right_ancestors=True,
        )
        wanted = _kept(found.left, managed)
        seen = _kept(found.right, view)
        # Which of the paths a plan might create exist live as parents of live nodes.
        maybe_created: set[str] = set()
        for path in found.left_only:
            maybe_created.add(path)
            maybe_created.update(ancestors(path))
        existing = compare.existing_among(
            session, tree, live_side, maybe_created, found.right_counts, view
        )
        existing.add("/")
        # Which live-only nodes stay as parents of desired ones.
        needed = compare.ancestors_among(
            found.right_only,
            found.left_counts,
            lambda: compare.paths(session, tree, desired_side, managed),
        )
    surroundings = Surroundings(existing=existing, needed=needed)

    def known(paths: Set[str]) -> Mapping[str, Znode]:
        with app.db.session() as session:
            return compare.load(session, tree, live_side, paths)

    plan = _plan(
        app, tree, wanted, seen, known, prune=prune, client=client, surroundings=surroundings
    )
    counts = TreeCounts(
        desired=found.left_counts.nodes,
        desired_below_root=found.left_counts.below_root,
        persistent=found.right_counts.persistent,
        persistent_below_root=found.right_counts.persistent_below_root,
    )
    live = None if live_side is None else TreeState(tree.root, seen)
    return plan, PlanInputs(wanted, live, counts)


def recorded_inputs(
    app: App, tree: Tree, plan: Plan, desired: RevisionRef, snapshot_id: int | None
) -> PlanInputs:
    """What :func:`recorded_guards` needs to weigh any ``plan`` (a stored one too)
    against a recorded snapshot: the sizes of both trees, streamed, and the live
    nodes at the plan's paths."""
    scope = app.scope(tree)
    managed = scope.path_filter(keep_ephemeral=False)
    view = scope.path_filter(keep_ephemeral=True)
    desired_side = None if desired.revision_id is None else Side("desired", desired.revision_id)
    live_side = None if snapshot_id is None else Side("snapshot", snapshot_id)
    with app.db.session() as session:
        tree = tree_store.get_tree(session, tree.name)
        wanted = compare.Counts(tree.root)
        for _ in wanted.counted(compare.keys(session, tree, desired_side, with_acl=False), managed):
            pass
        seen = compare.Counts(tree.root)
        for _ in seen.counted(compare.keys(session, tree, live_side, with_acl=False), view):
            pass
        nodes = _kept(compare.load(session, tree, live_side, {op.path for op in plan.ops}), view)
    counts = TreeCounts(
        desired=wanted.nodes,
        desired_below_root=wanted.below_root,
        persistent=seen.persistent,
        persistent_below_root=seen.persistent_below_root,
    )
    live = None if live_side is None else TreeState(tree.root, nodes)
    return PlanInputs({}, live, counts)


def recorded_guards(
    app: App, tree: Tree, plan: Plan, inputs: PlanInputs, *, force: bool
) -> list[str]:
    """:func:`guards` for a plan made by :func:`compute_recorded`."""
    policy = tree.policy
    return check_guards(
        plan,
        inputs.desired,
        inputs.live,
        root=tree.root,
        max_delete_fraction=policy.max_delete_fraction,
        force=force,
        protected=policy.protected,
        max_op_bytes=policy.max_op_bytes,
        is_secret=app.redactor().is_secret,
        allow_world_readable_secrets=policy.allow_world_readable_secrets,
        counts=inputs.counts,
    )


def guards(
    app: App, tree: Tree, plan: Plan, desired: TreeState, live: TreeState | None, *, force: bool
) -> list[str]:
    """Why ``plan`` must not be applied to ``live`` (see :func:`zkdrift.plan.check_guards`)."""
    scope = app.scope(tree)
    policy = tree.policy
    return check_guards(
        plan,
        scope.managed(desired),
        None if live is None else scope.plan_view(live.nodes),
        root=tree.root,
        max_delete_fraction=policy.max_delete_fraction,
        force=force,
        protected=policy.protected,
        max_op_bytes=policy.max_op_bytes,
        is_secret=app.redactor().is_secret,
        allow_world_readable_secrets=policy.allow_world_readable_secrets,
    )


def live_values(plan: Plan, live: TreeState | None) -> dict[str, bytes]:
    """The live values a plan replaces or deletes, for showing next to the new ones."""
    if live is None:
        return {}
    return {
        op.path: live.nodes[op.path].data
        for op in plan.ops
        if op.kind in (OpKind.SET, OpKind.DELETE) and op.path in live.nodes
    }


def persist(
    app: App,
    tree: Tree,
    plan: Plan,
    desired: RevisionRef,
    *,
    snapshot_id: int | None,
    prune: bool,
    actor: str,
) -> int:
    with app.db.session() as session:
        record = plan_store.save_plan(
            session,
            tree,
            plan,
            snapshot_id=snapshot_id,
            desired_revision_id=desired.revision_id,
            prune=prune,
            created_by=actor,
            status=str(PlanStatus.PLANNED),
        )
        return record.id


def plan_result(
    plan: Plan,
    plan_id: int | None,
    refusals: Sequence[str],
    *,
    snapshot_id: int | None,
    desired: RevisionRef | None,
    prune: bool,
    live: TreeState | None,
) -> PlanResult:
    return PlanResult(
        plan_id=plan_id,
        tree=plan.tree,
        ops=plan.ops,
        warnings=plan.warnings,
        refusals=tuple(refusals),
        snapshot_id=snapshot_id,
        desired_revision=None if desired is None else desired.revision_number,
        prune=prune,
        live_values=live_values(plan, live),
    )


def plan_with(
    app: App,
    tree: Tree,
    client: KazooClient,
    *,
    prune: bool,
    force: bool,
    source: str,
    actor: str,
) -> tuple[PlanResult, DesiredRevision]:
    """Read live, record it, plan against the current desired state, persist the plan.

    The plan is made from the recorded snapshot and the stored revision, streamed
    (see :func:`compute_recorded`): neither tree is held whole.
    """
    try:
        snapshot_id: int | None = capture_with(app, tree, client, source=source).snapshot_id
    except RootNotFoundError:
        snapshot_id = None  # a missing root is not recorded as an empty tree
    desired = current_revision(app, tree)
    plan, inputs = compute_recorded(app, tree, desired, snapshot_id, prune=prune, client=client)
    refusals = recorded_guards(app, tree, plan, inputs, force=force)
    plan_id = persist(app, tree, plan, desired, snapshot_id=snapshot_id, prune=prune, actor=actor)
    result = plan_result(
        plan,
        plan_id,
        refusals,
        snapshot_id=snapshot_id,
        desired=desired,
        prune=prune,
        live=inputs.live,
    )
    return result, desired


def plan_tree(
    app: App,
    name: str,
    *,
    prune: bool = False,
    source: str = "cli",
    force: bool = False,
    actor: str | None = None,
) -> PlanResult:
    """Snapshot the live tree, plan the writes that make it equal desired, persist the plan.

    Deletes are planned only with ``prune``. ``refusals`` says what the
    guards would refuse at apply time (``force`` lifts the size guards).
    """
    tree = load_tree(app, name)
    with zk.session(app.target(tree)) as client:
        result, _desired = plan_with(
            app, tree, client, prune=prune, force=force, source=source, actor=app.actor(actor)
        )
    return result


def moved_paths(plan: Plan, live: Mapping[str, Znode]) -> list[str]:
    """Paths whose live node no longer matches the version (or the value) an op was
    planned against: a node deleted and re-created since has version 0 again."""
    moved: list[str] = []
    for op in plan.ops:
        node = live.get(op.path)
        if op.kind is OpKind.CREATE:
            if node is not None:
                moved.append(op.path)
        elif node is None or node.stat is None:
            moved.append(op.path)
        elif op.kind is OpKind.SET_ACL:
            if op.expected_version is not None and node.stat.aversion != op.expected_version:
                moved.append(op.path)
        elif op.expected_version is not None and node.stat.version != op.expected_version:
            moved.append(op.path)
        elif op.before_digest is not None and node.data_digest != op.before_digest:
            # Same version, other value: deleted and re-created since the plan.
            moved.append(op.path)
    return moved
