"""Reconciliation: plan, apply (push desired to live) and adopt (accept live as desired).

The library behind ``zkdrift plan``, ``apply``, ``adopt``, ``lock`` and
``audit``; flows and notebooks call the same functions.

An apply holds the tree's ZooKeeper lock from before it reads live until
after it has verified the result, so concurrent applies of one tree run one
after the other: the first one writes, the next ones find nothing to do.
Writes are compare-and-set against the versions the plan was made from; a
plan whose nodes moved since is refused with the paths that moved. Every
apply and adopt is audited: a row is committed before ZooKeeper is touched
and completed with the outcome and each op (digests only, never values).
"""

from __future__ import annotations

import getpass
import logging
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from kazoo.client import KazooClient

from zkdrift.app import App
from zkdrift.diff import diff, managed_view
from zkdrift.errors import InvalidInputError, RootNotFoundError, ZkDriftError
from zkdrift.model import Op, OpKind, Plan, TreeState, Znode, digest
from zkdrift.paths import (
    InvalidPathError,
    ancestors,
    is_excluded,
    is_under,
    matches_self_or_ancestor,
)
from zkdrift.plan import MAX_OP_BYTES, check_guards, make_plan
from zkdrift.snapshot import record_snapshot
from zkdrift.store import audit as audit_store
from zkdrift.store import desired as desired_store
from zkdrift.store import plans as plan_store
from zkdrift.store import trees as tree_store
from zkdrift.store.models import DesiredRevision, Tree
from zkdrift.zk import client as zk
from zkdrift.zk.lock import (
    ConnectionWatch,
    LockHeldError,
    LockHolder,
    LockStatus,
    TreeLock,
    break_lock,
    lock_path,
    lock_status,
    make_identifier,
)
from zkdrift.zk.reader import ZkReadError, read_tree
from zkdrift.zk.writer import APPLIED as WRITE_APPLIED
from zkdrift.zk.writer import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_OPS,
    BatchEvent,
    OpOutcome,
    write_ops,
)

log = logging.getLogger(__name__)

APPLIED = "applied"
NO_OP = "no-op"
DRY_RUN = "dry-run"
REFUSED = "refused"
FAILED = "failed"
ADOPTED = "adopted"

DEFAULT_LOCK_WAIT = 30.0


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (containers)
        return "unknown"


@dataclass(frozen=True)
class PlanResult:
    """A persisted plan, ready to show or apply. Values only for display (redact them)."""

    plan_id: int | None
    tree: str
    op_count: int
    ops: tuple[Op, ...]
    warnings: tuple[str, ...] = ()
    refusals: tuple[str, ...] = ()
    snapshot_id: int | None = None
    desired_revision: int | None = None  # the revision number planned against
    prune: bool = False
    # Live values of the paths the plan sets or deletes, keyed by path.
    live_values: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.ops

    @property
    def ops_count(self) -> int:
        return self.op_count

    @property
    def counts(self) -> dict[str, int]:
        out = {str(k): 0 for k in OpKind}
        for op in self.ops:
            out[str(op.kind)] += 1
        return out


@dataclass(frozen=True)
class ApplyResult:
    apply_id: int
    tree: str
    outcome: str  # applied | no-op | dry-run | refused | failed
    ops_applied: int
    ops_total: int
    message: str
    moved_paths: tuple[str, ...] = ()
    plan: PlanResult | None = None
    refusals: tuple[str, ...] = ()
    lock_holder: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in (APPLIED, NO_OP, DRY_RUN)


@dataclass(frozen=True)
class AdoptResult:
    apply_id: int
    tree: str
    revision: int
    added: int
    removed: int
    modified: int
    paths: tuple[str, ...]


# -- views ------------------------------------------------------------------


@dataclass(frozen=True)
class _Desired:
    state: TreeState
    revision_id: int | None
    revision_number: int | None


def _load_tree(app: App, name: str) -> Tree:
    with app.db.session() as session:
        return tree_store.get_tree(session, name)


def _load_desired(app: App, tree: Tree) -> _Desired:
    with app.db.session() as session:
        revision = desired_store.latest_revision(session, tree)
        state = desired_store.load_desired(session, tree, revision)
        if revision is None:
            return _Desired(state, None, None)
        return _Desired(state, revision.id, revision.number)


