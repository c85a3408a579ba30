"""Collecting per-tree futures into outcomes, failing a run that lost a tree, and
naming the final state of a run that checked drift ("Drifted", "In sync")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture, wait
from prefect.states import Completed

from zkdrift.errors import ZkDriftError
from zkdrift.tasks.artifacts import publish_summary
from zkdrift.tasks.results import TreeOutcome
from zkdrift.tasks.runtime import run_logger

# TreeOutcome field each step's result lands in.
STEPS = ("snapshot", "sync", "drift", "reconcile", "report")


T = TypeVar("T")


def upstream(future: PrefectFuture[T]) -> T:
    """A future passed as a task argument: Prefect waits for it and passes its result.

    Typed as the result so the task's signature checks; a failed upstream
    leaves the downstream task not run ("NotReady").
    """
    return cast(T, future)


class TreesFailedError(ZkDriftError):
    """Raised at the end of a run in which some trees failed (the others completed)."""


def _error_text(exc: Any) -> str:
    if isinstance(exc, ZkDriftError):
        return str(exc)
    if isinstance(exc, BaseException):
        return f"{type(exc).__name__}: {exc}"
    return str(exc)


def outcome(tree: str, steps: Mapping[str, PrefectFuture[Any]]) -> TreeOutcome:
    """What happened to one tree: each step's result up to the first that failed.

    Steps are read in the order they were submitted; those named in STEPS
    keep their results, others (publishing artifacts) only count when they fail.
    """
    values: dict[str, Any] = {}
    for step, future in steps.items():
        state = future.state
        if state.is_completed():
            if step in STEPS:
                values[step] = future.result()
            continue
        if state.is_failed() or state.is_crashed():
            error = _error_text(future.result(raise_on_failure=False))
        else:  # not run because an upstream step failed: that step already said why
            error = state.message or state.name or "not run"
        return TreeOutcome(tree=tree, failed_step=step, error=error, **values)
    return TreeOutcome(tree=tree, **values)


def finish(
    flow_key: str, title: str, futures: Mapping[str, Mapping[str, PrefectFuture[Any]]]
) -> list[TreeOutcome]:
    """Wait for every tree, publish the run summary, and fail the run if a tree failed."""
    wait([f for steps in futures.values() for f in steps.values()])
    outcomes = [outcome(tree, steps) for tree, steps in futures.items()]
    publish_summary(flow_key, title, outcomes)
    failed = [o for o in outcomes if not o.ok]
    logger = run_logger()
    for o in failed:
        logger.error("tree %s failed at %s: %s", o.tree, o.failed_step, o.error)
    if failed:
        names = ", ".join(f"{o.tree} ({o.failed_step}: {o.error})" for o in failed)
        raise TreesFailedError(
            f"{len(failed)} of {len(outcomes)} tree(s) failed: {names}; "
            f"the others completed (see the {flow_key}-summary artifact)"
        )
    return outcomes


def names(outcomes: Sequence[TreeOutcome]) -> list[str]:
    return [o.tree for o in outcomes]


# Final state names of runs that checked drift: a user sees them in the run
# list and filters on them. All are of type COMPLETED: the run itself worked.
DRIFTED = "Drifted"  # some tree differs from its desired state, and still does
RECONCILED = "Reconciled"  # drift was found and applied away in this run
IN_SYNC = "In sync"
OBSERVED = "Observed"  # every tree is observed only (no desired state)


def verdict(outcomes: Sequence[TreeOutcome]) -> State[list[TreeOutcome]]:
    """The completed state of a run that checked drift, named for what it found."""
    checked = [o for o in outcomes if o.drift is not None and not o.drift.observed]
    drifted = [o for o in checked if o.drift is not None and o.drift.has_differences]
    still = [o for o in drifted if not o.reconciled]
    if still:
        name = DRIFTED
    elif drifted:
        name = RECONCILED
    elif checked:
        name = IN_SYNC
    else:
        name = OBSERVED
    message = "; ".join(f"{o.tree}: {o.status}" for o in outcomes)
    return Completed(name=name, message=message, data=list(outcomes))
