"""Planning: read live, load desired, and persist the plan that makes live equal desired.

The rules (what is created, changed and deleted, what may never be, and
which guards refuse a plan) live in the pure :mod:`zkdrift.plan`; this
module feeds them the tree's scope and policy and records what it did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kazoo.client import KazooClient

from zkdrift.app import App
from zkdrift.errors import RootNotFoundError
from zkdrift.model import Acl, OpKind, Plan, TreeState, Znode
from zkdrift.paths import matches_self_or_ancestor
from zkdrift.plan import acl_sources, check_guards, make_plan
from zkdrift.reconcile.outcomes import PlanResult, PlanStatus
from zkdrift.snapshot import record_snapshot
from zkdrift.store import desired as desired_store
from zkdrift.store import plans as plan_store
from zkdrift.store import trees as tree_store
from zkdrift.store.models import Tree
from zkdrift.zk import client as zk
from zkdrift.zk.reader import read_acls_of, read_tree


@dataclass(frozen=True)
class DesiredView:
    """The tree's current desired state and the revision it comes from (None: none yet)."""

    state: TreeState
    revision_id: int | None
    revision_number: int | None


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
    policy = tree.policy
    wanted = scope.managed(desired)
    view = scope.plan_view({} if live is None else live.nodes)
    parent_acls: dict[str, tuple[Acl, ...]] = {}
    if policy.default_acls is None:
        sources = acl_sources(wanted, view, root=tree.root)
        for path in sources:
            node = None if live is None else live.nodes.get(path)
            if node is not None and node.acl is not None:
                parent_acls[path] = node.acl
        missing = sources - parent_acls.keys()
        if missing and client is not None:
            parent_acls.update(
                read_acls_of(
                    client, tree.root, sorted(missing), timeout=app.settings.zk_session_timeout
                )
            )
    plan = make_plan(
        tree.name,
        wanted,
        view,
        prune=prune,
        compare_acl=tree.capture_acl,
        root=tree.root,
        parent_acls=parent_acls,
        default_acl=policy.default_acls,
    )
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
    desired: DesiredView,
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
    desired: DesiredView | None,
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
) -> tuple[PlanResult, TreeState | None, DesiredView]:
    """Read live, record it, plan against the current desired state, persist the plan."""
    live = read_live(client, tree)
    snapshot_id = record_live(app, tree, live, source)
    desired = load_desired(app, tree)
    plan = compute(app, tree, desired.state, live, prune=prune, client=client)
    refusals = guards(app, tree, plan, desired.state, live, force=force)
    plan_id = persist(app, tree, plan, desired, snapshot_id=snapshot_id, prune=prune, actor=actor)
    result = plan_result(
        plan, plan_id, refusals, snapshot_id=snapshot_id, desired=desired, prune=prune, live=live
    )
    return result, live, desired


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
        result, _live, _desired = plan_with(
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