def _lock_parts(app: App, tree: Tree) -> set[str]:
    """The lock root and its ancestors inside the tree: never part of what is managed."""
    lock_root = app.settings.lock_root
    if not is_under(lock_root, tree.root):
        return set()
    out = {lock_root}
    out.update(a for a in ancestors(lock_root) if is_under(a, tree.root) and a != tree.root)
    return out


def _plan_view(app: App, tree: Tree, live: Mapping[str, Znode]) -> dict[str, Znode]:
    """What a plan sees of live: the managed nodes plus ephemeral ones (never written,
    but their parents must stay)."""
    lock_parts = _lock_parts(app, tree)
    view = managed_view(live, tree.excludes, tree.includes)
    for path, node in live.items():
        if node.ephemeral and not is_excluded(path, tree.excludes):
            view[path] = node
    if lock_parts:
        view = {
            p: n
            for p, n in view.items()
            if p not in lock_parts and not any(is_under(p, lp) for lp in lock_parts)
        }
    return view


def _desired_view(tree: Tree, desired: TreeState) -> dict[str, Znode]:
    return managed_view(desired, tree.excludes, tree.includes)


def _keep_deletes_safe(plan: Plan, live: Mapping[str, Znode]) -> Plan:
    """Drop deletes of nodes that keep a child nobody deletes (excluded or unmanaged):
    ZooKeeper would refuse them and fail the whole batch."""
    deleting = {op.path for op in plan.ops if op.kind is OpKind.DELETE}
    if not deleting:
        return plan
    keep: set[str] = set()
    for path in live:
        if path in deleting:
            continue
        for a in ancestors(path):
            if a in keep:
                break
            keep.add(a)
    blocked = deleting & keep
    if not blocked:
        return plan
    shown = ", ".join(sorted(blocked)[:5]) + (
        f" and {len(blocked) - 5} more" if len(blocked) > 5 else ""
    )
    return Plan(
        tree=plan.tree,
        ops=tuple(op for op in plan.ops if not (op.kind is OpKind.DELETE and op.path in blocked)),
        warnings=(
            *plan.warnings,
            f"not deleting {len(blocked)} node(s) that keep children zkdrift does not"
            f" manage: {shown}",
        ),
    )


def _compute(
    app: App,
    tree: Tree,
    desired: TreeState,
    live: TreeState | None,
    *,
    prune: bool,
    force: bool,
) -> tuple[Plan, list[str]]:
    """The plan and the guards' refusals for making ``live`` equal ``desired``."""
    live_nodes: Mapping[str, Znode] = {} if live is None else live.nodes
    view = _plan_view(app, tree, live_nodes)
    wanted = _desired_view(tree, desired)
    try:
        plan = make_plan(
            tree.name, wanted, view, prune=prune, compare_acl=tree.capture_acl, root=tree.root
        )
    except (ValueError, InvalidPathError) as exc:
        raise InvalidInputError(f"desired state of tree {tree.name!r} is invalid: {exc}") from exc
    plan = _keep_deletes_safe(plan, live_nodes)
    return plan, _guards(app, tree, plan, desired, live, force=force)


