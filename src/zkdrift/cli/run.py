"""``zkdrift run FLOW`` and ``zkdrift serve``: the Prefect flows from the terminal."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import typer
from rich.markdown import Markdown

from zkdrift import orchestration
from zkdrift.cli import app
from zkdrift.cli._common import console, emit_json, err_console, state

run_app = typer.Typer(
    help=(
        "Run a zkdrift flow once and wait for it: on the Prefect server in PREFECT_API_URL "
        "when set (the run shows in its UI), on a temporary local one otherwise."
    ),
    no_args_is_help=True,
)
app.add_typer(run_app, name="run")

TREES = typer.Option(
    [], "--tree", "-t", help="A registered tree (repeatable; default: every tree)."
)
LOCAL = typer.Option(
    False,
    "--local",
    help="Run in this process even when a served deployment exists (still reported to the API).",
)
JSON = typer.Option(False, "--json", help="Print the outcome as JSON.")
APPLY = typer.Option(
    None,
    "--apply/--dry-run",
    help="Apply to ZooKeeper, or only plan. Default: each tree's policy (options.reconcile).",
)
PRUNE = typer.Option(False, "--prune", help="Also delete live nodes the desired state lacks.")


def _execute(key: str, values: dict[str, Any], *, local: bool, as_json: bool) -> None:
    # Make the run's own log lines (which ZooKeeper, which database, what changed) visible.
    orchestration.check_trees(state.app, values.get("trees") or [])
    state.close()  # the flow's tasks open their own connections
    logging.getLogger("zkdrift").setLevel(logging.INFO)
    outcome = orchestration.run_flow(key, values, local=local)
    if as_json:
        emit_json(
            {
                "flow": outcome.flow,
                "flow_run_id": outcome.flow_run_id,
                "flow_run_name": outcome.flow_run_name,
                "state": outcome.state,
                "ok": outcome.ok,
                "message": outcome.message,
                "deployment": outcome.deployment,
                "api_url": outcome.api_url,
                "ui_url": outcome.ui_url,
                "summary": outcome.summary,
            }
        )
    else:
        if outcome.summary:
            console.print(Markdown(outcome.summary))
        where = f"deployment {outcome.deployment}" if outcome.deployment else "this process"
        colour = "green" if outcome.ok else "red"
        console.print(
            f"[bold {colour}]{outcome.flow} run {outcome.flow_run_name}: {outcome.state}[/] "
            f"(ran in {where})"
        )
        if outcome.message and not outcome.ok:
            err_console.print(f"[red]{outcome.message}[/]", highlight=False)
        if outcome.ui_url:
            console.print(f"Prefect UI: {outcome.ui_url}")
        elif outcome.api_url is None:
            console.print(
                "Ran on a temporary local Prefect server. To keep runs and browse them in the "
                "UI, start one with 'prefect server start' and set "
                "PREFECT_API_URL=http://127.0.0.1:4200/api."
            )
    if not outcome.ok:
        raise typer.Exit(1)


@run_app.command("pipeline")
def run_pipeline(
    trees: list[str] = TREES,
    apply: bool | None = APPLY,
    prune: bool = PRUNE,
    reason: str = typer.Option("pipeline run from the terminal", "--reason", "-m"),
    report: bool = typer.Option(True, "--report/--no-report", help="Render HTML reports."),
    local: bool = LOCAL,
    as_json: bool = JSON,
) -> None:
    """Snapshot -> drift -> reconcile (per policy) -> report, every tree concurrently."""
    values = {"trees": trees, "apply": apply, "prune": prune, "reason": reason, "report": report}
    _execute("pipeline", values, local=local, as_json=as_json)


@run_app.command("snapshot")
def run_snapshot(trees: list[str] = TREES, local: bool = LOCAL, as_json: bool = JSON) -> None:
    """Capture each tree's live state."""
    _execute("snapshot", {"trees": trees}, local=local, as_json=as_json)


@run_app.command("drift")
def run_drift(trees: list[str] = TREES, local: bool = LOCAL, as_json: bool = JSON) -> None:
    """Compare desired with live for each tree (artifacts: summary and drifted paths)."""
    _execute("drift", {"trees": trees}, local=local, as_json=as_json)


@run_app.command("reconcile")
def run_reconcile(
    trees: list[str] = TREES,
    apply: bool | None = APPLY,
    prune: bool = PRUNE,
    reason: str = typer.Option("reconcile from the terminal", "--reason", "-m"),
    local: bool = LOCAL,
    as_json: bool = JSON,
) -> None:
    """Plan (dry run) or apply each tree's desired state."""
    values = {"trees": trees, "apply": apply, "prune": prune, "reason": reason}
    _execute("reconcile", values, local=local, as_json=as_json)


@run_app.command("report")
def run_report(
    trees: list[str] = TREES,
    since: dt.datetime | None = typer.Option(None, "--since", help="History from this time on."),
    local: bool = LOCAL,
    as_json: bool = JSON,
) -> None:
    """Render each tree's HTML report."""
    _execute("report", {"trees": trees, "since": since}, local=local, as_json=as_json)


@app.command("serve")
def serve_command(
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="At most this many flow runs at once."
    ),
    write_prefect_yaml: Path | None = typer.Option(
        None,
        "--write-prefect-yaml",
        help="Write the deployments as a prefect.yaml to this path and exit.",
    ),
    work_pool: str = typer.Option(
        orchestration.DEFAULT_WORK_POOL, "--work-pool", help="Work pool named in prefect.yaml."
    ),
) -> None:
    """Serve the Prefect deployments of every registered tree (no work pool needed)."""
    logging.getLogger("zkdrift").setLevel(logging.INFO)
    if write_prefect_yaml is not None:
        specs = orchestration.load_specs(state.app)
        write_prefect_yaml.write_text(orchestration.prefect_yaml(specs, work_pool=work_pool))
        console.print(f"wrote {len(specs)} deployment(s) to {write_prefect_yaml}")
        return
    orchestration.serve(state.app, limit=limit)
