"""``zkdrift status``: where every tree stands, from the database alone."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from zkdrift.cli.common import AsJson, console, emit_json, state
from zkdrift.status import TreeStatus, tree_statuses
from zkdrift.vocabulary import drift_status, utc_text


def _live_vs_desired(s: TreeStatus) -> str:
    """``in sync``, ``4 drifted since 12:48 UTC`` or ``not checked``."""
    if s.differences is None:
        return "[dim]not checked[/]"
    text = drift_status(s.differences, s.drifted_since)
    return f"[green]{text}[/]" if s.differences == 0 else f"[yellow]{text}[/]"


def _desired(s: TreeStatus) -> str:
    """``r1, applied``; ``r2, not applied yet (r1 applied)``; ``none``."""
    if s.desired_revision is None:
        return "[dim]none[/]"
    if s.applied_revision == s.desired_revision:
        return f"r{s.desired_revision}, applied"
    earlier = f" (r{s.applied_revision} applied)" if s.applied_revision else ""
    return f"r{s.desired_revision}, not applied yet{earlier}"


def _last_apply(s: TreeStatus) -> str:
    """``push applied by bob, 2026-12-01 14:12:05 UTC``; ``adopted by ...`` for an adopt."""
    if s.last_apply_at is None:
        return "never"
    what = (
        str(s.last_apply_outcome)
        if s.last_apply_direction == "adopt"
        else f"{s.last_apply_direction} {s.last_apply_outcome}"
    )
    return f"{escape(what)} by {escape(s.last_apply_actor or '?')}, {utc_text(s.last_apply_at)}"


def _watch(s: TreeStatus) -> str:
    """``watching, last event 12:01:02 UTC, resync 11:59:00 UTC``; ``not watched``."""
    if s.watch is None:
        return "[dim]not watched[/]"
    parts = [s.watch if s.watch != "polling" else "[yellow]polling (no addWatch)[/]"]
    if s.last_event_at is not None:
        parts.append(f"last event {utc_text(s.last_event_at)}")
    if s.last_resync_at is not None:
        parts.append(f"resync {utc_text(s.last_resync_at)}")
    return ", ".join(parts)


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
        "tree", "desired", "live vs desired", "checked", "snapshot", "last apply", "schedule",
        "policy", "watch",
    )  # fmt: skip
    for s in rows:
        snapshot = (
            f"#{s.last_snapshot_id}, {s.nodes:,} nodes, {utc_text(s.last_snapshot_at)}"
            if s.last_snapshot_id
            else "none"
        )
        policy = escape(s.reconcile) if s.policy_error is None else "[red]invalid (see below)[/]"
        table.add_row(
            escape(s.tree),
            _desired(s),
            _live_vs_desired(s),
            utc_text(s.last_check_at) or "never",
            snapshot,
            _last_apply(s),
            escape(s.schedule or "-"),
            policy,
            _watch(s),
        )
    console.print(table)
    for s in rows:
        if s.policy_error is not None:
            console.print(f"[red]{escape(s.tree)}: invalid policy: {escape(s.policy_error)}[/]")