def _guards(
    app: App, tree: Tree, plan: Plan, desired: TreeState, live: TreeState | None, *, force: bool
) -> list[str]:
    """Reasons to refuse ``plan`` (see :func:`zkdrift.plan.check_guards`), with the
    tree's options: ``max_delete_fraction`` (default 0.1), ``protected`` globs and
    ``max_op_bytes`` (for servers with a larger jute.maxbuffer)."""
    options = tree.options or {}
    view = _plan_view(app, tree, {} if live is None else live.nodes)
    refusals = check_guards(
        plan,
        _desired_view(tree, desired),
        {p: n for p, n in view.items() if not n.ephemeral},
        max_delete_fraction=float(options.get("max_delete_fraction", 0.1)),
        force=force,
        protected=list(options.get("protected", [])),
        max_op_bytes=int(options.get("max_op_bytes", MAX_OP_BYTES)),
    )
    # A stored plan may name a node that was re-created as ephemeral since
    # (the same version, 0, as a fresh persistent node): never write it.
    live_nodes: Mapping[str, Znode] = {} if live is None else live.nodes
    ephemeral = sorted(
        {
            op.path
            for op in plan.ops
            if (node := live_nodes.get(op.path)) is not None and node.ephemeral
        }
    )
    if ephemeral:
        refusals.append(f"plan touches {len(ephemeral)} ephemeral node(s): {_summary(ephemeral)}")
    if not force:
        wanted = [p for p in _desired_view(tree, desired) if p != tree.root]
        have = [p for p, n in view.items() if p != tree.root and not n.ephemeral]
        if live is None and desired.nodes:
            refusals.insert(0, f"the tree root {tree.root} does not exist live")
        elif live is not None and view and wanted and not have:
            # Only the root came back: as suspicious as nothing at all.
            refusals.insert(
                0,
                f"live tree is empty (only its root {tree.root}) but desired has"
                f" {len(wanted)} nodes below it: was the tree read correctly?"
                " (use --force to create them anyway)",
            )
    return refusals


def _live_values(plan: Plan, live: TreeState | None) -> dict[str, bytes]:
    if live is None:
        return {}
    return {
        op.path: live.nodes[op.path].data
        for op in plan.ops
        if op.kind in (OpKind.SET, OpKind.DELETE) and op.path in live.nodes
    }


def _read(client: KazooClient, tree: Tree) -> TreeState | None:
    """The live tree, or None when its root does not exist. Raises ZkReadError."""
    try:
        return read_tree(client, tree.root, excludes=tree.excludes, with_acl=tree.capture_acl)
    except RootNotFoundError:
        return None


def _record(app: App, tree: Tree, live: TreeState | None, source: str) -> int | None:
    if live is None:
        return None  # a missing root is not recorded as a tree that lost every node
    return record_snapshot(app, tree, live, source=source).snapshot_id


def _persist(
    app: App,
    tree: Tree,
    plan: Plan,
    desired: _Desired,
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
        )
        return record.id


def _result(
    plan: Plan,
    plan_id: int | None,
    refusals: Sequence[str],
    *,
    snapshot_id: int | None,
    desired: _Desired | None,
    prune: bool,
    live: TreeState | None,
) -> PlanResult:
    return PlanResult(
        plan_id=plan_id,
        tree=plan.tree,
        op_count=len(plan.ops),
        ops=plan.ops,
        warnings=plan.warnings,
        refusals=tuple(refusals),
        snapshot_id=snapshot_id,
        desired_revision=None if desired is None else desired.revision_number,
        prune=prune,
        live_values=_live_values(plan, live),
    )


def _plan_with(
    app: App,
    tree: Tree,
    client: KazooClient,
    *,
    prune: bool,
    force: bool,
    source: str,
    actor: str,
) -> tuple[PlanResult, TreeState | None, _Desired]:
    live = _read(client, tree)
    snapshot_id = _record(app, tree, live, source)
    desired = _load_desired(app, tree)
    plan, refusals = _compute(app, tree, desired.state, live, prune=prune, force=force)
    plan_id = _persist(app, tree, plan, desired, snapshot_id=snapshot_id, prune=prune, actor=actor)
    return (
        _result(
            plan,
            plan_id,
            refusals,
            snapshot_id=snapshot_id,
            desired=desired,
            prune=prune,
            live=live,
        ),
        live,
        desired,
    )


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
    tree = _load_tree(app, name)
    with zk.session(app.target(tree)) as client:
        result, _live, _desired = _plan_with(
            app,
            tree,
            client,
            prune=prune,
            force=force,
            source=source,
            actor=actor or default_actor(),
        )
    return result


# -- apply --------------------------------------------------------------------


def moved_paths(ops: Sequence[Op], live: Mapping[str, Znode]) -> list[str]:
    """Paths whose live node no longer matches the version (or the value) an op was
    planned against: a node deleted and re-created since has version 0 again."""
    moved: list[str] = []
    for op in ops:
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
        elif op.before_digest is not None and digest(node.data) != op.before_digest:
            # Same version, other value: deleted and re-created since the plan.
            moved.append(op.path)
    return moved


