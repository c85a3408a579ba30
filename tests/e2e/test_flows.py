"""The Prefect flows under a real Prefect server, against a real ZooKeeper and databases."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss
from prefect import get_client

import zkdrift.flows.pipeline
import zkdrift.flows.snapshot
from tests.support.cli import run_cli_process
from tests.support.git import Repo
from tests.support.prefect import artifacts_of, task_runs_of
from tests.support.zk import create_tree
from zkdrift import desired
from zkdrift import snapshot as snapshot_lib
from zkdrift.app import App
from zkdrift.errors import InvalidInputError
from zkdrift.flows.drift import drift_flow
from zkdrift.flows.params import DriftParams, PipelineParams, ReconcileParams, SnapshotParams
from zkdrift.flows.pipeline import pipeline_flow
from zkdrift.flows.reconcile import reconcile_flow
from zkdrift.flows.snapshot import snapshot_flow
from zkdrift.policy import DesiredSource, TreePolicy
from zkdrift.reconcile import adopt
from zkdrift.reports.render import report_path
from zkdrift.tasks.results import TreeOutcome
from zkdrift.tasks.runtime import artifact_key, tree_limit_name, tree_slot
from zkdrift.tasks.snapshot import snapshot_tree
from zkdrift.trees import TreeSpec, add_tree, update_tree

SECRET = b"hunter2-secret-value"
NEW_SECRET = b"rotated-secret-value-xyz"
CONFIG = {
    "": b"",
    "/db": b"",
    "/db/host": b"db.internal",
    "/db/password": SECRET,
    "/replicas": b"3",
    "/blob": bytes(range(256)),
}


def setup_tree(app: App, zk: KazooClient, hosts: str, name: str, root: str, **policy: Any) -> None:
    """A live tree whose desired state is adopted from live, then made to drift."""
    create_tree(zk, {root + path: value for path, value in CONFIG.items()})
    spec = TreeSpec(name=name, hosts=hosts, root=root, policy=TreePolicy.model_validate(policy))
    add_tree(app, spec)
    adopt(app, name, actor="test", message="baseline")


def make_drift(app: App, zk: KazooClient, name: str, root: str) -> None:
    zk.set(f"{root}/replicas", b"5")  # drift: live changed outside zkdrift
    zk.set(f"{root}/db/password", NEW_SECRET)  # drift on a secret path
    desired.set_value(app, name, f"{root}/db/host", b"db2.internal", author="test")  # pending


def by_tree(outcomes: list[TreeOutcome]) -> dict[str, TreeOutcome]:
    return {o.tree: o for o in outcomes}


def artifact_text(artifacts: dict[str, Any]) -> str:
    return "\n".join(
        json.dumps(a.data) if not isinstance(a.data, str) else a.data for a in artifacts.values()
    )


def test_pipeline_snapshots_checks_drift_and_plans_every_tree_with_redacted_artifacts(
    flow_app_any_db: App, zk: KazooClient, zk_chroot: str
) -> None:
    app = flow_app_any_db
    setup_tree(app, zk, zk_chroot, "billing", "/billing")
    setup_tree(app, zk, zk_chroot, "Search.App", "/search")
    make_drift(app, zk, "billing", "/billing")

    state = pipeline_flow(PipelineParams(report=False), return_state=True)

    assert state.is_completed(), state.message
    assert state.name == "Drifted"
    assert state.message is not None and "billing: 3 drifted since" in state.message
    assert "Search.App: in sync" in state.message
    outcomes = by_tree(state.result())
    assert set(outcomes) == {"billing", "Search.App"}
    billing, search = outcomes["billing"], outcomes["Search.App"]
    assert billing.snapshot is not None and billing.snapshot.node_count == len(CONFIG)
    assert billing.drift is not None
    assert (billing.drift.drift, billing.drift.pending, billing.drift.conflict) == (2, 1, 0)
    assert [r.path for r in billing.drift.rows] == [
        "/billing/db/host",
        "/billing/db/password",
        "/billing/replicas",
    ]
    # The default policy plans and never writes.
    assert billing.reconcile is not None and billing.reconcile.mode == "dry-run"
    assert billing.reconcile.operations == 3 and billing.reconcile.applied == 0
    assert zk.get("/billing/replicas")[0] == b"5"
    assert search.drift is not None and not search.drift.has_differences
    assert search.reconcile is not None and search.reconcile.operations == 0

    run_id = state.state_details.flow_run_id
    assert run_id is not None
    keys = [
        artifact_key("drift", "billing"),
        artifact_key("drift-paths", "billing"),
        artifact_key("drift", "Search.App"),
        artifact_key("drift-paths", "Search.App"),
        "pipeline-summary",
    ]
    artifacts = artifacts_of(run_id)
    assert set(keys) <= set(artifacts)
    headline = artifacts["drift-billing"].data
    assert artifacts["drift-billing"].type == "markdown"
    assert "**OUT OF SYNC: 3 paths since" in headline
    assert "run `zkdrift apply billing --yes` or `zkdrift adopt billing`" in headline
    assert "`/billing/replicas` (changed, drift): `3` -> `5`" in headline
    table = json.loads(artifacts["drift-paths-billing"].data)
    assert [row["path"] for row in table] == [r.path for r in billing.drift.rows]
    host_row, password_row, replicas_row = table
    # Desired -> live values for plain paths; who moved in plain words.
    assert (host_row["desired"], host_row["live"]) == ("db2.internal", "db.internal")
    assert (host_row["kind"], host_row["who moved"]) == ("changed", "pending")
    assert (replicas_row["desired"], replicas_row["live"]) == ("3", "5")
    # A secret shows its placeholder on both sides, never the value.
    assert password_row["desired"].startswith("<redacted hmac:")
    assert password_row["live"].startswith("<redacted hmac:")
    assert password_row["desired"] != password_row["live"]
    summary = artifacts["pipeline-summary"].data
    assert "2 of 2 tree(s) succeeded" in summary
    assert "| billing | 3 drifted since" in summary and "| Search.App | in sync |" in summary
    text = artifact_text(artifacts)
    for value in (SECRET, NEW_SECRET):
        assert value.decode() not in text


def test_a_write_step_waits_while_another_run_holds_the_trees_slot(
    flow_app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(flow_app, zk, zk_chroot, "billing", "/billing")
    before = len(snapshot_lib.list_snapshots(flow_app, "billing"))
    holding, seen_while_held = threading.Event(), []

    def other_run() -> None:  # another flow run's step writing the same tree
        with tree_slot("billing"):
            holding.set()
            time.sleep(3)
            seen_while_held.append(len(snapshot_lib.list_snapshots(flow_app, "billing")))

    holder = threading.Thread(target=other_run)
    holder.start()
    assert holding.wait(60)
    started = time.monotonic()
    state = snapshot_flow(SnapshotParams(trees=["billing"]), return_state=True)
    waited = time.monotonic() - started
    holder.join(30)

    assert state.is_completed(), state.message
    assert seen_while_held == [before]  # nothing was written while the slot was held
    assert len(snapshot_lib.list_snapshots(flow_app, "billing")) == before + 1
    assert waited >= 2
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(tree_limit_name("billing"))
    assert limit.limit == 1 and limit.active_slots == 0


def test_pipeline_applies_only_to_the_tree_whose_policy_says_apply(
    flow_app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(flow_app, zk, zk_chroot, "auto", "/auto", reconcile="apply")
    setup_tree(flow_app, zk, zk_chroot, "manual", "/manual")
    make_drift(flow_app, zk, "auto", "/auto")
    make_drift(flow_app, zk, "manual", "/manual")

    state = pipeline_flow(PipelineParams(report=False), return_state=True)

    assert state.is_completed(), state.message
    assert state.name == "Drifted"  # "manual" still is
    outcomes = by_tree(state.result())
    assert outcomes["auto"].status.endswith("reconciled (3 applied)")
    auto, manual = outcomes["auto"].reconcile, outcomes["manual"].reconcile
    assert auto is not None and auto.mode == "apply" and auto.applied == 3
    assert auto.apply_id is not None and auto.outcome == "applied"
    assert zk.get("/auto/replicas")[0] == b"3"
    assert zk.get("/auto/db/password")[0] == SECRET
    assert zk.get("/auto/db/host")[0] == b"db2.internal"
    assert manual is not None and manual.mode == "dry-run" and manual.applied == 0
    assert zk.get("/manual/replicas")[0] == b"5"


def test_reconcile_flow_is_a_dry_run_by_default_and_applies_when_the_parameter_says_so(
    flow_app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(flow_app, zk, zk_chroot, "svc", "/svc")
    make_drift(flow_app, zk, "svc", "/svc")

    dry = reconcile_flow(ReconcileParams(), return_state=True)
    assert dry.is_completed(), dry.message
    planned = dry.result()[0].reconcile
    assert planned is not None and planned.mode == "dry-run" and planned.plan_id is not None
    assert sorted(planned.ops) == ["set /svc/db/host", "set /svc/db/password", "set /svc/replicas"]
    assert zk.get("/svc/replicas")[0] == b"5"

    applied = reconcile_flow(
        ReconcileParams(trees=["svc"], apply=True, reason="test"), return_state=True
    )

    assert applied.is_completed(), applied.message
    result = applied.result()[0].reconcile
    assert result is not None and result.mode == "apply" and result.applied == 3
    assert zk.get("/svc/replicas")[0] == b"3"
    assert zk.get("/svc/db/host")[0] == b"db2.internal"


def test_a_run_that_applies_every_drifted_tree_ends_reconciled(
    flow_app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(flow_app, zk, zk_chroot, "auto", "/auto", reconcile="apply")
    make_drift(flow_app, zk, "auto", "/auto")

    state = pipeline_flow(PipelineParams(report=False), return_state=True)

    assert state.is_completed() and state.name == "Reconciled", state.message
    again = pipeline_flow(PipelineParams(report=False), return_state=True)
    assert again.is_completed() and again.name == "In sync", again.message


def test_a_tree_without_desired_state_is_observed_and_the_pipeline_succeeds(
    flow_app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(flow_app, zk, zk_chroot, "healthy", "/healthy")
    create_tree(zk, {"/watched": b"", "/watched/key": b"v"})
    add_tree(flow_app, TreeSpec(name="watched", hosts=zk_chroot, root="/watched"))

    state = pipeline_flow(PipelineParams(report=False), return_state=True)

    assert state.is_completed() and state.name == "In sync", state.message
    watched = by_tree(state.result())["watched"]
    assert watched.snapshot is not None and watched.snapshot.node_count == 2
    assert watched.drift is not None and watched.drift.observed
    assert watched.reconcile is not None and watched.reconcile.outcome == "observed only"
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    artifacts = artifacts_of(run_id)
    assert "NO DESIRED STATE: this tree is observed only" in artifacts["drift-watched"].data
    assert "`zkdrift adopt watched`" in artifacts["drift-watched"].data
    assert "drift-paths-watched" not in artifacts
    assert "| watched | observed only |" in artifacts["pipeline-summary"].data
    only = pipeline_flow(PipelineParams(trees=["watched"], report=False), return_state=True)
    assert only.is_completed() and only.name == "Observed", only.message


def test_one_failing_tree_fails_the_run_without_hiding_the_other_trees_results(
    flow_app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(flow_app, zk, zk_chroot, "healthy", "/healthy")
    add_tree(flow_app, TreeSpec(name="ghost", hosts=zk_chroot, root="/ghost"), check=False)

    state = pipeline_flow(PipelineParams(report=False), return_state=True)

    assert state.is_failed()
    assert "1 of 2 tree(s) failed: ghost (snapshot:" in (state.message or "")
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    artifacts = artifacts_of(run_id)
    assert "drift-healthy" in artifacts and "drift-ghost" not in artifacts
    summary = artifacts["pipeline-summary"].data
    assert "1 of 2 tree(s) succeeded" in summary
    assert "| healthy | in sync |" in summary
    assert "| ghost | failed at snapshot:" in summary
    # The table keeps one line per tree; the whole error follows it.
    assert "## Errors" in summary and "**ghost** (failed at snapshot):" in summary


def test_a_transient_connection_loss_is_retried_and_the_flow_succeeds(
    flow_app: App, zk: KazooClient, zk_chroot: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_tree(flow_app, zk, zk_chroot, "flaky", "/flaky")
    real = snapshot_lib.take_snapshot
    calls: list[str] = []

    def lose_the_first_connection(app: App, name: str, **kw: Any) -> Any:
        calls.append(name)
        if len(calls) == 1:
            raise ConnectionLoss("connection to ZooKeeper lost")
        return real(app, name, **kw)

    monkeypatch.setattr(snapshot_lib, "take_snapshot", lose_the_first_connection)
    # Same retry policy, no pause: the test waits for nothing.
    monkeypatch.setattr(
        zkdrift.flows.snapshot, "snapshot_tree", snapshot_tree.with_options(retry_delay_seconds=0)
    )

    state = snapshot_flow(SnapshotParams(trees=["flaky"]), return_state=True)

    assert state.is_completed(), state.message
    assert calls == ["flaky", "flaky"]
    outcome = state.result()[0]
    assert outcome.snapshot is not None and outcome.snapshot.node_count == len(CONFIG)
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    snapshot_runs = [t for t in task_runs_of(run_id) if t.name == "snapshot-flaky"]
    assert [t.run_count for t in snapshot_runs] == [2]
    assert snapshot_runs[0].state.is_completed()


def test_a_logic_error_fails_at_once_with_its_message_and_is_not_retried(
    flow_app: App, zk: KazooClient, zk_chroot: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_tree(flow_app, zk, zk_chroot, "bad", "/bad")
    calls: list[str] = []

    def refuse(app: App, name: str, **kw: Any) -> Any:
        calls.append(name)
        raise InvalidInputError(f"tree {name!r} is misconfigured")

    monkeypatch.setattr(snapshot_lib, "take_snapshot", refuse)
    monkeypatch.setattr(
        zkdrift.flows.pipeline, "snapshot_tree", snapshot_tree.with_options(retry_delay_seconds=0)
    )

    state = pipeline_flow(PipelineParams(report=False), return_state=True)

    assert state.is_failed()
    assert calls == ["bad"]
    assert "bad (snapshot: tree 'bad' is misconfigured)" in (state.message or "")


def test_drift_flow_links_the_latest_html_report_when_one_exists(
    flow_app: App, zk: KazooClient, zk_chroot: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZKDRIFT_REPORTS_URL", "http://reports.example:8080/zk")
    setup_tree(flow_app, zk, zk_chroot, "linked", "/linked")
    report = report_path(flow_app.settings, "linked")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("<html><body>report</body></html>")

    state = drift_flow(DriftParams(trees=["linked"]), return_state=True)

    assert state.is_completed() and state.name == "In sync", state.message
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    artifacts = artifacts_of(run_id)
    link = artifacts[artifact_key("report", "linked")]
    # Prefect stores a link artifact as a markdown link; the report is served over HTTP.
    assert (
        link.data == "[linked drift and history report](http://reports.example:8080/zk/linked.html)"
    )
    assert "Live ZooKeeper matches the desired state" in artifacts["drift-linked"].data


def test_pipeline_renders_each_trees_html_report_and_links_it(
    flow_app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(flow_app, zk, zk_chroot, "reported", "/reported")
    make_drift(flow_app, zk, "reported", "/reported")

    state = pipeline_flow(PipelineParams(trees=["reported"]), return_state=True)

    assert state.is_completed(), state.message
    outcome = state.result()[0]
    assert outcome.report is not None
    html = Path(outcome.report.path)
    assert html == report_path(flow_app.settings, "reported")
    assert html.is_file() and html.stat().st_size > 0
    assert SECRET.decode() not in html.read_text(errors="replace")
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    artifacts = artifacts_of(run_id)
    link = artifacts[artifact_key("report", "reported")]
    assert "(http://localhost:8765/reported.html)" in link.data
    # One report card per run: the headline does not link the report a second time.
    assert "html report" not in artifacts[artifact_key("drift", "reported")].data.lower()


def test_zkdrift_run_pipeline_runs_on_the_prefect_server_and_prints_the_summary(
    flow_app: App, zk: KazooClient, zk_chroot: str, prefect_cli_env: dict[str, str]
) -> None:
    setup_tree(flow_app, zk, zk_chroot, "cli", "/cli")
    make_drift(flow_app, zk, "cli", "/cli")

    result = run_cli_process("run", "pipeline", "--tree", "cli", "--no-report", env=prefect_cli_env)

    assert result.exit_code == 0, result.stderr
    assert "zkdrift pipeline" in result.stdout
    assert "1 of 1 tree(s) succeeded" in result.stdout
    assert "Drifted" in result.stdout
    assert "Prefect UI: http://" in result.stdout
    # The run's logs say where it connected and what it found, without credentials.
    logs = result.stdout + result.stderr
    assert zk_chroot in logs and "sqlite:///" in logs
    assert "OUT OF SYNC: 3 paths" in logs and "set /cli/replicas" in logs
    assert SECRET.decode() not in logs and NEW_SECRET.decode() not in logs


def test_zkdrift_run_json_names_the_flow_run_recorded_on_the_server(
    flow_app: App, zk: KazooClient, zk_chroot: str, prefect_cli_env: dict[str, str]
) -> None:
    setup_tree(flow_app, zk, zk_chroot, "js", "/js")

    result = run_cli_process("run", "snapshot", "--json", env=prefect_cli_env)

    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["ok"] is True and payload["state"] == "Completed"
    assert payload["api_url"] == prefect_cli_env["PREFECT_API_URL"]
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(payload["flow_run_id"])
    assert run.state is not None and run.state.is_completed()
    assert run.parameters["params"]["trees"] == []


def test_zkdrift_run_exits_1_and_names_the_tree_when_a_tree_fails(
    flow_app: App, zk_chroot: str, prefect_cli_env: dict[str, str]
) -> None:
    add_tree(flow_app, TreeSpec(name="ghost", hosts=zk_chroot, root="/ghost"), check=False)

    result = run_cli_process("run", "snapshot", env=prefect_cli_env)

    assert result.exit_code == 1
    assert "ghost" in result.stderr and "/ghost" in result.stderr
    assert "Failed" in result.stdout


def test_zkdrift_run_rejects_an_unknown_tree_with_the_known_ones(
    flow_app: App, zk: KazooClient, zk_chroot: str, prefect_cli_env: dict[str, str]
) -> None:
    setup_tree(flow_app, zk, zk_chroot, "known", "/known")

    result = run_cli_process("run", "snapshot", "--tree", "nope", env=prefect_cli_env)

    assert result.exit_code == 1
    assert "unknown tree 'nope'; known trees: known" in result.stderr


@pytest.mark.parametrize(("configured", "expected"), [(None, 120), (7, 7)])
def test_a_temporary_local_server_gets_time_to_start_unless_prefect_is_told_otherwise(
    monkeypatch: pytest.MonkeyPatch, configured: int | None, expected: int
) -> None:
    from prefect.settings import (
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    from zkdrift.flows import runs

    seen: list[int] = []

    def record(ref: object, params: object, *, url: str | None) -> None:
        seen.append(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())

    monkeypatch.setattr(runs, "api_url", lambda: None)
    monkeypatch.setattr(runs, "_run_in_process", record)
    updates = (
        {} if configured is None else {PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: configured}
    )
    with temporary_settings(updates=updates):
        runs.run_flow("snapshot", {"trees": []})

    assert seen == [expected]
    assert PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value() == 20


def test_zkdrift_run_without_an_api_url_uses_a_temporary_local_server(
    flow_app: App, zk: KazooClient, zk_chroot: str, prefect_cli_env: dict[str, str]
) -> None:
    setup_tree(flow_app, zk, zk_chroot, "eph", "/eph")
    env = {k: v for k, v in prefect_cli_env.items() if k != "PREFECT_API_URL"}

    result = run_cli_process("run", "snapshot", "--json", env=env)

    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["ok"] is True and payload["api_url"] is None
    assert "| eph |" in payload["summary"]


def test_pipeline_syncs_git_sourced_trees_before_drift_then_plans_applies_or_refuses(
    flow_app: App, zk: KazooClient, zk_chroot: str, tmp_path: Path
) -> None:
    # One run, three trees following one repository: the default policy (plans), a
    # policy that applies, and a tree whose new commit is bad.
    app = flow_app
    repo = Repo(tmp_path / "git")
    names = ("gplan", "gapply", "gbroken")
    repo.commit("base", {f"{name}/pool": "32" for name in names})
    for name in names:
        create_tree(zk, {f"/{name}": b"", f"/{name}/pool": b"32"})
        policy = TreePolicy(reconcile="apply") if name == "gapply" else TreePolicy()
        add_tree(app, TreeSpec(name=name, hosts=zk_chroot, root=f"/{name}", policy=policy))
        source = DesiredSource.parse(f"{repo.url}//{name}?ref=main").model_dump()
        update_tree(app, name, desired_source=source)
        desired.sync_desired(app, name)
        # Live already equals the synced state: recorded as applied.
        assert adopt(app, name, actor="test", override=True).applied_revision is not None
    os.symlink("/etc/hostname", repo.work / "gbroken" / "leak")
    merged = repo.commit(
        "Raise the pool (#7)", {"gplan/pool": "64", "gapply/pool": "64", "gbroken/pool": "64"}
    )

    state = pipeline_flow(PipelineParams(report=False), return_state=True)

    # The bad commit fails its tree at the sync step; the others complete.
    assert state.is_failed()
    assert state.message is not None and "1 of 3 tree(s) failed: gbroken (sync:" in state.message
    assert "symbolic link leads outside" in state.message
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    artifacts = artifacts_of(run_id)
    planned = artifacts[artifact_key("drift", "gplan")].data
    assert f"commit {merged[:12]} by Ann Author <ann@example.com>: Raise the pool (#7)" in planned
    assert "`/gplan/pool` (changed, pending)" in planned
    assert zk.get("/gplan/pool")[0] == b"32"  # the default policy only plans
    assert zk.get("/gapply/pool")[0] == b"64"  # applied by the tree's policy
    summary = artifacts["pipeline-summary"].data
    assert "| gapply | 1 drifted since" in summary and "reconciled (1 applied)" in summary
    # The broken tree keeps the revision in force, and its drift was still checked.
    assert desired.desired_log(app, "gbroken")[0].commit != merged
    assert zk.get("/gbroken/pool")[0] == b"32"
    assert artifact_key("drift", "gbroken") in artifacts
