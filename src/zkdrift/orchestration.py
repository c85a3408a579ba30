"""Prefect deployments of the zkdrift flows, and running a flow from the terminal.

The deployments follow the registered trees: each tree gets a pipeline
deployment on the schedule in its options (``{"cron": "*/5 * * * *"}`` or
``{"interval": 300}``) and a reconcile deployment that runs one at a time
(concurrency limit 1), so two applies of one tree never queue up against
each other's lock. A handful of ``all-trees`` deployments run a flow over
every tree on demand. ``zkdrift serve`` serves these without a work pool;
``prefect.yaml`` declares the same set for ``prefect deploy`` and a worker.

The flows live in the top-level ``flows`` package, imported here only when a
deployment or a run needs them.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import yaml

from zkdrift.app import App
from zkdrift.errors import InvalidInputError, ZkDriftError
from zkdrift.store import trees as tree_store

log = logging.getLogger(__name__)

ALL_TREES = "all-trees"
DEFAULT_WORK_POOL = "zkdrift"
TAGS = ("zkdrift",)


@dataclass(frozen=True)
class FlowRef:
    """Where a flow lives: its Prefect name, module and function, and its parameter model."""

    key: str
    flow_name: str
    module: str
    function: str
    params_model: str

    @property
    def entrypoint(self) -> str:
        """The file-path entrypoint ``prefect deploy`` reads, relative to the project root."""
        return f"{self.module.replace('.', '/')}.py:{self.function}"

    def load(self) -> Any:
        try:
            module = importlib.import_module(self.module)
        except ModuleNotFoundError as exc:
            raise ZkDriftError(
                f"cannot import the zkdrift flows ({exc}); install zkdrift with its "
                "'flows' and 'tasks' packages, or run from the project directory"
            ) from exc
        return getattr(module, self.function)

    def params(self, values: Mapping[str, Any]) -> Any:
        """The flow's parameter model built from ``values`` (validated)."""
        model = getattr(importlib.import_module("flows.params"), self.params_model)
        return model(**values)


