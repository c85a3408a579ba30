"""``zkdrift plan``, ``apply``, ``adopt``, ``lock status|break`` and ``audit``."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from zkdrift.cli import app
from zkdrift.cli._common import console, emit_json, err_console, state
from zkdrift.errors import InvalidInputError
from zkdrift.model import Op, OpKind
from zkdrift.reconcile import (
    DEFAULT_LOCK_WAIT,
    ApplyResult,
    PlanResult,
    adopt_tree,
    apply_tree,
    audit_detail,
    audit_log,
    break_tree_lock,
    plan_tree,
    tree_lock_status,
)
from zkdrift.redact import Redactor
from zkdrift.zk.lock import LockHolder

lock_app = typer.Typer(help="Show or break a tree's apply lock.", no_args_is_help=True)
app.add_typer(lock_app, name="lock")

_MAX_VALUE = 200  # characters of a value shown inline


def _redactor() -> Redactor:
    return Redactor(state.app.settings.secret_globs)


def _value(redactor: Redactor, path: str, data: bytes | None) -> str:
    if data is None:
        return "(none)"
    text = redactor.render(path, data)
    if len(text) > _MAX_VALUE:
        text = text[: _MAX_VALUE - 3] + "..."
    return escape(repr(text) if "\n" in text else f'"{text}"')


def _op_line(op: Op, result: PlanResult, redactor: Redactor) -> str:
    path = escape(op.path)
    if op.kind is OpKind.CREATE:
        return f"  [green]+[/] {path} = {_value(redactor, op.path, op.data)}"
    if op.kind is OpKind.SET:
        before = _value(redactor, op.path, result.live_values.get(op.path))
        after = _value(redactor, op.path, op.data)
        return f"  [yellow]~[/] {path}: {before} -> {after}"
    if op.kind is OpKind.SET_ACL:
        acl = ", ".join(a.render() for a in op.acl or ())
        return f"  [yellow]~[/] {path} acl -> {escape(acl)}"
    return f"  [red]-[/] {path}"


def print_plan(result: PlanResult) -> None:
    """The plan, like ``terraform plan``; values go through the Redactor."""
    redactor = _redactor()
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if result.empty:
        console.print(
            f"No changes. Tree [bold]{result.tree}[/] matches the desired state"
            + (f" (plan {result.plan_id})." if result.plan_id else ".")
        )
    else:
        console.print(
            f"zkdrift will perform the following actions on tree [bold]{result.tree}[/]"
            + (f" (plan {result.plan_id}):" if result.plan_id else ":")
        )
        console.print()
        for op in result.ops:
            console.print(_op_line(op, result, redactor))
        console.print()
        counts = result.counts
        changes = counts["set"] + counts["set_acl"]
        console.print(
            f"[bold]Plan:[/] {counts['create']} to create, {changes} to change,"
            f" {counts['delete']} to delete."
        )
    for refusal in result.refusals:
        console.print(f"[bold red]refused:[/] {escape(refusal)}")


def _op_json(op: Op, result: PlanResult, redactor: Redactor) -> dict[str, Any]:
    before = result.live_values.get(op.path)
    return {
        "kind": str(op.kind),
        "path": op.path,
        "expected_version": op.expected_version,
        "before": None if before is None else redactor.render(op.path, before),
        "after": None if op.data is None else redactor.render(op.path, op.data),
        "before_sha256": op.before_digest,
        "after_sha256": op.after_digest,
        "acl": None if op.acl is None else [a.render() for a in op.acl],
    }


def plan_json(result: PlanResult) -> dict[str, Any]:
    redactor = _redactor()
    return {
        "plan_id": result.plan_id,
        "tree": result.tree,
        "snapshot_id": result.snapshot_id,
        "desired_revision": result.desired_revision,
        "prune": result.prune,
        "ops_count": result.op_count,
        "counts": result.counts,
        "warnings": list(result.warnings),
        "refusals": list(result.refusals),
        "ops": [_op_json(op, result, redactor) for op in result.ops],
    }


@app.command("plan")
def plan(
    name: str = typer.Argument(..., help="Registered tree name."),
    prune: bool = typer.Option(False, "--prune", help="Also plan deletes of undesired nodes."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Snapshot the live tree and plan what would make it equal desired (exit 2: changes)."""
    result = plan_tree(state.app, name, prune=prune)
    if as_json:
        emit_json(plan_json(result))
    else:
        print_plan(result)
    raise typer.Exit(0 if result.empty else 2)


