"""Pipeline flow: snapshot (and sync from Git) -> drift -> reconcile per policy -> report,
every tree at once."""

from __future__ import annotations

from typing import Any

from prefect import allow_failure, flow
from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture

from zkdrift import stopping
from zkdrift.flows.common import finish, upstream, verdict
from zkdrift.flows.params import PipelineParams
from zkdrift.flows.reconcile import should_apply
from zkdrift.tasks.artifacts import publish_drift, publish_report_link
from zkdrift.tasks.drift import check_tree_drift
from zkdrift.tasks.reconcile import actor as flow_actor
from zkdrift.tasks.reconcile import reconcile_tree
from zkdrift.tasks.report import render_tree_report
from zkdrift.tasks.results import TreeOutcome
from zkdrift.tasks.snapshot import snapshot_tree
from zkdrift.tasks.sync import sync_tree_desired
from zkdrift.tasks.trees import registered_trees


@flow(name="zkdrift-pipeline")
def pipeline_flow(params: PipelineParams = PipelineParams()) -> State[list[TreeOutcome]]:
    """Snapshot, check drift, reconcile (dry run unless told or the policy applies), report.

    Each tree runs its own chain of tasks concurrently with the others; a
    tree whose step fails stops there, and the run summary shows every tree.
    The run ends "Drifted", "Reconciled", "In sync" or "Observed".
    """
    return run_pipeline(params)


def run_pipeline(params: PipelineParams) -> State[list[TreeOutcome]]:
    """The pipeline over ``params.trees`` (every tree when empty), inside a flow run.

    Cancelled (SIGTERM), an apply stops cleanly after its batch in flight.
    A tree with no desired state is observed: snapshot and report only. A
    tree whose desired state comes from Git is synced first, so a merged pull
    request shows as pending (or is applied, when the policy applies); a sync
    that fails (a malformed commit) fails the tree's run, but its drift is
    still checked against the revision in force.
    """
    with stopping.sigterm_handled():
        refs = registered_trees(params.trees)
        futures: dict[str, dict[str, PrefectFuture[Any]]] = {}
        for ref in refs:
            steps: dict[str, PrefectFuture[Any]] = {}
            steps["snapshot"] = snapshot_tree.submit(ref.name)
            after_sync: list[Any] = []
            if ref.desired_source is not None:
                steps["sync"] = sync_tree_desired.submit(ref.name, author=flow_actor())
                after_sync.append(allow_failure(steps["sync"]))
            steps["drift"] = check_tree_drift.submit(
                ref.name,
                snapshot=upstream(steps["snapshot"]),
                wait_for=after_sync,
                return_state=False,
            )
            # One report card per run: the report step links the report it renders.
            steps["artifacts"] = publish_drift.submit(
                upstream(steps["drift"]), link_report=not params.report
            )
            steps["reconcile"] = reconcile_tree.submit(
                ref.name,
                apply=should_apply(ref, params.apply),
                prune=params.prune,
                reason=params.reason,
                drift=upstream(steps["drift"]),
            )
            if params.report:
                steps["report"] = render_tree_report.submit(
                    ref.name, since=params.since, wait_for=[steps["reconcile"]], return_state=False
                )
                steps["link"] = publish_report_link.submit(upstream(steps["report"]))
            futures[ref.name] = steps
        return verdict(finish("pipeline", "zkdrift pipeline", futures))
