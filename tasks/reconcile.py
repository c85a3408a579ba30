"""Plan (dry run) or apply one tree's desired state to ZooKeeper."""

from __future__ import annotations

from collections.abc import Iterable

from prefect import task
from prefect.runtime import flow_run

from zkdrift import desired as desired_lib
from zkdrift import reconcile as reconcile_lib
from zkdrift import vocabulary
from zkdrift.errors import ZkDriftError
from zkdrift.model import Op
from zkdrift.tasks.results import DriftSummary, ReconcileSummary
from zkdrift.tasks.retry import retry_options
from zkdrift.tasks.runtime import log_endpoints, open_app, run_logger, tree_slot

LOGGED_OPS = 20


class ReconcileRefusedError(ZkDriftError):
    """An apply that zkdrift refused or that failed: the message says why."""


def describe(ops: Iterable[Op]) -> tuple[str, ...]:
    """``set /path``: kind and path of each op, never its data."""
    return tuple(f"{op.kind} {op.path}" for op in ops)


def actor() -> str:
    name = flow_run.get_name()
    return f"prefect:{name}" if name else "prefect"


def _observed(tree: str, mode: str) -> ReconcileSummary:
    """A tree with no desired state has nothing to reconcile: it is only observed."""
    run_logger().info("%s", vocabulary.observed_line(tree))
    return ReconcileSummary(
        tree=tree, mode=mode, operations=0, applied=0, outcome=vocabulary.OBSERVED_ONLY
    )


@task(name="reconcile-tree", task_run_name="reconcile-{tree}", **retry_options())
def reconcile_tree(
    tree: str,
    *,
    apply: bool,
    prune: bool = False,
    reason: str = "reconcile from Prefect",
    drift: DriftSummary | None = None,
) -> ReconcileSummary:
    """Apply when ``apply`` (under the tree's ZooKeeper lock); otherwise only plan.

    Given the ``drift`` just checked and it found nothing, there is nothing
    to plan: the tree is left alone without another read.
    """
    mode = "apply" if apply else "dry-run"
    logger = run_logger()
    if drift is not None and drift.observed:
        return _observed(tree, mode)
    if drift is not None and not drift.has_differences:
        logger.info("tree %s: live matches desired, nothing to reconcile", tree)
        return ReconcileSummary(tree=tree, mode=mode, operations=0, applied=0, outcome="in sync")
    with open_app() as app, tree_slot(tree):
        log_endpoints(app, tree)
        if not desired_lib.has_desired_state(app, tree):
            return _observed(tree, mode)
        if apply:
            result = reconcile_lib.apply_tree(
                app, tree, yes=True, prune=prune, reason=reason, actor=actor(), source="flow"
            )
            plan = result.plan
            ops = describe(plan.ops) if plan is not None else ()
            summary = ReconcileSummary(
                tree=tree,
                mode=mode,
                operations=result.ops_total,
                applied=result.ops_applied,
                plan_id=plan.plan_id if plan is not None else None,
                apply_id=result.apply_id,
                ops=ops,
                outcome=str(result.outcome),
            )
            if not result.ok:
                raise ReconcileRefusedError(
                    f"apply {result.apply_id} of tree {tree} {result.outcome}: {result.message}"
                )
        else:
            planned = reconcile_lib.plan_tree(app, tree, prune=prune, source="flow", actor=actor())
            ops = describe(planned.ops)
            summary = ReconcileSummary(
                tree=tree,
                mode=mode,
                operations=planned.op_count,
                applied=0,
                plan_id=planned.plan_id,
                ops=ops,
                outcome="planned",
            )
            for refusal in planned.refusals:
                logger.warning("tree %s: an apply of this plan would be refused: %s", tree, refusal)
    if not ops:
        logger.info("tree %s: nothing to reconcile (%s)", tree, mode)
    elif apply:
        logger.warning(
            "tree %s: applied %d of %d operation(s) (apply %s, plan %s)",
            tree,
            summary.applied,
            summary.operations,
            summary.apply_id,
            summary.plan_id,
        )
    else:
        logger.info(
            "tree %s: dry run, %d operation(s) in plan %s; to apply, set the 'apply' parameter "
            "or the tree's policy options.reconcile = 'apply'",
            tree,
            summary.operations,
            summary.plan_id,
        )
    for line in ops[:LOGGED_OPS]:
        logger.info("tree %s: %s %s", tree, "applied" if apply else "would", line)
    if len(ops) > LOGGED_OPS:
        logger.info("tree %s: ... and %d more", tree, len(ops) - LOGGED_OPS)
    return summary