FLOWS: dict[str, FlowRef] = {
    ref.key: ref
    for ref in (
        FlowRef(
            "pipeline", "zkdrift-pipeline", "flows.pipeline", "pipeline_flow", "PipelineParams"
        ),
        FlowRef(
            "snapshot", "zkdrift-snapshot", "flows.snapshot", "snapshot_flow", "SnapshotParams"
        ),
        FlowRef("drift", "zkdrift-drift", "flows.drift", "drift_flow", "DriftParams"),
        FlowRef(
            "reconcile", "zkdrift-reconcile", "flows.reconcile", "reconcile_flow", "ReconcileParams"
        ),
        FlowRef("report", "zkdrift-report", "flows.report", "report_flow", "ReportParams"),
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


@dataclass(frozen=True)
class Schedule:
    """A tree's schedule: a cron expression (with an optional timezone) or an interval."""

    cron: str | None = None
    interval: int | None = None
    timezone: str | None = None

    def to_prefect(self) -> Any:
        from prefect.schedules import Cron, Interval

        if self.cron is not None:
            return Cron(self.cron, timezone=self.timezone)
        assert self.interval is not None
        return Interval(self.interval, timezone=self.timezone)

    def to_yaml(self) -> dict[str, Any]:
        entry: dict[str, Any] = (
            {"cron": self.cron} if self.cron is not None else {"interval": self.interval}
        )
        if self.timezone:
            entry["timezone"] = self.timezone
        return entry

    def describe(self) -> str:
        what = f"cron {self.cron!r}" if self.cron is not None else f"every {self.interval}s"
        return f"{what} ({self.timezone})" if self.timezone else what


def parse_schedule(tree: str, options: Mapping[str, Any] | None) -> Schedule | None:
    """The schedule in a tree's options, validated; None when the tree has none."""
    raw = (options or {}).get("schedule")
    if raw is None or raw == {}:
        return None
    problem = (
        f"tree {tree!r} has an invalid schedule {raw!r}: use "
        '{"cron": "*/5 * * * *"} (optionally with "timezone") or {"interval": SECONDS}'
    )
    if not isinstance(raw, Mapping) or set(raw) - {"cron", "interval", "timezone"}:
        raise InvalidInputError(problem)
    cron, interval, timezone = raw.get("cron"), raw.get("interval"), raw.get("timezone")
    if (cron is None) == (interval is None):
        raise InvalidInputError(problem)
    if timezone is not None and not isinstance(timezone, str):
        raise InvalidInputError(problem)
    if cron is not None:
        if not isinstance(cron, str):
            raise InvalidInputError(problem)
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=cron, timezone=timezone)
        except ValueError as exc:
            raise InvalidInputError(f"{problem} ({exc})") from exc
        return Schedule(cron=cron, timezone=timezone)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise InvalidInputError(problem)
    return Schedule(interval=int(interval), timezone=timezone)


@dataclass(frozen=True)
class TreeSchedule:
    """What the deployments need to know about one registered tree."""

    name: str
    schedule: Schedule | None = None


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


def deployment_specs(trees: Iterable[TreeSchedule]) -> list[DeploymentSpec]:
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
        when = tree.schedule.describe() if tree.schedule else "on demand"
        specs.append(
            DeploymentSpec(
                flow="pipeline",
                name=tree.name,
                description=(
                    f"Snapshot, drift, reconcile per policy and report for tree {tree.name} "
                    f"({when})."
                ),
                parameters=_tree_params(tree.name),
                schedule=tree.schedule,
                tags=(*TAGS, f"tree:{tree.name}"),
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
                tags=(*TAGS, f"tree:{tree.name}"),
            )
        )
    return specs


def registered_schedules(app: App) -> list[TreeSchedule]:
    """The registered trees with their validated schedules."""
    with app.db.session() as session:
        trees = tree_store.list_trees(session)
        return [TreeSchedule(t.name, parse_schedule(t.name, t.options)) for t in trees]


def load_specs(app: App) -> list[DeploymentSpec]:
    return deployment_specs(registered_schedules(app))


def runner_deployment(spec: DeploymentSpec) -> Any:
    """A Prefect RunnerDeployment for ``serve`` (no work pool; module-path entrypoint)."""
    from prefect.types.entrypoint import EntrypointType

    flow_obj = spec.ref.load()
    return flow_obj.to_deployment(
        name=spec.name,
        description=spec.description,
        parameters=dict(spec.parameters),
        schedules=[spec.schedule.to_prefect()] if spec.schedule else None,
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
            "schedules": [spec.schedule.to_yaml()] if spec.schedule else [],
        }
        if spec.concurrency_limit is not None:
            entry["concurrency_limit"] = spec.concurrency_limit
        entry["work_pool"] = {"name": work_pool}
        deployments.append(entry)
    document = {
        "name": "zkdrift",
        "prefect-version": _prefect_version(),
        "deployments": deployments,
    }
    header = (
        "# zkdrift deployments for `prefect deploy --all` (run from this directory, with a\n"
        f"# process work pool named {work_pool!r} and a worker: `prefect worker start --pool "
        f"{work_pool}`).\n"
        "# Generated from the registered trees by\n"
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


def _prefect_version() -> str:
    import prefect

    return str(prefect.__version__)


def serve(app: App, *, limit: int | None = None) -> None:
    """Serve every deployment of the registered trees until interrupted (no work pool)."""
    import prefect

    # The library's own log lines (connections, changes, applies) go to the UI too.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "zkdrift")
    specs = load_specs(app)
    log.info(
        "serving %d deployment(s) for %d tree(s); database %s",
        len(specs),
        sum(1 for s in specs if s.flow == "reconcile"),
        app.db.safe_url,
    )
    prefect.serve(*runner_deployments(specs), limit=limit)


# --- running a flow from the terminal -------------------------------------------------


@dataclass(frozen=True)
class RunOutcome:
    """A finished flow run as the terminal shows it."""

    flow: str
    flow_run_id: UUID | None
    flow_run_name: str | None
    state: str
    ok: bool
    message: str | None
    summary: str | None  # the run's markdown summary artifact
    api_url: str | None  # None: a temporary local server that is gone now
    deployment: str | None  # set when the run went through a served deployment
    ui_url: str | None


def check_trees(app: App, trees: Sequence[str]) -> None:
    """Fail fast, before any flow starts, on a tree name that is not registered."""
    if not trees:
        return
    with app.db.session() as session:
        for name in trees:
            tree_store.get_tree(session, name)


def api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    value = PREFECT_API_URL.value()
    return str(value) if value else None


def deployment_for(key: str, trees: Sequence[str]) -> DeploymentSpec | None:
    """Which deployment would run ``key`` over ``trees`` (before asking the server)."""
    if len(trees) == 1 and key in ("pipeline", "reconcile"):
        return DeploymentSpec(flow=key, name=trees[0], description="")
    if not trees and key in ALL_TREES_FLOWS:
        return DeploymentSpec(flow=key, name=ALL_TREES, description="")
    return None


# A runner polls for work every ~10 s; one silent for longer than this is gone.
SERVED_WITHIN = dt.timedelta(seconds=60)
# How long a deployment run may wait to be picked up before running it here instead.
PICKUP_SECONDS = 45.0


def _served_deployment(name: str) -> Any:
    """The deployment when it exists and a runner polled for it lately, else None."""
    from prefect import get_client
    from prefect.client.schemas.objects import DeploymentStatus
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(name)
        except ObjectNotFound:
            return None
    if deployment.status != DeploymentStatus.READY or deployment.last_polled is None:
        return None
    polled = deployment.last_polled
    if polled.tzinfo is None:
        polled = polled.replace(tzinfo=dt.UTC)
    return deployment if dt.datetime.now(dt.UTC) - polled <= SERVED_WITHIN else None


def run_flow(key: str, values: Mapping[str, Any], *, local: bool = False) -> RunOutcome:
    """Run one flow and wait for it.

    With ``PREFECT_API_URL`` set, the run is recorded there (it shows in the
    UI): through the matching deployment when a ``zkdrift serve`` is serving
    it, in this process otherwise (or with ``local``). Without it, the run
    goes to a temporary local Prefect server (Prefect's ephemeral mode).
    """
    ref = flow_ref(key)
    params = ref.params(values)  # validate before touching anything
    url = api_url()
    if url is None:
        from prefect.settings import (
            PREFECT_SERVER_ANALYTICS_ENABLED,
            PREFECT_SERVER_EPHEMERAL_ENABLED,
            temporary_settings,
        )

        # A throwaway server: nothing to report home about.
        updates = {PREFECT_SERVER_EPHEMERAL_ENABLED: True, PREFECT_SERVER_ANALYTICS_ENABLED: False}
        with temporary_settings(updates=updates):
            return _run_in_process(ref, params, url=None)
    spec = None if local else deployment_for(key, list(values.get("trees") or []))
    if spec is not None and _served_deployment(spec.full_name) is not None:
        outcome = _run_deployment(ref, spec, params, url=url)
        if outcome is not None:
            return outcome
    return _run_in_process(ref, params, url=url)


def _run_in_process(ref: FlowRef, params: Any, *, url: str | None) -> RunOutcome:
    flow_obj = ref.load()
    state = flow_obj(params, return_state=True)
    run_id = state.state_details.flow_run_id
    return _outcome(ref, run_id, state, url=url, deployment=None)


def _run_deployment(
    ref: FlowRef, spec: DeploymentSpec, params: Any, *, url: str
) -> RunOutcome | None:
    """Run through the served deployment; None when no runner picked the run up in time."""
    from prefect import get_client
    from prefect.deployments import run_deployment

    log.info("running deployment %s on %s", spec.full_name, url)
    created: Any = run_deployment(
        spec.full_name,
        parameters={"params": params.model_dump(mode="json")},
        as_subflow=False,
        timeout=0,
    )
    deadline = time.monotonic() + PICKUP_SECONDS
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(created.id)
            state = flow_run.state
            if state is not None and state.is_final():
                return _outcome(ref, flow_run.id, state, url=url, deployment=spec.full_name)
            waiting = state is None or state.is_scheduled()
            if waiting and time.monotonic() > deadline:
                # Nobody is serving it after all: withdraw the run, run it here.
                client.delete_flow_run(created.id)
                log.warning(
                    "no runner picked up %s within %gs; running in this process",
                    spec.full_name,
                    PICKUP_SECONDS,
                )
                return None
            time.sleep(1.0)


def _outcome(
    ref: FlowRef, run_id: UUID | None, state: Any, *, url: str | None, deployment: str | None
) -> RunOutcome:
    from prefect import get_client

    summary = None
    name = None
    if run_id is not None:
        from prefect.client.schemas.filters import (
            ArtifactFilter,
            ArtifactFilterFlowRunId,
            ArtifactFilterKey,
        )

        with get_client(sync_client=True) as client:
            name = client.read_flow_run(run_id).name
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]),
                    key=ArtifactFilterKey(any_=[f"{ref.key}-summary"]),
                )
            )
        if artifacts:
            summary = str(artifacts[0].data)
    ui_url = None
    if url is not None and run_id is not None:
        from prefect.settings import PREFECT_UI_URL

        base = PREFECT_UI_URL.value()
        ui_url = f"{str(base).rstrip('/')}/runs/flow-run/{run_id}" if base else None
    ok = bool(state is not None and state.is_completed())
    return RunOutcome(
        flow=ref.flow_name,
        flow_run_id=run_id,
        flow_run_name=name,
        state=state.name if state is not None else "Unknown",
        ok=ok,
        message=None if ok or state is None else state.message,
        summary=summary,
        api_url=url,
        deployment=deployment,
        ui_url=ui_url,
    )
