"""Running a zkdrift flow once from the terminal and waiting for it.

With ``PREFECT_API_URL`` set, the run is recorded on that server (it shows
in the UI): through the matching deployment when a ``zkdrift serve`` is
serving it, in this process otherwise. Without it, the run goes to a
temporary local Prefect server (Prefect's ephemeral mode).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from prefect.client.schemas.objects import DeploymentStatus
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_SERVER_ANALYTICS_ENABLED,
    PREFECT_SERVER_EPHEMERAL_ENABLED,
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    PREFECT_UI_URL,
    temporary_settings,
)
from pydantic import BaseModel

from zkdrift import trees as trees_lib
from zkdrift.app import App
from zkdrift.flows.deployments import (
    ALL_TREES,
    ALL_TREES_FLOWS,
    TREE_FLOWS,
    DeploymentSpec,
    FlowRef,
    flow_ref,
)
from zkdrift.flows.params import ApplyChoice

log = logging.getLogger(__name__)


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

    def as_json(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "flow_run_id": None if self.flow_run_id is None else str(self.flow_run_id),
            "flow_run_name": self.flow_run_name,
            "state": self.state,
            "ok": self.ok,
            "message": self.message,
            "deployment": self.deployment,
            "api_url": self.api_url,
            "ui_url": self.ui_url,
            "summary": self.summary,
        }


def check_trees(app: App, trees: Sequence[str]) -> None:
    """Fail fast, before any flow starts, on a tree name that is not registered."""
    for name in trees:
        trees_lib.get_tree(app, name)


def api_url() -> str | None:
    value = PREFECT_API_URL.value()
    return str(value) if value else None


def deployment_for(key: str, params: BaseModel) -> DeploymentSpec | None:
    """Which deployment would run ``key`` with ``params`` (before asking the server).

    One tree goes through that tree's own deployment (so the run shows on its
    page) when its flat parameters can say everything asked for.
    """
    trees = list(getattr(params, "trees", []))
    if len(trees) == 1 and key in TREE_FLOWS and getattr(params, "since", None) is None:
        return DeploymentSpec(flow=key, name=trees[0], description="", per_tree=True)
    if not trees and key in ALL_TREES_FLOWS:
        return DeploymentSpec(flow=key, name=ALL_TREES, description="")
    return None


def deployment_parameters(spec: DeploymentSpec, params: BaseModel) -> dict[str, Any]:
    """The parameters a run of ``spec`` takes for ``params``: flat for a tree's deployment
    (unset ones keep the deployment's defaults, such as the tree's policy), else nested."""
    values = params.model_dump(mode="json")
    if not spec.per_tree:
        return {"params": values}
    # A tree's deployment takes apply as on/off; "policy" keeps its default (the policy).
    choice = values.pop("apply", ApplyChoice.POLICY)
    if choice != ApplyChoice.POLICY:
        values["apply"] = choice == ApplyChoice.APPLY
    accepted = spec.ref.flow.parameters.properties
    return {k: v for k, v in values.items() if k in accepted and v is not None}


# A runner polls for work every ~10 s; one silent for longer than this is gone.
SERVED_WITHIN = dt.timedelta(seconds=60)
# How long a deployment run may wait to be picked up before running it here instead.
PICKUP_SECONDS = 45.0
# How long a temporary local server may take to start, unless Prefect's setting says.
EPHEMERAL_STARTUP_SECONDS = 120


def _served_deployment(name: str) -> Any:
    """The deployment when it exists and a runner polled for it lately, else None."""
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
    assert ref.params is not None  # every flow run by key takes a parameter model
    params = ref.params.model_validate(dict(values))  # validate before touching anything
    url = api_url()
    if url is None:
        # A throwaway server: nothing to report home about.
        updates: dict[Any, Any] = {
            PREFECT_SERVER_EPHEMERAL_ENABLED: True,
            PREFECT_SERVER_ANALYTICS_ENABLED: False,
        }
        startup = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS
        if startup.value() == startup.default():
            # Prefect's 20 s is short for a busy 2-core host creating the server's database.
            updates[startup] = EPHEMERAL_STARTUP_SECONDS
        with temporary_settings(updates=updates):
            return _run_in_process(ref, params, url=None)
    spec = None if local else deployment_for(key, params)
    if spec is not None and _served_deployment(spec.full_name) is not None:
        outcome = _run_deployment(ref, spec, params, url=url)
        if outcome is not None:
            return outcome
    return _run_in_process(ref, params, url=url)


def _run_in_process(ref: FlowRef, params: Any, *, url: str | None) -> RunOutcome:
    state: Any = ref.flow(params, return_state=True)
    run_id = state.state_details.flow_run_id
    return _outcome(ref, run_id, state, url=url, deployment=None)


def _run_deployment(
    ref: FlowRef, spec: DeploymentSpec, params: Any, *, url: str
) -> RunOutcome | None:
    """Run through the served deployment; None when no runner picked the run up in time."""
    log.info("running deployment %s on %s", spec.full_name, url)
    created: Any = run_deployment(
        spec.full_name,
        parameters=deployment_parameters(spec, params),
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
    summary = None
    name = None
    if run_id is not None:
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
