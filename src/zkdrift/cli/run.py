"""``zkdrift run FLOW`` and ``zkdrift serve``: the Prefect flows from the terminal."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markdown import Markdown

from zkdrift.cli.common import (
    EXIT_ERROR,
    AsJson,
    console,
    emit_json,
    err_console,
    state,
)

run_app = typer.Typer(
    help=(
        "Run a zkdrift flow once and wait for it: on the Prefect server in PREFECT_API_URL "
        "when set (the run shows in its UI), on a temporary local one otherwise."
    ),
    no_args_is_help=True,
)

Trees = Annotated[
    list[str],
    typer.Option("--tree", "-t", help="A registered tree (repeatable; default: every tree)."),
]
Local = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Run in this process even when a served deployment exists (still reported).",
    ),
]
Apply = Annotated[
    bool | None,
    typer.Option(
        "--apply/--dry-run",
        help="Apply to ZooKeeper, or only plan. Default: each tree's reconcile policy.",
    ),
]
Prune = Annotated[
    bool, typer.Option("--prune", help="Also delete live nodes the desired state lacks.")
]


def _execute(key: str, values: dict[str, Any], *, local: bool, as_json: bool) -> None:
    # Prefect loads only when a flow is run: every other command starts fast.
    from zkdrift.flows import runs

    runs.check_trees(state.app, values.get("trees") or [])
    state.close()  # the flow's tasks open their own connections
    # Make the run's own log lines (which ZooKeeper, which database, what changed) visible.
    logging.getLogger("zkdrift").setLevel(logging.INFO)
    outcome = runs.run_flow(key, values, local=local)
    if as_json:
        emit_json(outcome.as_json())
    else:
        if outcome.summary:
            # One line per tree; a long error is cut there and given whole below.
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
        raise typer.Exit(EXIT_ERROR)


@run_app.command("pipeline")
def run_pipeline(
    trees: Trees = [],  # noqa: B006 - typer reads the default, never mutates it
    apply: Apply = None,
    prune: Prune = False,
    reason: Annotated[
        str, typer.Option("--reason", "-m", help="Why: recorded in the audit of every apply.")
    ] = "pipeline run from the terminal",
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Render HTML reports.")
    ] = True,
    local: Local = False,
    as_json: AsJson = False,
) -> None:
    """Snapshot -> drift -> reconcile (per policy) -> report, every tree concurrently."""
    values = {"trees": trees, "apply": apply, "prune": prune, "reason": reason, "report": report}
    _execute("pipeline", values, local=local, as_json=as_json)


@run_app.command("snapshot")
def run_snapshot(
    trees: Trees = [],  # noqa: B006
    local: Local = False,
    as_json: AsJson = False,
) -> None:
    """Capture each tree's live state."""
    _execute("snapshot", {"trees": trees}, local=local, as_json=as_json)


@run_app.command("drift")
def run_drift(
    trees: Trees = [],  # noqa: B006
    local: Local = False,
    as_json: AsJson = False,
) -> None:
    """Compare desired with live for each tree (artifacts: summary and drifted paths)."""
    _execute("drift", {"trees": trees}, local=local, as_json=as_json)


@run_app.command("reconcile")
def run_reconcile(
    trees: Trees = [],  # noqa: B006
    apply: Apply = None,
    prune: Prune = False,
    reason: Annotated[
        str, typer.Option("--reason", "-m", help="Why: recorded in the audit of every apply.")
    ] = "reconcile from the terminal",
    local: Local = False,
    as_json: AsJson = False,
) -> None:
    """Plan (dry run) or apply each tree's desired state."""
    values = {"trees": trees, "apply": apply, "prune": prune, "reason": reason}
    _execute("reconcile", values, local=local, as_json=as_json)


@run_app.command("report")
def run_report(
    trees: Trees = [],  # noqa: B006
    since: Annotated[
        dt.datetime | None, typer.Option("--since", help="History from this time on.")
    ] = None,
    local: Local = False,
    as_json: AsJson = False,
) -> None:
    """Render each tree's HTML report."""
    _execute("report", {"trees": trees, "since": since}, local=local, as_json=as_json)


def serve_command(
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most this many flow runs at once.")
    ] = None,
    write_prefect_yaml: Annotated[
        Path | None,
        typer.Option(
            "--write-prefect-yaml",
            help="Write the deployments as a prefect.yaml to this path and exit.",
        ),
    ] = None,
    work_pool: Annotated[
        str, typer.Option("--work-pool", help="Work pool named in prefect.yaml.")
    ] = "zkdrift",
    watch: Annotated[
        bool,
        typer.Option("--watch/--no-watch", help="Also watch every tree for drift as it happens."),
    ] = True,
) -> None:
    """Serve the Prefect deployments of every registered tree (no work pool needed)."""
    from zkdrift.flows import deployments

    logging.getLogger("zkdrift").setLevel(logging.INFO)
    if write_prefect_yaml is not None:
        plan = deployments.load_specs(state.app)
        for problem in plan.problems:
            err_console.print(f"[yellow]left out:[/] {problem}", highlight=False)
        write_prefect_yaml.write_text(deployments.prefect_yaml(plan.specs, work_pool=work_pool))
        console.print(f"wrote {len(plan.specs)} deployment(s) to {write_prefect_yaml}")
        return
    deployments.serve(state.app, limit=limit, watch=watch)
