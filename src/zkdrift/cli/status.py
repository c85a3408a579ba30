"""``zkdrift status``: where every tree stands, from the database alone."""

from __future__ import annotations

import datetime as dt

import typer
from rich.table import Table

from zkdrift.cli import app
from zkdrift.cli._common import console, emit_json, state
from zkdrift.status import TreeStatus, tree_statuses


def _ago(when: dt.datetime | None) -> str:
    if when is None:
        return "never"
    seconds = int((dt.datetime.now(dt.UTC).replace(tzinfo=None) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


def _drift(s: TreeStatus) -> str:
    if s.in_sync is None:
        return "[dim]not checked[/]"
    if s.in_sync:
        return "[green]in sync[/]"
    parts = [
        f"{n} {label}"
        for n, label in ((s.drift, "drift"), (s.pending, "pending"), (s.conflict, "conflict"))
        if n
    ]
    return "[yellow]" + ", ".join(parts) + "[/]"


@app.command("status")
def status(
    names: list[str] = typer.Argument(None, help="Trees to show (default: every registered tree)."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Where every tree stands: last snapshot, desired revision, last drift check, last apply."""
    rows = tree_statuses(state.app, list(names or []))
    if as_json:
        emit_json([r.as_json() for r in rows])
        return
    if not rows:
        console.print(
            "no trees registered yet; add one with 'zkdrift tree add NAME --hosts ... --root ...'"
        )
        return
    table = Table(
        "tree", "snapshot", "desired", "drift (last check)", "last apply", "schedule", "policy"
    )
    for s in rows:
        snapshot = (
            f"#{s.last_snapshot_id} {s.nodes:,} nodes, {_ago(s.last_snapshot_at)}"
            if s.last_snapshot_id
            else "none"
        )
        if s.desired_revision is None:
            desired = "[dim]none[/]"
        elif s.applied_revision == s.desired_revision:
            desired = f"r{s.desired_revision} (applied)"
        else:
            applied = f"r{s.applied_revision}" if s.applied_revision else "never"
            desired = f"r{s.desired_revision} (applied: {applied})"
        check = _drift(s) + (f", {_ago(s.last_check_at)}" if s.last_check_at else "")
        last_apply = (
            f"{s.last_apply_direction} {s.last_apply_outcome} by {s.last_apply_actor}, "
            f"{_ago(s.last_apply_at)}"
            if s.last_apply_at
            else "never"
        )
        table.add_row(s.tree, snapshot, desired, check, last_apply, s.schedule or "-", s.reconcile)
    console.print(table)
