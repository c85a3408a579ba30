"""Prefect deployments of the zkdrift flows, following the registered trees.

Each tree gets a pipeline deployment on the schedule in its policy and a
reconcile deployment that runs one at a time (concurrency limit 1), so two
applies of one tree never queue up against each other's lock. A handful of
``all-trees`` deployments run a flow over every tree on demand.
``zkdrift serve`` serves these without a work pool; ``prefect.yaml``
declares the same set for ``prefect deploy`` and a worker, with module-path
entrypoints (``zkdrift.flows.pipeline.pipeline_flow``) that load the same
way from a checkout and from an installed package.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import prefect
import yaml
from prefect import Flow
from prefect.schedules import Cron, Interval
from prefect.schedules import Schedule as PrefectSchedule
from prefect.types.entrypoint import EntrypointType
from pydantic import BaseModel

from zkdrift import trees as trees_lib
from zkdrift.app import App
from zkdrift.errors import InvalidInputError
from zkdrift.flows.drift import drift_flow
from zkdrift.flows.params import (
    DriftParams,
    PipelineParams,
    ReconcileParams,
    ReportParams,
    SnapshotParams,
)
from zkdrift.flows.pipeline import pipeline_flow
from zkdrift.flows.reconcile import reconcile_flow
from zkdrift.flows.report import report_flow
from zkdrift.flows.snapshot import snapshot_flow
from zkdrift.policy import Schedule
from zkdrift.trees import TreeInfo

log = logging.getLogger(__name__)

ALL_TREES = "all-trees"
DEFAULT_WORK_POOL = "zkdrift"
TAGS = ("zkdrift",)


@dataclass(frozen=True)
class FlowRef:
    """One flow: its key on the command line, the flow object and its parameter model."""

    key: str
    flow: Flow[..., Any]
    params: type[BaseModel]

    @property
    def flow_name(self) -> str:
        return self.flow.name

    @property
    def entrypoint(self) -> str:
        """The module-path entrypoint Prefect loads the flow from (no file path involved)."""
        return f"{self.flow.fn.__module__}.{self.flow.fn.__name__}"


FLOWS: dict[str, FlowRef] = {
    ref.key: ref
    for ref in (
        FlowRef("pipeline", pipeline_flow, PipelineParams),
        FlowRef("snapshot", snapshot_flow, SnapshotParams),
        FlowRef("drift", drift_flow, DriftParams),
        FlowRef("reconcile", reconcile_flow, ReconcileParams),
        FlowRef("report", report_flow, ReportParams),
    )
}

# Flows with an all-trees deployment. Reconcile has none: it runs per tree,
# one at a time, through the per-tree deployments (or in-process).
ALL_TREES_FLOWS = ("pipeline", "snapshot", "drift", "report")


def flow_ref(key: str) -> FlowRef:
    try:
        return FLOWS[key]
    except KeyError:
        raise InvalidInputError(f"unknown flow {key!r}; choose one of {', '.join(FLOWS)}") from None


def prefect_schedule(schedule: Schedule) -> PrefectSchedule:
    if schedule.cron is not None:
        return Cron(schedule.cron, timezone=schedule.timezone)
    assert schedule.interval is not None
    return Interval(schedule.interval, timezone=schedule.timezone)


def yaml_schedule(schedule: Schedule) -> dict[str, Any]:
    entry: dict[str, Any] = (
        {"cron": schedule.cron} if schedule.cron is not None else {"interval": schedule.interval}
    )
    if schedule.timezone:
        entry["timezone"] = schedule.timezone
    return entry


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: which flow, its name, parameters, schedule and concurrency limit."""

    flow: str
    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    schedule: Schedule | None = None
    concurrency_limit: int | None = None
    tags: tuple[str, ...] = TAGS

    @property
    def ref(self) -> FlowRef:
        return FLOWS[self.flow]

    @property
    def full_name(self) -> str:
        """``<flow name>/<deployment name>``, as ``prefect deployment run`` takes it."""
        return f"{self.ref.flow_name}/{self.name}"


def _tree_params(tree: str) -> dict[str, Any]:
    return {"params": {"trees": [tree]}}


