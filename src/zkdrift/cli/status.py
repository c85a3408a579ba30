"""``zkdrift status``: where every tree stands, from the database alone."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from zkdrift.cli.common import AsJson, console, emit_json, state
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


def status(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Trees to show (default: every registered tree).", show_default=False),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Where every tree stands: last snapshot, desired revision, last drift check, last apply."""
    state.read_only()
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
        policy = s.reconcile if s.policy_error is None else "[red]invalid[/]"
        table.add_row(
            escape(s.tree), snapshot, desired, check, last_apply, s.schedule or "-", policy
        )
    console.print(table)
    for s in rows:
        if s.policy_error is not None:
            console.print(f"[red]{escape(s.policy_error)}[/]")
