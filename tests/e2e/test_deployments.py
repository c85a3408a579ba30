"""Deployments on a real Prefect server: from `zkdrift serve`'s objects and from prefect.yaml."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from kazoo.client import KazooClient
from prefect import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import DeploymentStatus
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.utilities.importtools import import_object

from tests.support.cli import run_cli_process, zkdrift_process
from tests.support.prefect import artifacts_of
from tests.support.zk import create_tree
from zkdrift.app import App
from zkdrift.devtools.zkserver import free_port
from zkdrift.flows import deployments
from zkdrift.policy import Schedule, TreePolicy
from zkdrift.reconcile import adopt
from zkdrift.store import trees as tree_store
from zkdrift.trees import TreeInfo, TreeSpec, add_tree, remove_tree, update_tree

REPO = Path(__file__).resolve().parents[2]
PREFECT_YAML = REPO / "prefect.yaml"


pytestmark = pytest.mark.usefixtures("no_deployments_left_behind")


def read_deployment(full_name: str) -> Any:
    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(full_name)


def schedule_of(deployment: Any) -> Any:
    assert len(deployment.schedules) == 1, deployment.schedules
    return deployment.schedules[0].schedule


def concurrency_of(deployment: Any) -> int | None:
    limit = deployment.global_concurrency_limit
    return None if limit is None else int(limit.limit)


def register(app: App, hosts: str, name: str, **policy: Any) -> None:
    spec = TreeSpec(name=name, hosts=hosts, root="/", policy=TreePolicy.model_validate(policy))
    add_tree(app, spec, check=False)


def test_serve_deploys_a_scheduled_pipeline_and_a_one_at_a_time_reconcile_per_tree(
    flow_app: App, zk_chroot: str
) -> None:
    register(flow_app, zk_chroot, "svc-cron", schedule={"cron": "*/5 * * * *"}, reconcile="apply")
    register(flow_app, zk_chroot, "svc-interval", schedule={"interval": 300})
    register(flow_app, zk_chroot, "svc-manual")
    plan = deployments.load_specs(flow_app)

    assert plan.problems == []
    for deployment in deployments.runner_deployments(plan.specs):
        deployment.apply()

    cron = read_deployment("zkdrift-pipeline/svc-cron")
    assert schedule_of(cron).cron == "*/5 * * * *"
    assert cron.parameters == {"apply": True}  # its policy applies
    assert concurrency_of(cron) is None
    interval = read_deployment("zkdrift-pipeline/svc-interval")
    assert schedule_of(interval).interval == dt.timedelta(seconds=300)
    assert read_deployment("zkdrift-pipeline/svc-manual").schedules == []
    for tree in ("svc-cron", "svc-interval", "svc-manual"):
        reconcile = read_deployment(f"zkdrift-reconcile/{tree}")
        assert concurrency_of(reconcile) == 1
        assert reconcile.parameters == {"apply": tree == "svc-cron"}
        assert reconcile.schedules == []
        assert reconcile.work_pool_name is None  # served: no work pool
    for flow in ("pipeline", "snapshot", "drift", "report"):
        everything = read_deployment(f"zkdrift-{flow}/all-trees")
        assert everything.parameters == {"params": {"trees": []}}
    # A tree's form: flat, typed, described, and without a tree to choose.
    schema = read_deployment("zkdrift-reconcile/svc-cron").parameter_openapi_schema
    assert set(schema["properties"]) == {"apply", "prune", "reason"}
    assert schema["properties"]["apply"]["type"] == "boolean"
    assert "write the desired state to ZooKeeper" in schema["properties"]["apply"]["description"]
    # The all-trees forms come from the Pydantic models, with descriptions.
    everything = json.dumps(read_deployment("zkdrift-drift/all-trees").parameter_openapi_schema)
    assert "Names of registered trees to work on" in everything


def test_a_tree_with_an_invalid_stored_policy_is_left_out_and_the_others_are_served(
    flow_app: App, zk_chroot: str
) -> None:
    register(flow_app, zk_chroot, "good", schedule={"cron": "*/5 * * * *"})
    register(flow_app, zk_chroot, "broken")
    with flow_app.db.session() as session:  # as a hand-edited or older database holds it
        tree_store.get_tree(session, "broken").options = {"schedule": {"cron": "every tuesday"}}

    plan = deployments.load_specs(flow_app)

    assert {s.name for s in plan.specs} == {"all-trees", "good"}
    (problem,) = plan.problems
    assert problem.startswith("tree 'broken' has an invalid policy: schedule.cron:")


def test_committed_prefect_yaml_declares_what_serve_builds_for_the_demo_tree() -> None:
    committed = yaml.safe_load(PREFECT_YAML.read_text())
    demo = TreeInfo(
        name="demo",
        hosts="zookeeper:2181",
        root="/zkdrift-demo",
        excludes=(),
        includes=(),
        capture_acl=False,
        auth_env=None,
        policy=TreePolicy.model_validate({"schedule": {"cron": "*/15 * * * *"}}),
        created_at=dt.datetime(2026, 1, 1),
    )
    expected = yaml.safe_load(deployments.prefect_yaml(deployments.deployment_specs([demo])))

    assert committed["deployments"] == expected["deployments"]


@pytest.fixture
def work_pool(prefect_api: str) -> str:
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=deployments.DEFAULT_WORK_POOL, type="process"))
    return deployments.DEFAULT_WORK_POOL


def test_prefect_deploy_creates_every_deployment_in_prefect_yaml_outside_the_checkout(
    prefect_api: str, work_pool: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=prefect_api, PREFECT_HOME=str(tmp_path / "prefect-home"))
    # Only the file, as in the image: the entrypoints load from the installed package.
    project = tmp_path / "project"
    project.mkdir()
    (project / "prefect.yaml").write_text(PREFECT_YAML.read_text())

    proc = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr
    declared = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    for entry in declared:
        flow = import_object(entry["entrypoint"])
        deployment = read_deployment(f"{flow.name}/{entry['name']}")
        assert deployment.entrypoint == entry["entrypoint"]
        assert deployment.parameters == entry["parameters"]
        assert deployment.work_pool_name == work_pool
        assert concurrency_of(deployment) == entry.get("concurrency_limit")
        if entry["schedules"]:
            assert schedule_of(deployment).cron == entry["schedules"][0]["cron"]
    demo = read_deployment("zkdrift-pipeline/demo")
    assert schedule_of(demo).cron == "*/15 * * * *"
    assert concurrency_of(read_deployment("zkdrift-reconcile/demo")) == 1


def wait_until_served(full_name: str, proc: subprocess.Popen[str], limit: float = 90) -> Any:
    """Poll until a runner serves the deployment (its status turns READY)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"zkdrift serve exited with {proc.returncode}:\n{out}\n{err}")
        try:
            deployment = read_deployment(full_name)
            if deployment.status == DeploymentStatus.READY:
                return deployment
        except ObjectNotFound:
            pass
        time.sleep(0.5)
    pytest.fail(f"{full_name} was not served within {limit}s")


