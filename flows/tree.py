"""The flows behind a tree's own deployments: flat parameters, the tree fixed.

``zkdrift-pipeline/<tree>`` and ``zkdrift-reconcile/<tree>`` run these. The
tree is the deployment's name, so a run started from the tree's page works
on that tree and nothing else, and the form shows only what a person may
choose: apply or not, prune or not, and why.
"""

from __future__ import annotations

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.runtime import deployment

from zkdrift.errors import InvalidInputError
from zkdrift.flows.params import PipelineParams, ReconcileParams
from zkdrift.flows.pipeline import run_pipeline
from zkdrift.flows.reconcile import run_reconcile
from zkdrift.tasks.results import TreeOutcome


def deployment_tree() -> str:
    """The tree this run works on: its deployment's name."""
    name = deployment.name
    if not name:
        raise InvalidInputError(
            "this flow runs through a tree's deployment (served by 'zkdrift serve');"
            " here, use 'zkdrift run pipeline --tree NAME'"
        )
    return str(name)


def tree_run_name() -> str:
    """Flow run names that say which tree: ``demo-2026-12-01T14-12``."""
    from prefect.runtime import flow_run

    started = flow_run.scheduled_start_time
    when = started.strftime("%Y-%m-%dT%H-%M") if started is not None else ""
    return f"{deployment.name or 'tree'}-{when}".rstrip("-")


@flow(name="zkdrift-pipeline", flow_run_name=tree_run_name)
def tree_pipeline_flow(
    apply: bool = False,
    prune: bool = False,
    reason: str = "scheduled pipeline",
    report: bool = True,
) -> State[list[TreeOutcome]]:
    """Snapshot, check drift, reconcile and report this deployment's tree.

    Args:
        apply: On: write the desired state to ZooKeeper, under the tree's lock.
            Off: plan only; nothing is written.
        prune: Also delete live nodes the desired state lacks (never ephemeral nodes).
        reason: Why this run may change ZooKeeper; recorded in the audit trail.
        report: Render the tree's HTML report.
    """
    params = PipelineParams(
        trees=[deployment_tree()], apply=apply, prune=prune, reason=reason, report=report
    )
    return run_pipeline(params)


@flow(name="zkdrift-reconcile", flow_run_name=tree_run_name)
def tree_reconcile_flow(
    apply: bool = False,
    prune: bool = False,
    reason: str = "reconcile from Prefect",
) -> list[TreeOutcome]:
    """Plan, or apply under the tree's ZooKeeper lock, this deployment's tree.

    Args:
        apply: On: write the desired state to ZooKeeper, under the tree's lock.
            Off: plan only; nothing is written.
        prune: Also delete live nodes the desired state lacks (never ephemeral nodes).
        reason: Why this run may change ZooKeeper; recorded in the audit trail.
    """
    params = ReconcileParams(trees=[deployment_tree()], apply=apply, prune=prune, reason=reason)
    return run_reconcile(params)
