"""Drift flow: compare desired with live for each tree; artifacts show the result."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture

from zkdrift.flows.common import finish, upstream, verdict
from zkdrift.flows.params import DriftParams
from zkdrift.tasks.artifacts import publish_drift
from zkdrift.tasks.drift import check_tree_drift
from zkdrift.tasks.results import TreeOutcome
from zkdrift.tasks.trees import registered_trees


@flow(name="zkdrift-drift")
def drift_flow(params: DriftParams = DriftParams()) -> State[list[TreeOutcome]]:
    """Check each tree for drift; publish its headline and a table of drifted paths.

    The run ends "Drifted", "In sync" or "Observed" (no tree has a desired state).
    """
    refs = registered_trees(params.trees)
    futures: dict[str, dict[str, PrefectFuture[Any]]] = {}
    for ref in refs:
        drift = check_tree_drift.submit(ref.name)
        futures[ref.name] = {"drift": drift, "artifacts": publish_drift.submit(upstream(drift))}
    return verdict(finish("drift", "zkdrift drift", futures))