def serving(env: dict[str, str]) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    """``zkdrift serve`` from the checkout in a process of its own, stopped (SIGTERM) afterwards."""
    return zkdrift_process("serve", env=env, cwd=REPO)


def test_zkdrift_run_goes_through_the_trees_deployment_and_links_a_served_report(
    flow_app: App, zk: KazooClient, zk_chroot: str, prefect_cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/served": b"", "/served/key": b"v1", "/served/password": b"s3cret-pw"})
    add_tree(flow_app, TreeSpec(name="served", hosts=zk_chroot, root="/served"))
    adopt(flow_app, "served", actor="test")
    zk.set("/served/key", b"edited by hand")
    zk.set("/served/password", b"rotated-pw-by-hand")
    port = free_port()
    env = prefect_cli_env | {"ZKDRIFT_REPORTS_PORT": str(port)}
    with serving(env) as serve:
        wait_until_served("zkdrift-pipeline/served", serve)

        result = run_cli_process("run", "pipeline", "--tree", "served", "--json", env=env)
        payload = json.loads(result.stdout) if result.stdout else {}
        links = artifacts_of(UUID(payload["flow_run_id"]), "report-served", "drift-served")
        report_link = re.sub(r"^\[.*\]\((.*)\)$", r"\1", links["report-served"].data)
        with urllib.request.urlopen(report_link, timeout=10) as answer:
            status, page = answer.status, answer.read().decode()

    assert result.exit_code == 0, result.stdout + result.stderr
    assert payload["deployment"] == "zkdrift-pipeline/served"
    assert payload["state"] == "Drifted" and payload["ok"] is True
    assert "| served | 2 drifted since" in payload["summary"]
    assert report_link == f"http://localhost:{port}/served.html"
    assert status == 200 and "served" in page and "s3cret-pw" not in page
    headline = links["drift-served"].data
    assert "OUT OF SYNC: 2 paths since" in headline and "`zkdrift apply served --yes`" in headline
    assert "`v1` -> `edited by hand`" in headline
    assert "rotated-pw-by-hand" not in headline and "s3cret-pw" not in headline


def test_serve_follows_trees_added_rescheduled_and_removed_without_a_restart(
    flow_app: App, zk_chroot: str, prefect_cli_env: dict[str, str]
) -> None:
    register(flow_app, zk_chroot, "first")
    env = prefect_cli_env | {"ZKDRIFT_SERVE_POLL_SECONDS": "1", "ZKDRIFT_REPORTS_PORT": "0"}
    with serving(env) as serve:
        wait_until_served("zkdrift-pipeline/first", serve)

        register(flow_app, zk_chroot, "later", schedule={"cron": "*/10 * * * *"})
        later = wait_until_served("zkdrift-pipeline/later", serve)
        update_tree(flow_app, "first", schedule=Schedule(cron="0 3 * * *"))
        first = wait_for(lambda: read_deployment("zkdrift-pipeline/first"), has_cron("0 3 * * *"))
        remove_tree(flow_app, "later")
        gone = wait_for(lambda: deployment_names(), lambda names: "later" not in names)

    assert schedule_of(later).cron == "*/10 * * * *"
    assert schedule_of(first).cron == "0 3 * * *"
    assert "first" in gone and "later" not in gone


def deployment_names() -> set[str]:
    with get_client(sync_client=True) as client:
        return {d.name for d in client.read_deployments()}


def has_cron(cron: str) -> Any:
    return lambda d: len(d.schedules) == 1 and d.schedules[0].schedule.cron == cron


def wait_for(read: Any, done: Any, limit: float = 60) -> Any:
    deadline = time.monotonic() + limit
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"not within {limit}s: {value}"
        time.sleep(0.5)
