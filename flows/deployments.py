"""Prefect deployments of the zkdrift flows, following the registered trees.

Each tree gets a pipeline deployment on the schedule in its policy and a
reconcile deployment that runs one at a time (concurrency limit 1), so two
applies of one tree never queue up against each other's lock. A handful of
``all-trees`` deployments run a flow over every tree on demand.
``zkdrift serve`` serves these without a work pool (following the registered
trees as they change) and the HTML reports over HTTP; ``prefect.yaml``
declares the same set for ``prefect deploy`` and a worker, with module-path
entrypoints (``zkdrift.flows.pipeline.pipeline_flow``) that load the same
way from a checkout and from an installed package.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import anyio
import prefect
import yaml
from prefect import Flow, get_client
from prefect.exceptions import ObjectNotFound, TerminationSignal
from prefect.runner import Runner
from prefect.schedules import Cron, Interval
from prefect.schedules import Schedule as PrefectSchedule
from prefect.types.entrypoint import EntrypointType
from pydantic import BaseModel

from zkdrift import trees as trees_lib
from zkdrift.app import App
from zkdrift.errors import InvalidInputError
from zkdrift.flows.drift import drift_flow
from zkdrift.flows.events import PrefectEvents, configured, drift_trigger, yaml_trigger
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
from zkdrift.flows.tree import tree_pipeline_flow, tree_reconcile_flow
from zkdrift.policy import Schedule
from zkdrift.reports.serving import start_report_server
from zkdrift.trees import TreeInfo
from zkdrift.watch import Watcher

log = logging.getLogger(__name__)

ALL_TREES = "all-trees"
DEFAULT_WORK_POOL = "zkdrift"
TAGS = ("zkdrift",)


@dataclass(frozen=True)
class FlowRef:
    """One flow: its key on the command line, the flow object and its parameter model
    (None for the per-tree flows, whose parameters are flat)."""

    key: str
    flow: Flow[..., Any]
    params: type[BaseModel] | None

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

# What a tree's own deployments run: flat parameters, the tree fixed by the deployment.
TREE_FLOWS: dict[str, FlowRef] = {
    ref.key: ref
    for ref in (
        FlowRef("pipeline", tree_pipeline_flow, None),
        FlowRef("reconcile", tree_reconcile_flow, None),
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
    per_tree: bool = False  # one tree's deployment (named after the tree)
    # Run when the tree's watcher sees it drift (an event trigger on zkdrift.tree.drifted).
    on_drift: bool = False

    @property
    def ref(self) -> FlowRef:
        return TREE_FLOWS[self.flow] if self.per_tree else FLOWS[self.flow]

    @property
    def full_name(self) -> str:
        """``<flow name>/<deployment name>``, as ``prefect deployment run`` takes it."""
        return f"{self.ref.flow_name}/{self.name}"


def _tree_params(tree: TreeInfo) -> dict[str, Any]:
    """A tree's deployments apply by default when its policy says so."""
    return {"apply": tree.policy.applies}


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
                parameters=_tree_params(tree),
                schedule=schedule,
                tags=tags,
                per_tree=True,
            )
        )
        specs.append(
            DeploymentSpec(
                flow="reconcile",
                name=tree.name,
                description=(
                    f"Reconcile tree {tree.name}: a dry run unless 'apply' is on (on by default"
                    " when the tree's policy applies). One run at a time."
                ),
                parameters=_tree_params(tree),
                concurrency_limit=1,
                tags=tags,
                per_tree=True,
                on_drift=tree.policy.reconcile_on_drift,
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


def _triggers(spec: DeploymentSpec) -> list[Any] | None:
    """The drift trigger of a tree's reconcile deployment, when its policy asks for one:
    the run gets the deployment's parameters (a dry run unless the policy applies)."""
    if not spec.on_drift:
        return None
    return [drift_trigger(spec.name, apply=bool(spec.parameters.get("apply")))]


def _deployment_options(spec: DeploymentSpec) -> dict[str, Any]:
    return {
        "triggers": _triggers(spec),
        "name": spec.name,
        "description": spec.description,
        "parameters": dict(spec.parameters),
        "schedules": [prefect_schedule(spec.schedule)] if spec.schedule else None,
        "concurrency_limit": spec.concurrency_limit,
        "tags": list(spec.tags),
        "entrypoint_type": EntrypointType.MODULE_PATH,
    }


def runner_deployment(spec: DeploymentSpec) -> Any:
    """A Prefect RunnerDeployment for ``serve`` (no work pool; module-path entrypoint)."""
    return spec.ref.flow.to_deployment(**_deployment_options(spec))


async def arunner_deployment(spec: DeploymentSpec) -> Any:
    """:func:`runner_deployment` inside the event loop ``serve`` runs."""
    return await spec.ref.flow.ato_deployment(**_deployment_options(spec))


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
        if spec.on_drift:
            entry["triggers"] = [yaml_trigger(spec.name, apply=bool(spec.parameters.get("apply")))]
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


def start_watcher(app: App) -> tuple[Watcher, threading.Thread]:
    """A :class:`~zkdrift.watch.Watcher` of every registered tree, running in a thread of
    its own, sending Prefect events when an API is configured."""
    watcher = Watcher(app, sink=PrefectEvents() if configured() else None)
    thread = threading.Thread(target=watcher.run, name="zkdrift-watcher", daemon=True)
    thread.start()
    return watcher, thread


def serve(app: App, *, limit: int | None = None, watch: bool = True) -> None:
    """Serve every deployment of the registered trees, and the HTML reports, until stopped.

    The registered trees are read again every ``serve_poll_seconds``: a tree
    added, removed, re-scheduled or given another policy shows in Prefect
    without a restart. No work pool is needed. With ``watch``, every tree is
    also watched for drift as it happens (see :mod:`zkdrift.watch`).
    """
    # The library's own log lines (connections, changes, applies) go to the UI too.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "zkdrift")
    reports = start_report_server(app.settings)
    watcher = start_watcher(app) if watch else None
    try:
        asyncio.run(_serve(app, limit=limit, poll=app.settings.serve_poll_seconds))
    except (KeyboardInterrupt, TerminationSignal) as exc:
        log.info("%s: no longer serving", type(exc).__name__)
    finally:
        if watcher is not None:
            watcher[0].stop()
            watcher[1].join(timeout=15)
        if reports is not None:
            reports.stop()


@dataclass
class _Served:
    """What this process serves now: each deployment's spec and id, and the known problems."""

    specs: dict[str, tuple[DeploymentSpec, UUID]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


async def _serve(app: App, *, limit: int | None, poll: float) -> None:
    runner = Runner(limit=limit)
    served = _Served()
    await _refresh(app, runner, served)
    async with anyio.create_task_group() as group:
        group.start_soon(_keep_refreshing, app, runner, served, poll)
        await runner.start()
        group.cancel_scope.cancel()


async def _keep_refreshing(app: App, runner: Runner, served: _Served, poll: float) -> None:
    while True:
        await anyio.sleep(poll)
        try:
            await _refresh(app, runner, served)
        except Exception:  # the database or the API may be down for a moment
            log.exception("could not re-read the registered trees; serving what was served")


async def _refresh(app: App, runner: Runner, served: _Served) -> None:
    """Make the served deployments match the registered trees."""
    plan = await anyio.to_thread.run_sync(load_specs, app)
    if plan.problems != served.problems:
        for problem in plan.problems:
            log.error("not serving: %s (fix it with 'zkdrift tree set')", problem)
        served.problems = plan.problems
    wanted = {spec.full_name: spec for spec in plan.specs}
    changed = [s for n, s in wanted.items() if n not in served.specs or served.specs[n][0] != s]
    for spec in changed:
        deployment_id = await runner.aadd_deployment(await arunner_deployment(spec))
        if spec.full_name in served.specs:
            log.info("updated deployment %s", spec.full_name)
        served.specs[spec.full_name] = (spec, deployment_id)
    gone = [name for name in served.specs if name not in wanted]
    if gone:
        async with get_client() as client:
            for name in gone:
                with suppress(ObjectNotFound):
                    await client.delete_deployment(served.specs[name][1])
                del served.specs[name]
                log.info("removed deployment %s (its tree is no longer registered)", name)
    if changed or gone:
        log.info(
            "serving %d deployment(s) for %d tree(s); database %s",
            len(served.specs),
            sum(1 for s, _ in served.specs.values() if s.flow == "reconcile" and s.per_tree),
            app.db.safe_url,
        )
