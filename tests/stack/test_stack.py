"""The Docker stack, built and run for real: image, compose wiring, commands, flows.

Builds the application images from the unmodified Dockerfile, brings
docker-compose.yml up with a test override that only moves the published
ports to free ones, and checks what a user of `docker compose up` relies on.
Runs with scripts/test-stack (not part of scripts/test); see README, "Running
with Docker", for what it proves on stand-in base images and what it does not.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from kazoo.client import KazooClient

from tests.stack.stack import ZOOKEEPER_NODES, Stack, detect_engine, zookeeper_mode

# Building cold is most of it; the suite's per-test default (300 s) is too short.
pytestmark = pytest.mark.timeout(420)

TREE = "demo"
TREE_ROOT = "/zkdrift-demo"
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED", "CANCELLING"}
EXPECTED_ARTIFACTS = {f"drift-{TREE}", f"drift-paths-{TREE}", f"report-{TREE}", "pipeline-summary"}
SECRET_WORDS = re.compile(r"password|secret|token|credential|key", re.IGNORECASE)


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The whole stack, up and healthy; always taken down, volumes and all."""
    engine = detect_engine()
    stack = Stack.create(engine, tmp_path_factory.mktemp("stack"))
    failed_before = request.session.testsfailed
    started = time.monotonic()
    up = False
    try:
        stack.build()
        stack.timings["built"] = time.monotonic() - started
        stack.start()
        stack.timings["up"] = time.monotonic() - started
        up = True
        yield stack
    finally:
        failed = not up or request.session.testsfailed > failed_before
        summary = f"stack {stack.project}: " + ", ".join(
            f"{step} after {seconds:.0f} s" for step, seconds in stack.timings.items()
        )
        try:
            report(request, stack.diagnostics() if failed else summary)
        finally:
            stack.down()
        leftovers = stack.leftovers()
        assert not leftovers, f"left behind after down -v: {leftovers}"