def _summary(paths: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


class _Run:
    """One audited apply: collects what to record and writes it once."""

    def __init__(self, app: App, tree: Tree, apply_id: int) -> None:
        self.app = app
        self.tree = tree
        self.apply_id = apply_id
        self.plan_id: int | None = None
        self.revision_id: int | None = None
        self.lock_identifier: str | None = None
        self.ops: list[audit_store.OpRecord] = []
        self.ops_total = 0
        self.ops_applied = 0
        self.closed = False

    def close(
        self,
        outcome: str,
        message: str,
        *,
        plan: PlanResult | None = None,
        moved: Sequence[str] = (),
        refusals: Sequence[str] = (),
        holder: str | None = None,
        plan_status: str | None = None,
        error: str | None = None,
    ) -> ApplyResult:
        with self.app.db.session() as session:
            audit_store.finish(
                session,
                self.apply_id,
                outcome=outcome,
                error=error
                if error is not None
                else (None if outcome in (APPLIED, NO_OP, DRY_RUN) else message),
                plan_id=self.plan_id,
                desired_revision_id=self.revision_id,
                lock_identifier=self.lock_identifier,
                ops_total=self.ops_total,
                ops_applied=self.ops_applied,
                ops=self.ops,
            )
            if plan_status is not None and self.plan_id is not None:
                plan_store.set_status(session, self.plan_id, plan_status)
        self.closed = True
        log.info("apply %d of %s: %s (%s)", self.apply_id, self.tree.name, outcome, message)
        return ApplyResult(
            apply_id=self.apply_id,
            tree=self.tree.name,
            outcome=outcome,
            ops_applied=self.ops_applied,
            ops_total=self.ops_total,
            message=message,
            moved_paths=tuple(moved),
            plan=plan,
            refusals=tuple(refusals),
            lock_holder=holder,
        )


def _op_records(outcomes: Sequence[OpOutcome]) -> list[audit_store.OpRecord]:
    return [
        audit_store.OpRecord(
            kind=str(o.op.kind),
            path=o.op.path,
            expected_version=o.op.expected_version,
            before_digest=o.op.before_digest,
            after_digest=o.op.after_digest,
            outcome=o.status,
            error=o.error,
        )
        for o in outcomes
    ]


def apply_tree(
    app: App,
    name: str,
    *,
    plan_id: int | None = None,
    yes: bool = False,
    prune: bool = False,
    force: bool = False,
    replan: bool = False,
    reason: str = "",
    actor: str | None = None,
    source: str = "cli",
    wait: float = DEFAULT_LOCK_WAIT,
    run_id: str | None = None,
    batch_ops: int = DEFAULT_BATCH_OPS,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    between_batches: Callable[[BatchEvent], None] | None = None,
) -> ApplyResult:
    """Make live equal desired (or apply plan ``plan_id``), under the tree's lock.

    Without ``yes`` nothing is written to ZooKeeper: the plan is made (or
    the stored plan checked against live) and shown. Deletes need ``prune``;
    ``force`` lifts the size guards. With ``plan_id``, nodes that moved since
    the plan refuse the apply, naming them, unless ``replan`` asks for a
    fresh plan made under the lock. ``wait`` is how long to wait for the
    lock; ``between_batches`` is called after each committed transaction.
    """
    actor = actor or default_actor()
    host = socket.gethostname()
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        apply_id = audit_store.start(
            session,
            tree,
            direction="push",
            actor=actor,
            reason=reason,
            host=host,
            dry_run=not yes,
        ).id
    run = _Run(app, tree, apply_id)
    try:
        if not yes:
            return _dry_run(
                app,
                tree,
                run,
                plan_id=plan_id,
                prune=prune,
                force=force,
                source=source,
                actor=actor,
            )
        return _apply_locked(
            app,
            tree,
            run,
            plan_id=plan_id,
            prune=prune,
            force=force,
            replan=replan,
            source=source,
            actor=actor,
            wait=wait,
            run_id=run_id or uuid.uuid4().hex[:12],
            batch_ops=batch_ops,
            batch_bytes=batch_bytes,
            between_batches=between_batches,
        )
    except BaseException as exc:
        if not run.closed:
            message = str(exc) or type(exc).__name__
            try:
                run.close(FAILED, message)
            except Exception:  # the database itself may be what failed
                log.exception("could not record the outcome of apply %d", apply_id)
        raise


def _stored_result(
    stored: plan_store.StoredPlan, refusals: Sequence[str], live: TreeState | None
) -> PlanResult:
    return PlanResult(
        plan_id=stored.id,
        tree=stored.tree,
        op_count=len(stored.plan.ops),
        ops=stored.plan.ops,
        warnings=stored.plan.warnings,
        refusals=tuple(refusals),
        snapshot_id=stored.snapshot_id,
        desired_revision=None,
        prune=stored.prune,
        live_values=_live_values(stored.plan, live),
    )


def _stored_problems(stored: plan_store.StoredPlan, desired: _Desired, prune: bool) -> list[str]:
    problems: list[str] = []
    if stored.status == plan_store.APPLIED:
        problems.append(f"plan {stored.id} was already applied; make a new one with 'zkdrift plan'")
    if stored.desired_revision_id != desired.revision_id:
        problems.append(
            f"the desired state changed since plan {stored.id} was made"
            f" (now revision {desired.revision_number}); use --replan or make a new plan"
        )
    deletes = sum(1 for op in stored.plan.ops if op.kind is OpKind.DELETE)
    if deletes and not prune:
        problems.append(f"plan {stored.id} deletes {deletes} node(s): pass --prune to apply it")
    return problems


def _refuse_stored(
    run: _Run,
    stored: plan_store.StoredPlan,
    problems: Sequence[str],
    moved: Sequence[str],
    live: TreeState | None,
    *,
    update_status: bool,
) -> ApplyResult:
    """Refuse a stored plan: its own problems first, then the paths that moved."""
    parts = list(problems)
    if moved:
        parts.append(
            f"{len(moved)} planned path(s) moved since plan {stored.id} was made:"
            f" {_summary(list(moved))} (use --replan for a fresh plan)"
        )
    status = plan_store.REFUSED if update_status and stored.status != plan_store.APPLIED else None
    return run.close(
        REFUSED,
        "; ".join(parts) + "; nothing was written",
        plan=_stored_result(stored, problems, live),
        moved=moved,
        refusals=problems,
        plan_status=status,
    )


def _dry_run(
    app: App,
    tree: Tree,
    run: _Run,
    *,
    plan_id: int | None,
    prune: bool,
    force: bool,
    source: str,
    actor: str,
) -> ApplyResult:
    try:
        with zk.session(app.target(tree)) as client:
            if plan_id is None:
                result, _live, desired = _plan_with(
                    app, tree, client, prune=prune, force=force, source=source, actor=actor
                )
                run.plan_id, run.revision_id = result.plan_id, desired.revision_id
                run.ops_total = result.op_count
                if result.refusals:
                    return run.close(
                        REFUSED, "; ".join(result.refusals), plan=result, refusals=result.refusals
                    )
                if result.empty:
                    return run.close(NO_OP, "live already equals desired", plan=result)
                return run.close(
                    DRY_RUN,
                    f"{result.op_count} change(s) planned; nothing was written (apply with --yes)",
                    plan=result,
                )
            live = _read(client, tree)
    except ZkReadError as exc:
        return run.close(REFUSED, f"the live read failed: {exc}")
    desired = _load_desired(app, tree)
    with app.db.session() as session:
        stored = plan_store.load_plan(session, tree, plan_id)
    run.plan_id, run.revision_id, run.ops_total = (
        stored.id,
        desired.revision_id,
        len(stored.plan.ops),
    )
    guard = _guards(app, tree, stored.plan, desired.state, live, force=force)
    problems = _stored_problems(stored, desired, prune) + guard
    moved = moved_paths(stored.plan.ops, {} if live is None else live.nodes)
    result = _stored_result(stored, problems, live)
    if moved or problems:
        return _refuse_stored(run, stored, problems, moved, live, update_status=False)
    if result.empty:
        return run.close(NO_OP, f"plan {stored.id} has nothing to do", plan=result)
    return run.close(
        DRY_RUN,
        f"plan {stored.id}: {result.op_count} change(s); nothing was written (apply with --yes)",
        plan=result,
    )


def _apply_locked(
    app: App,
    tree: Tree,
    run: _Run,
    *,
    plan_id: int | None,
    prune: bool,
    force: bool,
    replan: bool,
    source: str,
    actor: str,
    wait: float,
    run_id: str,
    batch_ops: int,
    batch_bytes: int,
    between_batches: Callable[[BatchEvent], None] | None,
) -> ApplyResult:
    identifier = make_identifier(run_id, actor, purpose=f"apply {run.apply_id}")
    run.lock_identifier = identifier
    try:
        client = zk.connect(app.target(tree))
    except ZkDriftError as exc:
        return run.close(REFUSED, str(exc))
    watch = ConnectionWatch(client)
    lock = TreeLock(client, lock_path(app.settings.lock_root, tree.name), identifier, watch)
    try:
        try:
            lock.acquire(wait)
        except LockHeldError as exc:
            holder = exc.holder.describe() if exc.holder is not None else None
            return run.close(REFUSED, str(exc), holder=holder)
        return _apply_held(
            app,
            tree,
            run,
            client,
            watch,
            fence=lock.node_path,
            plan_id=plan_id,
            prune=prune,
            force=force,
            replan=replan,
            source=source,
            actor=actor,
            batch_ops=batch_ops,
            batch_bytes=batch_bytes,
            between_batches=between_batches,
        )
    finally:
        try:
            lock.release()
        finally:
            watch.close()
            zk.close(client)


def _apply_held(
    app: App,
    tree: Tree,
    run: _Run,
    client: KazooClient,
    watch: ConnectionWatch,
    *,
    fence: str | None,
    plan_id: int | None,
    prune: bool,
    force: bool,
    replan: bool,
    source: str,
    actor: str,
    batch_ops: int,
    batch_bytes: int,
    between_batches: Callable[[BatchEvent], None] | None,
) -> ApplyResult:
    try:
        live = _read(client, tree)
    except ZkReadError as exc:
        return run.close(REFUSED, f"the live read failed: {exc}")
    snapshot_id = _record(app, tree, live, source)
    desired = _load_desired(app, tree)
    run.revision_id = desired.revision_id
    live_nodes: Mapping[str, Znode] = {} if live is None else live.nodes

    plan: Plan | None = None
    replanned_from: int | None = None
    if plan_id is not None:
        with app.db.session() as session:
            stored = plan_store.load_plan(session, tree, plan_id)
        run.plan_id, run.ops_total = stored.id, len(stored.plan.ops)
        problems = _stored_problems(stored, desired, prune)
        moved = moved_paths(stored.plan.ops, live_nodes)
        if (moved or problems) and not (replan and stored.status != plan_store.APPLIED):
            return _refuse_stored(run, stored, problems, moved, live, update_status=True)
        if moved or problems:
            replanned_from = stored.id
        else:
            plan = stored.plan
            prune = prune or stored.prune
    if plan is None:
        plan, refusals = _compute(app, tree, desired.state, live, prune=prune, force=force)
        run.plan_id = _persist(
            app, tree, plan, desired, snapshot_id=snapshot_id, prune=prune, actor=actor
        )
        run.ops_total = len(plan.ops)
    else:
        refusals = _guards(app, tree, plan, desired.state, live, force=force)
    result = _result(
        plan,
        run.plan_id,
        refusals,
        snapshot_id=snapshot_id,
        desired=desired,
        prune=prune,
        live=live,
    )
    if refusals:
        return run.close(
            REFUSED,
            "; ".join(refusals),
            plan=result,
            refusals=refusals,
            plan_status=plan_store.REFUSED,
        )
    prefix = f"replanned (plan {replanned_from} was stale): " if replanned_from else ""
    if plan.empty:
        _mark_applied(app, tree, desired)
        return run.close(
            NO_OP,
            prefix + "live already equals desired",
            plan=result,
            plan_status=plan_store.APPLIED,
        )

    progress: list[OpOutcome] = []
    try:
        report = write_ops(
            client,
            plan.ops,
            watch=watch,
            suspend_wait=app.settings.zk_session_timeout,
            max_bytes=batch_bytes,
            max_ops=batch_ops,
            between_batches=between_batches,
            progress=progress,
            fence=fence,
        )
    except BaseException:
        # Interrupted (Ctrl-C, a failing hook): the audit still says which
        # batches committed before the caller records the failure.
        run.ops = _op_records(progress)
        run.ops_applied = sum(1 for o in progress if o.status == WRITE_APPLIED)
        raise
    run.ops = _op_records(report.outcomes)
    run.ops_applied = report.ops_applied
    if not report.ok:
        if report.conflicts:
            message = (
                f"{len(report.conflicts)} path(s) moved while applying; their batch was rolled"
                f" back and nothing after it was sent: {_summary(list(report.conflicts))}"
            )
        else:
            message = report.error or "the write failed"
        message += (
            f" ({report.ops_applied} of {len(plan.ops)} ops in"
            f" {report.batches_committed} of {report.batches_total} batches were applied;"
            " run apply again to converge)"
        )
        return run.close(
            FAILED,
            prefix + message,
            plan=result,
            moved=report.conflicts,
            plan_status=plan_store.FAILED,
        )

    # Verify: read live again and plan once more; a correct apply plans nothing.
    try:
        after = _read(client, tree)
    except ZkReadError as exc:
        return run.close(
            FAILED,
            f"applied {report.ops_applied} ops but could not read them back: {exc}",
            plan=result,
            plan_status=plan_store.FAILED,
        )
    _record(app, tree, after, source)
    check, _r = _compute(app, tree, desired.state, after, prune=prune, force=True)
    if not check.empty:
        paths = sorted({op.path for op in check.ops})
        return run.close(
            FAILED,
            f"applied {report.ops_applied} ops but live still differs from desired at"
            f" {len(paths)} path(s): {_summary(paths)}",
            plan=result,
            plan_status=plan_store.FAILED,
        )
    _mark_applied(app, tree, desired)
    # Without --prune, nodes desired lacks stay; say so rather than claim equality.
    extra = [p for p in check.warnings if "--prune" in p]
    verdict = (
        "live equals desired except for paths desired lacks (kept without --prune)"
        if extra
        else "live equals desired"
    )
    return run.close(
        APPLIED,
        prefix + f"applied {report.ops_applied} ops in {report.batches_total} transaction(s);"
        f" {verdict}",
        plan=result,
        plan_status=plan_store.APPLIED,
    )


def _mark_applied(app: App, tree: Tree, desired: _Desired) -> None:
    with app.db.session() as session:
        attached = tree_store.get_tree(session, tree.name)
        revision = (
            None
            if desired.revision_id is None
            else session.get(DesiredRevision, desired.revision_id)
        )
        desired_store.mark_applied(session, attached, revision)


# -- adopt ------------------------------------------------------------------------


def adopt_tree(
    app: App,
    name: str,
    *,
    paths: Sequence[str] = (),
    message: str = "",
    actor: str | None = None,
    source: str = "cli",
    wait: float = DEFAULT_LOCK_WAIT,
) -> AdoptResult | None:
    """Accept live as desired for the paths matching ``paths`` (all managed paths when empty).

    A glob matches a path when it matches the path or one of its ancestors,
    so ``/app/db`` adopts that whole subtree. Recorded as a desired-state
    revision with source ``adopt`` and audited with direction ``adopt``.
    Returns None when desired already equals live there.
    """
    actor = actor or default_actor()
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        apply_id = audit_store.start(
            session,
            tree,
            direction="adopt",
            actor=actor,
            reason=message,
            host=socket.gethostname(),
        ).id
    run = _Run(app, tree, apply_id)
    try:
        return _adopt(
            app, tree, run, paths=paths, message=message, actor=actor, source=source, wait=wait
        )
    except BaseException as exc:
        if not run.closed:
            run.close(FAILED, str(exc) or type(exc).__name__)
        raise


def _adopt(
    app: App,
    tree: Tree,
    run: _Run,
    *,
    paths: Sequence[str],
    message: str,
    actor: str,
    source: str,
    wait: float,
) -> AdoptResult | None:
    identifier = make_identifier(uuid.uuid4().hex[:12], actor, purpose=f"adopt {run.apply_id}")
    run.lock_identifier = identifier
    with zk.session(app.target(tree)) as client:
        watch = ConnectionWatch(client)
        lock = TreeLock(client, lock_path(app.settings.lock_root, tree.name), identifier, watch)
        try:
            lock.acquire(wait)
            try:
                live = _read(client, tree)
            finally:
                lock.release()
        finally:
            watch.close()
    if live is None:
        raise RootNotFoundError(
            f"the root {tree.root} of tree {tree.name!r} does not exist live: nothing to adopt"
        )
    view = {
        p: Znode(p, n.data, None, n.acl if tree.capture_acl else None)
        for p, n in _plan_view(app, tree, live.nodes).items()
        if not n.ephemeral
    }
    desired = _load_desired(app, tree)
    if paths:
        new = dict(desired.state.nodes)
        candidates = set(new) | set(view)
        unmatched = [
            g for g in paths if not any(matches_self_or_ancestor(p, [g]) for p in candidates)
        ]
        if unmatched:
            # A glob that matches nothing is a typo far more often than a no-op.
            raise InvalidInputError(
                f"--paths {', '.join(repr(g) for g in unmatched)} match no managed path of tree "
                f"{tree.name!r}"
            )
        for p in candidates:
            if matches_self_or_ancestor(p, paths):
                if p in view:
                    new[p] = view[p]
                else:
                    new.pop(p, None)
    else:
        new = view
    _record(app, tree, live, source)
    changes = diff(desired.state, new, compare_acl=tree.capture_acl)
    with app.db.session() as session:
        attached = tree_store.get_tree(session, tree.name)
        written = desired_store.write_revision(
            session,
            attached,
            TreeState(tree.root, new),
            author=actor,
            message=message or "adopt live state",
            source="adopt",
        )
        if written is None:
            revision_id = None
        else:
            revision, _change = written
            revision_id = revision.id
            if make_plan(tree.name, new, view, prune=True, root=tree.root).empty:
                desired_store.mark_applied(session, attached, revision)
    run.revision_id = revision_id
    run.ops = [
        audit_store.OpRecord(
            kind=str(c.kind),
            path=c.path,
            expected_version=None,
            before_digest=None if c.before is None else digest(c.before.data),
            after_digest=None if c.after is None else digest(c.after.data),
            outcome=ADOPTED,
        )
        for c in changes
    ]
    run.ops_total = run.ops_applied = len(run.ops)
    if written is None:
        run.close(NO_OP, "desired already equals live")
        return None
    revision, change = written
    run.close(ADOPTED, f"desired-state revision {revision.number}")
    return AdoptResult(
        apply_id=run.apply_id,
        tree=tree.name,
        revision=revision.number,
        added=change.added,
        removed=change.removed,
        modified=change.modified,
        paths=tuple(sorted({c.path for c in changes})),
    )


# -- lock and audit ---------------------------------------------------------------


def tree_lock_status(app: App, name: str) -> LockStatus:
    tree = _load_tree(app, name)
    with zk.session(app.target(tree)) as client:
        return lock_status(client, lock_path(app.settings.lock_root, tree.name))


def break_tree_lock(app: App, name: str, *, everyone: bool = False) -> list[LockHolder]:
    """Remove a stale holder's lock node (every contender's with ``everyone``)."""
    tree = _load_tree(app, name)
    with zk.session(app.target(tree)) as client:
        removed = break_lock(
            client, lock_path(app.settings.lock_root, tree.name), everyone=everyone
        )
    for holder in removed:
        log.warning("broke the lock of tree %s held by %s", name, holder.describe())
    return removed


def audit_log(
    app: App, name: str, *, limit: int | None = 50, include_dry_runs: bool = True
) -> list[audit_store.AuditEntry]:
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        return audit_store.list_entries(
            session, tree, limit=limit, include_dry_runs=include_dry_runs
        )


def audit_detail(
    app: App, name: str, apply_id: int
) -> tuple[audit_store.AuditEntry, list[audit_store.OpRecord]]:
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        entry = audit_store.get_entry(session, tree, apply_id)
        if entry is None:
            raise InvalidInputError(f"apply {apply_id} is not recorded for tree {name!r}")
        return entry, list(audit_store.entry_ops(session, apply_id))
