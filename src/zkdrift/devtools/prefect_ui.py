"""Screenshots of what a user sees in the Prefect UI for a drifted demo tree.

Starts everything it needs on free ports (a Prefect server with its UI, a
ZooKeeper, ``zkdrift serve``), seeds the example tree, edits it by hand the
way drift happens, runs the pipeline through the tree's deployment, and
photographs with headless Chromium: the run list (state names), the flow
run, the deployment, the drift artifact, the served HTML report and the
event feed with the watcher's drift and change events.

    python -m zkdrift.devtools.prefect_ui --out .zkdrift/screenshots/

(``scripts/screenshots`` runs it after the report screenshots.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

from zkdrift.devtools.browser import ensure_chromium
from zkdrift.devtools.demo import ROOT, TREE, introduce_drift
from zkdrift.devtools.zkserver import ZooKeeperServer, free_port

# Chromium waits this long (virtual time) for the UI's scripts before the shot.
RENDER_BUDGET_MS = 15_000


def shoot(
    url: str, out: Path, *, width: int = 1440, height: int = 1000, budget: int = RENDER_BUDGET_MS
) -> Path:
    """A PNG of ``url`` as a browser window of ``width`` x ``height`` shows it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            ensure_chromium(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--window-size={width},{height}",
            f"--virtual-time-budget={budget}",
            f"--screenshot={out}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


def _wait_http(url: str, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer within {limit:g}s") from None
            time.sleep(0.5)


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _api(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"null")


def _zkdrift(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zkdrift", *args], env=env, capture_output=True, text=True
    )


def capture(out: Path) -> list[Path]:
    """Bring the stack up, make drift, run the pipeline, and photograph the UI."""
    work = Path(tempfile.mkdtemp(prefix="zkdrift-screens-"))
    prefect_port, reports_port = free_port(), free_port()
    ui = f"http://127.0.0.1:{prefect_port}"
    api = f"{ui}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ZKDRIFT_"))}
    env.update(
        PREFECT_HOME=str(work / "prefect"),
        PREFECT_API_URL=api,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_API_PORT=str(prefect_port),
        ZKDRIFT_HOME=str(work / "home"),
        ZKDRIFT_REPORTS_PORT=str(reports_port),
        ZKDRIFT_SERVE_POLL_SECONDS="2",
        COLUMNS="160",
    )
    server = ZooKeeperServer(work / "zookeeper", free_port(), test_mode=True).start()
    shots: list[Path] = []
    try:
        prefect_cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
        with _process([*prefect_cmd, "--port", str(prefect_port)], env, work / "prefect.log"):
            _wait_http(f"{api}/health")
            seeded = _zkdrift(
                "seed",
                "--hosts",
                server.connect_string,
                "--root",
                ROOT,
                "--register",
                TREE,
                env=env,
            )
            if seeded.returncode != 0:
                raise SystemExit(seeded.stderr)
            introduce_drift(server.connect_string)
            serve_cmd = [sys.executable, "-m", "zkdrift", "serve"]
            with _process(serve_cmd, env, work / "serve.log"):
                deployment = _wait_deployment(api, f"zkdrift-pipeline/{TREE}")
                run = _zkdrift("run", "pipeline", "--tree", TREE, "--json", env=env)
                outcome = json.loads(run.stdout)
                flow_run = outcome["flow_run_id"]
                artifacts = _api(
                    api,
                    "/artifacts/filter",
                    {"artifacts": {"flow_run_id": {"any_": [flow_run]}}},
                )
                by_key = {a["key"]: a["id"] for a in artifacts if a.get("key")}
                artifact = f"{ui}/artifacts/artifact"
                pages = {
                    # The V1 run list and deployment pages stay dimmed in headless
                    # Chromium, half drawn; V2 shows the same.
                    "prefect-runs": f"{ui}/v2/runs",
                    "prefect-flow-run": f"{ui}/runs/flow-run/{flow_run}",
                    "prefect-flow-run-artifacts": f"{ui}/runs/flow-run/{flow_run}?tab=Artifacts",
                    "prefect-deployment": f"{ui}/v2/deployments/deployment/{deployment}",
                    "prefect-drift-artifact": f"{artifact}/{by_key[f'drift-{TREE}']}",
                    "prefect-drift-table": f"{artifact}/{by_key[f'drift-paths-{TREE}']}",
                    "report": f"http://localhost:{reports_port}/{TREE}.html",
                }
                # serve's watcher saw the drift when it started; one more hand edit now
                # shows in the event feed as a change to the tree.
                _edit(server.connect_string)
                _wait_events(api, TREE)
                pages["prefect-events"] = f"{ui}/events"
                for name, url in pages.items():
                    height = {"report": 2400, "prefect-events": 2000}.get(name, 1000)
                    width = 1700 if name == "prefect-drift-table" else 1440
                    shots.append(
                        shoot(url, out / f"{name}.png", width=width, height=height, budget=30_000)
                    )
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)
    return shots


def _edit(hosts: str) -> None:
    client = KazooClient(hosts=hosts)
    client.start(timeout=15)
    try:
        client.set(f"{ROOT}/checkout/prod/replicas", b"16")
    finally:
        client.stop()
        client.close()


def _wait_events(api: str, tree: str, limit: float = 60) -> None:
    """Wait until the server holds both the watcher's drift event and a change event."""
    wanted = {"zkdrift.tree.drifted", "zkdrift.znode.changed"}
    body = {"filter": {"event": {"prefix": ["zkdrift."]}}, "limit": 50}
    deadline = time.monotonic() + limit
    while True:
        try:
            found = _api(api, "/events/filter", body)
            names = {
                e["event"]
                for e in found.get("events", [])
                if e["resource"].get("prefect.resource.id") == f"zkdrift.tree.{tree}"
            }
            if wanted <= names:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(
                f"the watcher's events for tree {tree} did not arrive within {limit:g}s"
            )
        time.sleep(1)


def _wait_deployment(api: str, full_name: str, limit: float = 120) -> str:
    flow, name = full_name.split("/", 1)
    deadline = time.monotonic() + limit
    while True:
        try:
            found = _api(api, f"/deployments/name/{flow}/{name}")
            if found.get("status") == "READY":
                return str(found["id"])
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{full_name} was not served within {limit:g}s")
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".zkdrift/screenshots"))
    args = parser.parse_args(argv)
    for shot in capture(args.out):
        print(shot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