def report(request: pytest.FixtureRequest, text: str) -> None:
    """Print past pytest's capture: a module fixture's output is otherwise dropped."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{text}", flush=True)


# --- Prefect REST API of the stack's server -------------------------------------------


# Prefect's server answers 503 for errors its clients should retry (a busy SQLite
# database while `zkdrift serve` writes events, say), and its own client retries
# 429, 502 and 503 with backoff; so does this one.
RETRIED_STATUSES = {429, 502, 503}
RETRIES = 6


def prefect_api(stack: Stack, method: str, path: str, body: object = None) -> Any:
    url = f"http://127.0.0.1:{stack.ports['prefect']}/api{path}"
    data = None if body is None else json.dumps(body).encode()
    for attempt in range(RETRIES + 1):
        request = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
            return json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            if error.code not in RETRIED_STATUSES or attempt == RETRIES:
                raise
            time.sleep(min(2**attempt, 10))
    raise AssertionError("unreachable")


def deployment_id(stack: Stack, flow: str, name: str, timeout: float = 60) -> str:
    """The id of a deployment that `zkdrift serve` registered (it may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            deployment = prefect_api(stack, "GET", f"/deployments/name/{flow}/{name}")
            return str(deployment["id"])
        except urllib.error.HTTPError as error:
            if error.code != 404 or time.monotonic() > deadline:
                raise
        time.sleep(2)


def start_pipeline_run(stack: Stack) -> str:
    """Create a flow run of the served deployment zkdrift-pipeline/demo."""
    deployment = deployment_id(stack, "zkdrift-pipeline", TREE)
    run = prefect_api(stack, "POST", f"/deployments/{deployment}/create_flow_run", {})
    return str(run["id"])


def flow_run_state(stack: Stack, run_id: str) -> dict[str, Any]:
    state: dict[str, Any] = prefect_api(stack, "GET", f"/flow_runs/{run_id}")["state"]
    return state


def wait_final(stack: Stack, run_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = flow_run_state(stack, run_id)
        if state["type"] in FINAL_STATES:
            return state
        assert time.monotonic() < deadline, f"flow run {run_id} still {state['type']}"
        time.sleep(1)


def artifacts_of(stack: Stack, run_id: str) -> dict[str, dict[str, Any]]:
    found = prefect_api(
        stack, "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    )
    return {artifact["key"]: artifact for artifact in found if artifact.get("key")}


def report_link(artifact: dict[str, Any]) -> str:
    """The URL of the report-<tree> artifact: a link artifact, or a markdown link."""
    data = str(artifact["data"])
    match = re.search(r"\]\(([^)\s]+)\)", data)
    return match.group(1) if match else data.strip()


def check_report_reachable(stack: Stack, link: str) -> None:
    """The report link opens from the host: `zkdrift serve` serves the reports volume."""
    url = urlparse(link)
    assert url.scheme == "http", link
    assert url.port == stack.ports["zkdrift"], link
    with urllib.request.urlopen(link, timeout=15) as answer:
        assert answer.status == 200, link
        html = answer.read().decode("utf-8", "replace")
    assert "<html" in html.lower(), f"{link} is not an HTML page"


# --- helpers on ZooKeeper --------------------------------------------------------------


def modes(stack: Stack) -> dict[str, str | None]:
    return {node: zookeeper_mode(stack.ports[node]) for node in ZOOKEEPER_NODES}


def zk_client(stack: Stack) -> KazooClient:
    hosts = ",".join(f"127.0.0.1:{stack.ports[node]}" for node in ZOOKEEPER_NODES)
    client = KazooClient(hosts=hosts, timeout=15)
    client.start(timeout=30)
    return client


def first_plain_leaf(client: KazooClient, path: str) -> str:
    """A leaf under path whose value is not redacted as a secret."""
    children = sorted(client.get_children(path))
    if not children:
        return path
    for child in children:
        if not SECRET_WORDS.search(child):
            return first_plain_leaf(client, f"{path}/{child}")
    raise AssertionError(f"no plain leaf under {path}")


# --- the tests, in the order a user meets the stack --------------------------------------


def test_application_image_keeps_its_healthcheck(stack: Stack) -> None:
    config = stack.image_config(f"zkdrift:{stack.env['ZKDRIFT_IMAGE_TAG']}")
    # podman lists it at the top, Docker under Config.
    healthcheck = config.get("Healthcheck") or (config.get("Config") or {}).get("Healthcheck")
    assert healthcheck, "the image lost the Dockerfile's HEALTHCHECK (built as OCI?)"
    assert "import zkdrift.cli" in " ".join(healthcheck["Test"])


def test_zookeeper_runs_as_an_ensemble_of_one_leader_and_two_followers(stack: Stack) -> None:
    found = modes(stack)
    assert sorted(str(mode) for mode in found.values()) == ["follower", "follower", "leader"], found


def test_migrate_and_seed_exit_zero_and_the_seeded_tree_is_registered(stack: Stack) -> None:
    assert stack.exit_codes == {"migrate": 0, "seed": 0}
    assert "is at" in stack.logs("migrate"), stack.logs("migrate")
    trees = json.loads(stack.exec("zkdrift", "zkdrift", "tree", "list", "--json"))
    registered = {tree["name"]: tree for tree in trees}
    assert TREE in registered, trees
    assert registered[TREE]["root"] == TREE_ROOT
    client = zk_client(stack)
    try:
        assert client.exists(TREE_ROOT) is not None
        assert client.get_children(TREE_ROOT), "the seeded tree is empty"
    finally:
        client.stop()
        client.close()


def test_zkdrift_serve_and_jupyter_are_healthy_and_serve_the_deployments(stack: Stack) -> None:
    assert stack.healthy("zkdrift")
    assert stack.healthy("jupyter")
    # Jupyter answers on its published port, and asks for the token.
    jupyter = f"http://127.0.0.1:{stack.ports['jupyter']}/api/status"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(jupyter, timeout=10)
    assert refused.value.code == 403
    # Found by name, or the API answers 404.
    for flow in ("zkdrift-pipeline", "zkdrift-reconcile"):
        assert deployment_id(stack, flow, TREE)
    assert deployment_id(stack, "zkdrift-pipeline", "all-trees")


def test_a_pipeline_run_through_the_prefect_api_completes_with_artifacts_and_a_report(
    stack: Stack,
) -> None:
    # Drift for the run to find: one value changed behind zkdrift's back.
    client = zk_client(stack)
    try:
        drifted = first_plain_leaf(client, TREE_ROOT)
        client.set(drifted, b"changed-by-hand")
    finally:
        client.stop()
        client.close()

    run_id = start_pipeline_run(stack)
    state = wait_final(stack, run_id)
    assert state["type"] == "COMPLETED", state

    artifacts = artifacts_of(stack, run_id)
    assert set(artifacts) >= EXPECTED_ARTIFACTS, sorted(artifacts)
    assert drifted in json.dumps(artifacts[f"drift-paths-{TREE}"]["data"]), "drift not listed"
    check_report_reachable(stack, report_link(artifacts[f"report-{TREE}"]))


def test_a_pipeline_run_completes_while_the_zookeeper_leader_is_killed(stack: Stack) -> None:
    before = modes(stack)
    leader = next(node for node, mode in before.items() if mode == "leader")
    run_id = start_pipeline_run(stack)
    deadline = time.monotonic() + 60
    while flow_run_state(stack, run_id)["type"] in ("SCHEDULED", "PENDING"):
        assert time.monotonic() < deadline, "the served deployment never picked the run up"
        time.sleep(0.2)
    stack.kill(leader)

    state = wait_final(stack, run_id)
    assert state["type"] == "COMPLETED", (state, stack.logs("zkdrift", 40))
    assert set(artifacts_of(stack, run_id)) >= EXPECTED_ARTIFACTS
    # The two that are left elected a leader between them.
    survivors = [node for node in ZOOKEEPER_NODES if node != leader]
    deadline = time.monotonic() + 60
    while sorted(str(modes(stack)[node]) for node in survivors) != ["follower", "leader"]:
        assert time.monotonic() < deadline, modes(stack)
        time.sleep(1)


def test_no_credential_reaches_a_log(stack: Stack) -> None:
    services = ("zk1", "zk2", "zk3", "mysql", "prefect", "migrate", "seed", "zkdrift", "jupyter")
    # What compose printed, before the test's own redaction, and each container's log.
    texts = list(stack.outputs)
    for service in services:
        result = stack.engine.run("logs", stack.container(service), check=False)
        texts.append(result.stdout + result.stderr)
    # And what the flow runs logged to the Prefect server.
    flow_logs: list[str] = []
    for page in range(50):
        logs = prefect_api(stack, "POST", "/logs/filter", {"offset": page * 200, "limit": 200})
        flow_logs += [str(log.get("message", "")) for log in logs]
        if len(logs) < 200:
            break
    assert flow_logs, "the flow runs logged nothing to the Prefect server"
    texts += flow_logs
    for value in stack.secret_values():
        assert not any(value in text for text in texts)


def test_down_removes_every_container_volume_and_network(stack: Stack) -> None:
    assert stack.leftovers(), "the stack under test is not up"
    stack.down()
    assert stack.leftovers() == {}
