"""The watcher's Prefect events, and the reconcile a drift triggers, on a real Prefect server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kazoo.client import KazooClient
from prefect import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

from tests.e2e.test_deployments import serving, wait_until_served
from tests.support.watch import resynced, status_of, wait_for, watching
from tests.support.zk import create_tree, live_values
from zkdrift.app import App
from zkdrift.flows import deployments
from zkdrift.flows.events import CHANGED, DRIFTED, IN_SYNC, PrefectEvents, resource_id
from zkdrift.policy import TreePolicy
from zkdrift.reconcile import adopt
from zkdrift.trees import TreeSpec, add_tree

LIVE = {"/app/a": b"1", "/app/db/password": b"s3cret-pw"}


pytestmark = pytest.mark.usefixtures("no_deployments_left_behind")


def tree_events(tree: str, *names: str) -> list[Any]:
    """The events about ``tree`` the Prefect server holds, oldest first."""
    with get_client(sync_client=True) as client:
        page = client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=list(names)),
                resource=EventResourceFilter(id=[resource_id(tree)]),
            ),
            limit=50,
        )
    return sorted(page.events, key=lambda e: e.occurred)


def register(app: App, hosts: str, name: str, **policy: Any) -> None:
    spec = TreeSpec(name=name, hosts=hosts, root="/app", policy=TreePolicy.model_validate(policy))
    add_tree(app, spec, check=False)


def test_changes_and_drift_state_changes_are_prefect_events_without_values(
    flow_app: App, zk: KazooClient, zk_chroot: str
) -> None:
    create_tree(zk, LIVE)
    register(flow_app, zk_chroot, "evented")
    adopt(flow_app, "evented")
    with watching(flow_app, "evented", sink=PrefectEvents()):
        wait_for("the first resync", resynced(flow_app, "evented"))
        zk.set("/app/db/password", b"rotated-by-hand")
        wait_for("drift", lambda: status_of(flow_app, "evented").drift == 1)
        zk.set("/app/db/password", b"s3cret-pw")
        wait_for("in sync", lambda: status_of(flow_app, "evented").in_sync)
    names = (CHANGED, DRIFTED, IN_SYNC)
    found = wait_for(
        "the events on the Prefect server",
        lambda: (e := tree_events("evented", *names)) and len(e) >= 4 and e,
    )
    kinds = [e.event for e in found]
    assert kinds.count(CHANGED) == 2
    assert kinds.count(DRIFTED) == 1
    assert kinds[-1] == IN_SYNC
    changed = next(e for e in found if e.event == CHANGED)
    assert changed.payload["paths"] == ["/app/db/password"]
    assert (changed.payload["changed"], changed.payload["differences"]) == (1, 1)
    drifted = next(e for e in found if e.event == DRIFTED)
    assert (drifted.payload["drift"], drifted.payload["in_sync"]) == (1, False)
    assert drifted.resource["prefect.resource.name"] == "evented"
    text = json.dumps([e.model_dump(mode="json") for e in found])
    assert "s3cret-pw" not in text and "rotated-by-hand" not in text


def test_a_tree_that_drifts_gets_its_reconcile_run_by_its_trigger_and_the_apply_ends_it(
    flow_app: App, zk: KazooClient, zk_chroot: str, prefect_cli_env: dict[str, str]
) -> None:
    create_tree(zk, LIVE)
    register(flow_app, zk_chroot, "healed", reconcile="apply", reconcile_on_drift=True)
    adopt(flow_app, "healed")
    # The runner looks for runs to start every second (not every ten).
    env = {**prefect_cli_env, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    full_name = f"{deployments.TREE_FLOWS['reconcile'].flow_name}/healed"
    with serving(env) as serve:
        deployment = wait_until_served(full_name, serve)
        wait_for("the watcher in serve", lambda: status_of(flow_app, "healed").watched)
        zk.set("/app/a", b"by hand")

        def completed_runs() -> list[Any]:
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
                )
            return [r for r in runs if r.state is not None and r.state.is_completed()]

        runs = wait_for("the triggered reconcile", completed_runs, timeout=90)
        wait_for("in sync", lambda: status_of(flow_app, "healed").in_sync)
    assert len(runs) == 1
    assert runs[0].parameters == {"apply": True}
    assert live_values(zk)["/app/a"] == b"1"  # the apply put it back
    kinds = [e.event for e in tree_events("healed", DRIFTED, IN_SYNC)]
    assert kinds.count(DRIFTED) == 1  # its own apply did not count as drift
    with get_client(sync_client=True) as client:
        all_runs = client.read_flow_runs(flow_run_filter=FlowRunFilter())
    assert sum(1 for r in all_runs if r.deployment_id == deployment.id) == 1
