"""Plan (dry run) or apply one tree's desired state to ZooKeeper."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from prefect import task
from prefect.runtime import flow_run

from tasks.results import DriftSummary, ReconcileSummary
from tasks.retry import retry_options
from tasks.runtime import log_endpoints, open_app, run_logger

LOGGED_OPS = 20


def _first(obj: Any, *names: str) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _ops(result: Any) -> tuple[Any, ...]:
    """The operations of a PlanResult or ApplyResult (directly or on its plan)."""
    ops = _first(result, "ops", "operations")
    if ops is None:
        plan = _first(result, "plan")
        ops = _first(plan, "ops") if plan is not None else None
    return tuple(ops or ())


def _describe(ops: Iterable[Any]) -> tuple[str, ...]:
    """``set /path``: kind and path of each op, never its data."""
    described = []
    for op in ops:
        kind = _first(op, "kind") or type(op).__name__
        op_path = _first(op, "path") or "?"
        described.append(f"{getattr(kind, 'value', kind)} {op_path}")
    return tuple(described)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def actor() -> str:
    name = flow_run.get_name()
    return f"prefect:{name}" if name else "prefect"


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
    if drift is not None and not drift.has_differences:
        logger.info("tree %s: live matches desired, nothing to reconcile", tree)
        return ReconcileSummary(tree=tree, mode=mode, operations=0, applied=0, outcome="in sync")
    reconcile_lib = importlib.import_module("zkdrift.reconcile")
    with open_app() as app:
        log_endpoints(app, tree)
        if apply:
            result = reconcile_lib.apply_tree(
                app, tree, yes=True, prune=prune, reason=reason, actor=actor(), source="flow"
            )
        else:
            result = reconcile_lib.plan_tree(app, tree, prune=prune, source="flow")
    ops = _describe(_ops(result))
    applied_count = _int(_first(result, "applied", "applied_count", "ops_applied"))
    summary = ReconcileSummary(
        tree=tree,
        mode=mode,
        operations=len(ops),
        applied=(applied_count if applied_count is not None else len(ops)) if apply else 0,
        plan_id=_int(_first(result, "plan_id")) or _int(_first(_first(result, "plan"), "id")),
        apply_id=_int(_first(result, "apply_id")),
        ops=ops,
        outcome=str(getattr(_first(result, "outcome", "status"), "value", "") or ""),
    )
    if not ops:
        logger.info("tree %s: nothing to reconcile (%s)", tree, summary.mode)
    elif apply:
        logger.warning("tree %s: applied %d operation(s)", tree, summary.applied)
    else:
        logger.info(
            "tree %s: dry run, %d operation(s) planned; apply with the reconcile flow's "
            "'apply' parameter or the tree's policy options.reconcile='apply'",
            tree,
            len(ops),
        )
    for line in ops[:LOGGED_OPS]:
        logger.info("tree %s: %s %s", tree, "applied" if apply else "would", line)
    if len(ops) > LOGGED_OPS:
        logger.info("tree %s: ... and %d more", tree, len(ops) - LOGGED_OPS)
    return summary
