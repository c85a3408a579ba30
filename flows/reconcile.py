"""Reconcile flow: a dry run by default; applies when a parameter or the tree's policy says so."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture

from zkdrift import stopping
from zkdrift.flows.common import finish
from zkdrift.flows.params import ApplyChoice, ReconcileParams
from zkdrift.tasks.reconcile import reconcile_tree
from zkdrift.tasks.results import TreeOutcome, TreeRef
from zkdrift.tasks.trees import registered_trees


def should_apply(ref: TreeRef, apply: ApplyChoice | bool | None) -> bool:
    """The parameter wins when set; otherwise the tree's options.reconcile policy decides."""
    return ApplyChoice.of(apply).decide(ref.applies_by_policy)


@flow(name="zkdrift-reconcile")
def reconcile_flow(params: ReconcileParams = ReconcileParams()) -> list[TreeOutcome]:
    """Plan, or apply under each tree's ZooKeeper lock, the desired state of each tree.

    Cancelled (SIGTERM), an apply finishes the transaction in flight, sends
    nothing more and records how far it got before the run stops.
    """
    return run_reconcile(params)


def run_reconcile(params: ReconcileParams) -> list[TreeOutcome]:
    """Reconcile ``params.trees`` (every tree when empty), inside a flow run."""
    with stopping.sigterm_handled():
        refs = registered_trees(params.trees)
        futures: dict[str, dict[str, PrefectFuture[Any]]] = {
            ref.name: {
                "reconcile": reconcile_tree.submit(
                    ref.name,
                    apply=should_apply(ref, params.apply),
                    prune=params.prune,
                    reason=params.reason,
                )
            }
            for ref in refs
        }
        return finish("reconcile", "zkdrift reconcile", futures)