def deployment_specs(trees: Iterable[TreeInfo]) -> list[DeploymentSpec]:
    """Every deployment for these trees: all-trees ones first, then two per tree."""
    specs = [
        DeploymentSpec(
            flow=key,
            name=ALL_TREES,
            description=f"The {key} flow over every registered tree, on demand.",
            parameters={"params": {"trees": []}},
        )
        for key in ALL_TREES_FLOWS
    ]
    for tree in sorted(trees, key=lambda t: t.name):
        if tree.name == ALL_TREES:
            raise InvalidInputError(
                f"a tree named {ALL_TREES!r} clashes with the all-trees deployments; rename it"
            )
        schedule = tree.policy.schedule
        when = schedule.describe() if schedule else "on demand"
        tags = (*TAGS, f"tree:{tree.name}")
        specs.append(
            DeploymentSpec(
                flow="pipeline",
                name=tree.name,
                description=(
                    f"Snapshot, drift, reconcile per policy and report for tree {tree.name} "
                    f"({when})."
                ),
                parameters=_tree_params(tree.name),
                schedule=schedule,
                tags=tags,
            )
        )
        specs.append(
            DeploymentSpec(
                flow="reconcile",
                name=tree.name,
                description=(
                    f"Reconcile tree {tree.name}: a dry run unless 'apply' is set or the tree's "
                    "policy applies. One run at a time."
                ),
                parameters=_tree_params(tree.name),
                concurrency_limit=1,
                tags=tags,
            )
        )
    return specs


@dataclass(frozen=True)
class ServePlan:
    """The deployments to serve, and the trees left out with the reason why."""

    specs: list[DeploymentSpec]
    problems: list[str]


def load_specs(app: App) -> ServePlan:
    """The deployments of every registered tree whose policy is valid.

    A tree with an invalid policy never blocks the others: it is left out
    and named in ``problems``.
    """
    trees, problems = trees_lib.list_trees_checked(app)
    return ServePlan(deployment_specs(trees), [str(p) for p in problems])


def runner_deployment(spec: DeploymentSpec) -> Any:
    """A Prefect RunnerDeployment for ``serve`` (no work pool; module-path entrypoint)."""
    return spec.ref.flow.to_deployment(
        name=spec.name,
        description=spec.description,
        parameters=dict(spec.parameters),
        schedules=[prefect_schedule(spec.schedule)] if spec.schedule else None,
        concurrency_limit=spec.concurrency_limit,
        tags=list(spec.tags),
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def runner_deployments(specs: Sequence[DeploymentSpec]) -> list[Any]:
    return [runner_deployment(spec) for spec in specs]


def prefect_yaml(specs: Sequence[DeploymentSpec], *, work_pool: str = DEFAULT_WORK_POOL) -> str:
    """``prefect.yaml`` declaring ``specs`` for ``prefect deploy --all`` and a worker."""
    deployments = []
    for spec in specs:
        entry: dict[str, Any] = {
            "name": spec.name,
            "entrypoint": spec.ref.entrypoint,
            "description": spec.description,
            "tags": list(spec.tags),
            "parameters": _plain(spec.parameters),
            "schedules": [yaml_schedule(spec.schedule)] if spec.schedule else [],
        }
        if spec.concurrency_limit is not None:
            entry["concurrency_limit"] = spec.concurrency_limit
        entry["work_pool"] = {"name": work_pool}
        deployments.append(entry)
    document = {
        "name": "zkdrift",
        "prefect-version": str(prefect.__version__),
        "deployments": deployments,
    }
    header = (
        "# zkdrift deployments for `prefect deploy --all` (with a process work pool named\n"
        f"# {work_pool!r} and a worker: `prefect worker start --pool {work_pool}`). The\n"
        "# entrypoints are module paths of the installed zkdrift package, so the same file\n"
        "# works from a checkout and inside the image. Generated from the registered trees by\n"
        "#   zkdrift serve --write-prefect-yaml prefect.yaml\n"
        "# `zkdrift serve` serves the same deployments without a work pool.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, width=100)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def serve(app: App, *, limit: int | None = None) -> None:
    """Serve every deployment of the registered trees until interrupted (no work pool)."""
    # The library's own log lines (connections, changes, applies) go to the UI too.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "zkdrift")
    plan = load_specs(app)
    for problem in plan.problems:
        log.error("not serving: %s (fix it with 'zkdrift tree set')", problem)
    log.info(
        "serving %d deployment(s) for %d tree(s); database %s",
        len(plan.specs),
        sum(1 for s in plan.specs if s.flow == "reconcile"),
        app.db.safe_url,
    )
    prefect.serve(*runner_deployments(plan.specs), limit=limit)
