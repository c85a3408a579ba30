"""Reading back what flow runs left on the Prefect server: artifacts and task runs."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)


def artifacts_of(flow_run_id: UUID, *keys: str) -> dict[str, Any]:
    """The artifacts a flow run created, by key (the latest of each key)."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                key=ArtifactFilterKey(any_=list(keys)) if keys else None,
            )
        )
    return {a.key: a for a in found if a.key}


def task_runs_of(flow_run_id: UUID) -> list[Any]:
    with get_client(sync_client=True) as client:
        return list(
            client.read_task_runs(
                task_run_filter=TaskRunFilter(
                    flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id])
                )
            )
        )