def _apply_json(result: ApplyResult) -> dict[str, Any]:
    return {
        "apply_id": result.apply_id,
        "tree": result.tree,
        "outcome": result.outcome,
        "ops_applied": result.ops_applied,
        "ops_total": result.ops_total,
        "message": result.message,
        "moved_paths": list(result.moved_paths),
        "refusals": list(result.refusals),
        "lock_holder": result.lock_holder,
        "plan": None if result.plan is None else plan_json(result.plan),
    }


@app.command("apply")
def apply(
    name: str = typer.Argument(..., help="Registered tree name."),
    plan_id: int | None = typer.Option(None, "--plan", help="Apply this stored plan."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Write (without it: a dry run)."),
    prune: bool = typer.Option(False, "--prune", help="Delete live nodes desired lacks."),
    force: bool = typer.Option(
        False, "--force", help="Allow large deletes and writing into an empty tree."
    ),
    replan: bool = typer.Option(
        False, "--replan", help="When the stored plan is stale, plan afresh under the lock."
    ),
    reason: str = typer.Option("", "--reason", help="Why: recorded in the audit."),
    wait: float = typer.Option(
        DEFAULT_LOCK_WAIT,
        "--wait",
        min=0,
        help="Seconds to wait for the tree's lock (0: do not wait).",
    ),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Make live equal desired under the tree's lock (dry run unless --yes)."""
    result = apply_tree(
        state.app,
        name,
        plan_id=plan_id,
        yes=yes,
        prune=prune,
        force=force,
        replan=replan,
        reason=reason,
        wait=wait,
    )
    if as_json:
        emit_json(_apply_json(result))
    else:
        if result.plan is not None:
            print_plan(result.plan)
            console.print()
        colour = {"applied": "green", "no-op": "green", "dry-run": "cyan"}.get(
            result.outcome, "bold red"
        )
        target = console if result.ok else err_console
        target.print(
            f"[{colour}]{result.outcome}[/] (apply {result.apply_id}): {escape(result.message)}"
        )
        for path in result.moved_paths:
            target.print(f"  moved: {escape(path)}")
    raise typer.Exit(0 if result.ok else 1)


@app.command("adopt")
def adopt(
    name: str = typer.Argument(..., help="Registered tree name."),
    paths: list[str] = typer.Option(
        [], "--paths", help="Adopt only these path globs (a subtree with its root path)."
    ),
    message: str = typer.Option("", "--message", "-m", help="Revision message."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Accept live values as the desired state (a new desired-state revision)."""
    result = adopt_tree(state.app, name, paths=paths, message=message)
    if as_json:
        emit_json(
            None
            if result is None
            else {
                "apply_id": result.apply_id,
                "tree": result.tree,
                "revision": result.revision,
                "added": result.added,
                "removed": result.removed,
                "modified": result.modified,
                "paths": list(result.paths),
            }
        )
        return
    if result is None:
        console.print(f"nothing to adopt: the desired state of {name} already equals live")
        return
    console.print(
        f"adopted live into desired-state revision [bold]{result.revision}[/] of {name}:"
        f" +{result.added} -{result.removed} ~{result.modified}"
    )


def _holder_json(holder: LockHolder) -> dict[str, Any]:
    return {
        "node": holder.node,
        "host": holder.host,
        "pid": holder.pid,
        "run": holder.run,
        "actor": holder.actor,
        "purpose": holder.purpose,
        "since": holder.since,
        "session_id": f"{holder.session_id:#x}",
        "ephemeral": holder.ephemeral,
        "local_process_gone": holder.local_process_gone,
    }


@lock_app.command("status")
def lock_status(
    name: str = typer.Argument(..., help="Registered tree name."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Who holds the tree's lock, and who waits for it."""
    status = tree_lock_status(state.app, name)
    if as_json:
        emit_json(
            {
                "tree": name,
                "path": status.path,
                "locked": status.locked,
                "holder": None if status.holder is None else _holder_json(status.holder),
                "waiters": [_holder_json(w) for w in status.waiters],
            }
        )
        return
    if status.holder is None:
        console.print(f"tree {name} is not locked ({status.path})")
        return
    holder = status.holder
    stale = " [red](its process is gone: stale)[/]" if holder.local_process_gone else ""
    console.print(f"tree {name} is locked by {escape(holder.describe())}{stale}")
    console.print(f"  node {status.path}/{holder.node}, session {holder.session_id:#x}")
    for waiter in status.waiters:
        console.print(f"  waiting: {escape(waiter.describe())}")


@lock_app.command("break")
def lock_break(
    name: str = typer.Argument(..., help="Registered tree name."),
    yes: bool = typer.Option(False, "--yes", help="Really remove the holder's lock node."),
    everyone: bool = typer.Option(False, "--all", help="Remove every contender's node."),
) -> None:
    """Remove a stale lock (the holder must really be gone or stuck)."""
    if not yes:
        raise InvalidInputError(
            "breaking a lock lets another apply run alongside its holder; pass --yes"
            f" after checking 'zkdrift lock status {name}'"
        )
    removed = break_tree_lock(state.app, name, everyone=everyone)
    if not removed:
        console.print(f"tree {name} was not locked")
        return
    for holder in removed:
        console.print(f"removed lock node {holder.node} held by {escape(holder.describe())}")


@app.command("audit")
def audit(
    name: str = typer.Argument(..., help="Registered tree name."),
    apply_id: int | None = typer.Option(None, "--apply", help="Show one apply with its ops."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="How many, newest first."),
    dry_runs: bool = typer.Option(True, "--dry-runs/--no-dry-runs", help="Include dry runs."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """The tree's applies and adopts: who, why, what, and how each ended."""
    if apply_id is not None:
        entry, ops = audit_detail(state.app, name, apply_id)
        if as_json:
            emit_json({**_entry_json(entry), "ops": [o.__dict__ for o in ops]})
            return
        _print_entries([entry])
        for op in ops:
            before = (op.before_digest or "")[:12] or "-"
            after = (op.after_digest or "")[:12] or "-"
            error = f"  {escape(op.error)}" if op.error else ""
            console.print(
                f"  {op.outcome:<11} {op.kind:<12} {escape(op.path)}  {before} -> {after}{error}"
            )
        return
    entries = audit_log(state.app, name, limit=limit, include_dry_runs=dry_runs)
    if as_json:
        emit_json([_entry_json(e) for e in entries])
        return
    if not entries:
        console.print(f"no applies or adopts recorded for tree {name}")
        return
    _print_entries(entries)


def _entry_json(entry: Any) -> dict[str, Any]:
    return {
        "apply_id": entry.id,
        "tree": entry.tree,
        "direction": entry.direction,
        "dry_run": entry.dry_run,
        "actor": entry.actor,
        "reason": entry.reason,
        "host": entry.host,
        "plan_id": entry.plan_id,
        "desired_revision_id": entry.desired_revision_id,
        "started_at": entry.started_at.isoformat(),
        "finished_at": entry.finished_at.isoformat() if entry.finished_at else None,
        "outcome": entry.outcome,
        "ops_total": entry.ops_total,
        "ops_applied": entry.ops_applied,
        "error": entry.error,
    }


def _print_entries(entries: list[Any]) -> None:
    table = Table("id", "started (UTC)", "direction", "actor", "outcome", "ops", "plan", "reason")
    for e in entries:
        direction = e.direction + (" (dry run)" if e.dry_run else "")
        table.add_row(
            str(e.id),
            e.started_at.isoformat(sep=" ", timespec="seconds"),
            direction,
            escape(e.actor),
            e.outcome,
            f"{e.ops_applied}/{e.ops_total}",
            str(e.plan_id or ""),
            escape(e.reason or (e.error or "")[:80]),
        )
    console.print(table)
