"""Apply: make live equal desired under the tree's lock, in three steps.

1. **Resolve** the plan: a fresh one made under the lock, or a stored one
   checked against live (refused, naming the paths, when its nodes moved,
   unless ``replan`` asks for a fresh one).
2. **Write** it with compare-and-set transactions fenced by the lock node.
3. **Verify**: read live again and plan once more; a correct apply plans
   nothing.

The lock is held from before live is read until after it is verified, so
concurrent applies of one tree run one after the other: the first one
writes, the next ones find nothing to do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kazoo.client import KazooClient

from zkdrift import stopping
from zkdrift.app import App
from zkdrift.errors import ZkDriftError
from zkdrift.model import OpKind, Plan, TreeState
from zkdrift.reconcile.audit import AuditedRun, audited_run, settle_unfinished
from zkdrift.reconcile.outcomes import ApplyResult, Direction, Outcome, PlanResult, PlanStatus
from zkdrift.reconcile.planning import (
    PlanInputs,
    RevisionRef,
    compute_recorded,
    current_revision,
    guards,
    live_values,
    load_desired,
    load_tree,
    moved_paths,
    only_pruning,
    persist,
    plan_result,
    plan_with,
    read_live,
    record_live,
    recorded_guards,
    recorded_inputs,
)
from zkdrift.store import desired as desired_store
from zkdrift.store import plans as plan_store
from zkdrift.store import trees as tree_store
from zkdrift.store.models import DesiredRevision, Tree
from zkdrift.zk import client as zk
from zkdrift.zk.lock import LockHeldError, TreeLock, held_lock, make_identifier
from zkdrift.zk.reader import ZkReadError, read_acls_of
from zkdrift.zk.writer import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_OPS,
    BatchEvent,
    OpOutcome,
    write_ops,
)

DEFAULT_LOCK_WAIT = 30.0


@dataclass(frozen=True)
class ApplyOptions:
    """How one apply runs (everything but which tree and which plan)."""

    prune: bool = False
    force: bool = False
    replan: bool = False
    source: str = "cli"
    actor: str = ""
    wait: float = DEFAULT_LOCK_WAIT
    batch_ops: int = DEFAULT_BATCH_OPS
    batch_bytes: int = DEFAULT_BATCH_BYTES
    between_batches: Callable[[BatchEvent], None] | None = None
    direction: Direction = Direction.PUSH
    # Deletes of a prune only where these globs match (a restore of some paths).
    prune_only: tuple[str, ...] = ()
    # The desired revision this run was started for (a promote or restore wrote it):
    # refused when the desired state moved on meanwhile.
    expect_revision_id: int | None = None


def _summary(paths: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


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
    direction: Direction = Direction.PUSH,
    prune_only: Sequence[str] = (),
    expect_revision_id: int | None = None,
) -> ApplyResult:
    """Make live equal desired (or apply plan ``plan_id``), under the tree's lock.

    Without ``yes`` nothing is written to ZooKeeper: the plan is made (or
    the stored plan checked against live) and shown. Deletes need ``prune``;
    ``force`` lifts the size guards. With ``plan_id``, nodes that moved since
    the plan refuse the apply, naming them, unless ``replan`` asks for a
    fresh plan made under the lock. ``wait`` is how long to wait for the
    lock; ``between_batches`` is called after each committed transaction.
    ``direction`` is what the audit calls the run (a promote or a restore
    pushes too); ``prune_only`` keeps deletes to the paths it matches;
    ``expect_revision_id`` refuses the apply when the current desired
    revision is another one.
    """
    tree = load_tree(app, name)
    options = ApplyOptions(
        prune=prune,
        force=force,
        replan=replan,
        source=source,
        actor=app.actor(actor),
        wait=wait,
        batch_ops=batch_ops,
        batch_bytes=batch_bytes,
        between_batches=between_batches,
        direction=direction,
        prune_only=tuple(prune_only),
        expect_revision_id=expect_revision_id,
    )
    with audited_run(
        app, tree, direction=direction, actor=options.actor, reason=reason, dry_run=not yes
    ) as run:
        if not yes:
            return _dry_run(app, tree, run, plan_id, options)
        return _apply_locked(app, tree, run, plan_id, options, run_id or uuid.uuid4().hex[:12])


# -- resolve ------------------------------------------------------------------------


def _stored_result(
    stored: plan_store.StoredPlan, refusals: Sequence[str], live: TreeState | None
) -> PlanResult:
    return PlanResult(
        plan_id=stored.id,
        tree=stored.tree,
        ops=stored.plan.ops,
        warnings=stored.plan.warnings,
        refusals=tuple(refusals),
        snapshot_id=stored.snapshot_id,
        prune=stored.prune,
        live_values=live_values(stored.plan, live),
    )


def _stored_problems(stored: plan_store.StoredPlan, desired: RevisionRef, prune: bool) -> list[str]:
    problems: list[str] = []
    if stored.status == PlanStatus.APPLIED:
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
    run: AuditedRun,
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
    status = PlanStatus.REFUSED if update_status and stored.status != PlanStatus.APPLIED else None
    return run.close(
        Outcome.REFUSED,
        "; ".join(parts) + "; nothing was written",
        plan=_stored_result(stored, problems, live),
        moved=moved,
        refusals=problems,
        plan_status=status,
    )


def _load_stored(app: App, tree: Tree, plan_id: int) -> plan_store.StoredPlan:
    with app.db.session() as session:
        return plan_store.load_plan(session, tree, plan_id)


def _dry_run(
    app: App, tree: Tree, run: AuditedRun, plan_id: int | None, options: ApplyOptions
) -> ApplyResult:
    nothing_written = "nothing was written (apply with --yes)"
    try:
        with zk.session(app.target(tree)) as client:
            if plan_id is None:
                result, revision = plan_with(
                    app,
                    tree,
                    client,
                    prune=options.prune,
                    force=options.force,
                    source=options.source,
                    actor=options.actor,
                )
                run.plan_id, run.revision_id = result.plan_id, revision.revision_id
                run.ops_total = result.op_count
                if result.refusals:
                    return run.close(
                        Outcome.REFUSED,
                        "; ".join(result.refusals),
                        plan=result,
                        refusals=result.refusals,
                    )
                if result.empty:
                    return run.close(Outcome.NO_OP, "live already equals desired", plan=result)
                return run.close(
                    Outcome.DRY_RUN,
                    f"{result.op_count} change(s) planned; {nothing_written}",
                    plan=result,
                )
            live = read_live(client, tree)
    except ZkReadError as exc:
        return run.close(Outcome.REFUSED, f"the live read failed: {exc}")
    desired = load_desired(app, tree)
    stored = _load_stored(app, tree, plan_id)
    run.plan_id, run.revision_id, run.ops_total = (
        stored.id,
        desired.revision_id,
        len(stored.plan.ops),
    )
    problems = _stored_problems(stored, desired, options.prune) + guards(
        app, tree, stored.plan, desired.state, live, force=options.force
    )
    moved = moved_paths(stored.plan, {} if live is None else live.nodes)
    if moved or problems:
        return _refuse_stored(run, stored, problems, moved, live, update_status=False)
    result = _stored_result(stored, problems, live)
    if result.empty:
        return run.close(Outcome.NO_OP, f"plan {stored.id} has nothing to do", plan=result)
    return run.close(
        Outcome.DRY_RUN,
        f"plan {stored.id}: {result.op_count} change(s); {nothing_written}",
        plan=result,
    )


# -- write ----------------------------------------------------------------------------


def _apply_locked(
    app: App,
    tree: Tree,
    run: AuditedRun,
    plan_id: int | None,
    options: ApplyOptions,
    run_id: str,
) -> ApplyResult:
    identifier = make_identifier(run_id, options.actor, purpose=f"apply {run.apply_id}")
    run.lock_identifier = identifier
    try:
        client = zk.connect(app.target(tree))
    except ZkDriftError as exc:
        return run.close(Outcome.REFUSED, str(exc))
    try:
        with held_lock(client, app.lock_path(tree), identifier, wait=options.wait) as lock:
            return _apply_held(app, tree, run, client, lock, plan_id, options)
    except LockHeldError as exc:
        holder = exc.holder.describe() if exc.holder is not None else None
        return run.close(Outcome.REFUSED, str(exc), holder=holder)
    finally:
        zk.close(client)


def _resolve(
    app: App,
    tree: Tree,
    run: AuditedRun,
    client: KazooClient,
    live: TreeState | None,
    desired: RevisionRef,
    snapshot_id: int | None,
    plan_id: int | None,
    options: ApplyOptions,
) -> tuple[Plan, bool, int | None, PlanInputs | None] | ApplyResult:
    """The plan to write (stored or fresh), its prune flag, the stale plan it replaced
    and, for a fresh plan, what it saw; or the refusal of a stored plan that no longer
    fits live."""
    prune = options.prune
    if plan_id is not None:
        stored = _load_stored(app, tree, plan_id)
        run.plan_id, run.ops_total = stored.id, len(stored.plan.ops)
        problems = _stored_problems(stored, desired, prune)
        moved = moved_paths(stored.plan, {} if live is None else live.nodes)
        stale = bool(moved or problems)
        if stale and not (options.replan and stored.status != PlanStatus.APPLIED):
            return _refuse_stored(run, stored, problems, moved, live, update_status=True)
        if not stale:
            return stored.plan, prune or stored.prune, None, None
        replanned_from: int | None = stored.id
    else:
        replanned_from = None
    plan, inputs = compute_recorded(app, tree, desired, snapshot_id, prune=prune, client=client)
    plan = only_pruning(plan, prune, options.prune_only)
    run.plan_id = persist(
        app, tree, plan, desired, snapshot_id=snapshot_id, prune=prune, actor=options.actor
    )
    run.ops_total = len(plan.ops)
    return plan, prune, replanned_from, inputs


def _apply_held(
    app: App,
    tree: Tree,
    run: AuditedRun,
    client: KazooClient,
    lock: TreeLock,
    plan_id: int | None,
    options: ApplyOptions,
) -> ApplyResult:
    try:
        live = read_live(client, tree)
    except ZkReadError as exc:
        return run.close(Outcome.REFUSED, f"the live read failed: {exc}")
    settled = settle_unfinished(
        app, tree, run.apply_id, TreeState(tree.root) if live is None else live
    )
    snapshot_id = record_live(app, tree, live, options.source)
    desired = current_revision(app, tree)
    run.revision_id = desired.revision_id
    if options.expect_revision_id is not None and desired.revision_id != options.expect_revision_id:
        return run.close(
            Outcome.REFUSED,
            f"the desired state changed while this {options.direction} was starting (it is now"
            f" revision {desired.revision_number}); nothing was written",
        )
    resolved = _resolve(app, tree, run, client, live, desired, snapshot_id, plan_id, options)
    if isinstance(resolved, ApplyResult):
        return resolved
    plan, prune, replanned_from, inputs = resolved
    # The plan is weighed against the recorded snapshot, streamed, not the read held here.
    if inputs is None:
        inputs = recorded_inputs(app, tree, plan, desired, snapshot_id)
    refusals = recorded_guards(app, tree, plan, inputs, force=options.force)
    result = plan_result(
        plan,
        run.plan_id,
        refusals,
        snapshot_id=snapshot_id,
        desired=desired,
        prune=prune,
        live=inputs.live,
    )
    if refusals:
        return run.close(
            Outcome.REFUSED,
            "; ".join(refusals),
            plan=result,
            refusals=refusals,
            plan_status=PlanStatus.REFUSED,
        )
    prefix = "".join(f"{note}; " for note in settled)
    if replanned_from:
        prefix += f"replanned (plan {replanned_from} was stale): "
    if plan.empty:
        _mark_applied(app, tree, desired)
        return run.close(
            Outcome.NO_OP,
            prefix + "live already equals desired",
            plan=result,
            plan_status=PlanStatus.APPLIED,
        )

    run.live_values = result.live_values
    with stopping.graceful() as stop:
        return _write(
            app, tree, run, client, lock, plan, result, desired, prune, options, prefix, stop
        )


def _write(
    app: App,
    tree: Tree,
    run: AuditedRun,
    client: KazooClient,
    lock: TreeLock,
    plan: Plan,
    result: PlanResult,
    desired: RevisionRef,
    prune: bool,
    options: ApplyOptions,
    prefix: str,
    stop: Callable[[], bool],
) -> ApplyResult:
    """Send the plan, recording each batch as it goes, and say how it ended.

    Runs in a graceful section: SIGTERM lets the batch in flight finish,
    sends nothing more, and closes the audit row as interrupted.
    """
    progress: list[OpOutcome] = []
    try:
        report = write_ops(
            client,
            plan.ops,
            watch=lock.watch,
            suspend_wait=app.settings.zk_session_timeout,
            max_bytes=options.batch_bytes,
            max_ops=options.batch_ops,
            between_batches=options.between_batches,
            progress=progress,
            fence=lock.node_path,
            stop=stop,
            journal=run.journal,
        )
    except BaseException:
        # Interrupted (Ctrl-C, a failing hook): the audit still says which
        # batches committed before the failure is recorded.
        run.record_outcomes(progress)
        raise
    run.record_outcomes(report.outcomes)
    done = (
        f"{report.ops_applied} of {len(plan.ops)} ops in"
        f" {report.batches_committed} of {report.batches_total} batches were applied"
    )
    if report.stopped:
        return run.close(
            Outcome.INTERRUPTED,
            prefix + f"stopped by SIGTERM: {done}; nothing more was sent (run apply again"
            " to converge)",
            plan=result,
            plan_status=PlanStatus.FAILED,
        )
    if not report.ok:
        if report.conflicts:
            message = (
                f"{len(report.conflicts)} path(s) moved while applying; their batch was rolled"
                f" back and nothing after it was sent: {_summary(list(report.conflicts))}"
            )
        else:
            message = report.error or "the write failed"
        return run.close(
            Outcome.FAILED,
            prefix + message + f" ({done}; run apply again to converge)",
            plan=result,
            moved=report.conflicts,
            plan_status=PlanStatus.FAILED,
        )
    if stop():
        return run.close(
            Outcome.APPLIED,
            prefix + f"applied {run.ops_applied} ops in {report.batches_total} transaction(s);"
            " stopping on SIGTERM, so live was not read back to verify",
            plan=result,
            plan_status=PlanStatus.APPLIED,
        )
    return _verify(
        app, tree, run, client, desired, result, prune, options, prefix, report.batches_total
    )


# -- verify ---------------------------------------------------------------------------


def _verify(
    app: App,
    tree: Tree,
    run: AuditedRun,
    client: KazooClient,
    desired: RevisionRef,
    result: PlanResult,
    prune: bool,
    options: ApplyOptions,
    prefix: str,
    transactions: int,
) -> ApplyResult:
    """Read live again and plan once more: a correct apply plans nothing."""
    try:
        after = read_live(client, tree)
    except ZkReadError as exc:
        return run.close(
            Outcome.FAILED,
            f"applied {run.ops_applied} ops but could not read them back: {exc}",
            plan=result,
            plan_status=PlanStatus.FAILED,
        )
    after_id = record_live(app, tree, after, options.source)
    del after
    check, _inputs = compute_recorded(app, tree, desired, after_id, prune=prune)
    check = only_pruning(check, prune, options.prune_only)
    if not check.empty:
        paths = sorted({op.path for op in check.ops})
        return run.close(
            Outcome.FAILED,
            f"applied {run.ops_applied} ops but live still differs from desired at"
            f" {len(paths)} path(s): {_summary(paths)}",
            plan=result,
            plan_status=PlanStatus.FAILED,
        )
    try:
        wrong_acl = _created_with_other_acl(app, client, tree.root, result)
    except ZkReadError as exc:
        return run.close(
            Outcome.FAILED,
            f"applied {run.ops_applied} ops but could not read their ACLs back: {exc}",
            plan=result,
            plan_status=PlanStatus.FAILED,
        )
    if wrong_acl:
        return run.close(
            Outcome.FAILED,
            f"applied {run.ops_applied} ops but {len(wrong_acl)} created node(s) hold another"
            f" ACL than planned: {_summary(wrong_acl)}",
            plan=result,
            plan_status=PlanStatus.FAILED,
        )
    _mark_applied(app, tree, desired)
    # Without --prune, nodes desired lacks stay; say so rather than claim equality.
    kept = any("--prune" in warning for warning in check.warnings)
    verdict = (
        "live equals desired except for paths desired lacks (kept without --prune)"
        if kept
        else "live equals desired"
    )
    return run.close(
        Outcome.APPLIED,
        prefix + f"applied {run.ops_applied} ops in {transactions} transaction(s); {verdict}",
        plan=result,
        plan_status=PlanStatus.APPLIED,
    )


def _created_with_other_acl(
    app: App, client: KazooClient, root: str, result: PlanResult
) -> list[str]:
    """Created nodes whose ACL, read back, is not the one the plan gave them."""
    planned = {
        op.path: set(op.acl) for op in result.ops if op.kind is OpKind.CREATE and op.acl is not None
    }
    if not planned:
        return []
    actual = read_acls_of(client, root, sorted(planned), timeout=app.settings.zk_session_timeout)
    return sorted(p for p, acl in planned.items() if p in actual and set(actual[p]) != acl)


def _mark_applied(app: App, tree: Tree, desired: RevisionRef) -> None:
    with app.db.session() as session:
        attached = tree_store.get_tree(session, tree.name)
        revision = (
            None
            if desired.revision_id is None
            else session.get(DesiredRevision, desired.revision_id)
        )
        desired_store.mark_applied(session, attached, revision)
