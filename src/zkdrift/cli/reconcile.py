"""``zkdrift plan``, ``apply``, ``adopt``, ``lock status|break`` and ``audit``."""

from __future__ import annotations

import datetime as dt
import shlex
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from zkdrift import reconcile as reconcile_lib
from zkdrift.cli.common import (
    EXIT_DIFFERENCES,
    EXIT_ERROR,
    EXIT_OK,
    AsJson,
    Author,
    Limit,
    Message,
    Override,
    PathGlobs,
    TreeName,
    console,
    emit_json,
    err_console,
    redactor,
    shorten,
    state,
)
from zkdrift.errors import InvalidInputError
from zkdrift.model import Op, OpKind
from zkdrift.reconcile import DEFAULT_BATCH_OPS, DEFAULT_LOCK_WAIT, PlanResult
from zkdrift.redact import Redactor
from zkdrift.store.audit import AuditEntry
from zkdrift.vocabulary import utc_text
from zkdrift.zk.lock import LockHolder

lock_app = typer.Typer(help="Show or break a tree's apply lock.", no_args_is_help=True)

_MAX_VALUE = 200  # characters of a value shown inline

Wait = Annotated[
    float,
    typer.Option("--wait", min=0, help="Seconds to wait for the tree's lock (0: do not wait)."),
]


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
        acl = "no ACL" if op.acl is None else ", ".join(a.render() for a in op.acl)
        return (
            f"  [green]+[/] {path} = {_value(redactor, op.path, op.data)}"
            f"  [dim](acl {escape(acl)})[/]"
        )
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
    rd = redactor()
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
            console.print(_op_line(op, result, rd))
        console.print()
        counts = result.counts
        changes = counts["set"] + counts["set_acl"]
        console.print(
            f"[bold]Plan:[/] {counts['create']} to create, {changes} to change,"
            f" {counts['delete']} to delete."
        )
    for refusal in result.refusals:
        console.print(f"[bold red]refused:[/] {escape(refusal)}")


def apply_command(result: PlanResult) -> str | None:
    """The command line that applies this stored plan as it is: with ``--prune`` when
    it deletes, with ``--force`` when every refusal is one --force overrides. None
    when there is nothing to apply, or nothing may apply it."""
    if result.empty or result.plan_id is None:
        return None
    forced = bool(result.refusals)
    if forced and not all("(use --force to" in refusal for refusal in result.refusals):
        return None
    words = ["zkdrift", "apply", result.tree, "--plan", str(result.plan_id), "--yes"]
    if result.counts["delete"]:
        words.append("--prune")
    if forced:
        words.append("--force")
    return shlex.join(words)


def plan(
    name: TreeName,
    prune: Annotated[
        bool, typer.Option("--prune", help="Also plan deletes of undesired nodes.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Snapshot the live tree and plan what would make it equal desired (exit 2: changes).

    The plan is stored; its last line is the command that applies it exactly
    (with --json: apply_command).
    """
    result = reconcile_lib.plan_tree(state.app, name, prune=prune)
    command = apply_command(result)
    if as_json:
        emit_json({**result.as_json(redactor()), "apply_command": command})
    else:
        print_plan(result)
        if command is not None:
            console.print()
            if result.refusals:
                console.print("To apply exactly this plan anyway (--force overrides the refusal):")
            else:
                console.print("To apply exactly this plan, run:")
            console.print(f"  {command}", markup=False)
    raise typer.Exit(EXIT_OK if result.empty else EXIT_DIFFERENCES)


def apply(
    name: TreeName,
    plan_id: Annotated[int | None, typer.Option("--plan", help="Apply this stored plan.")] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Write (without it: a dry run).")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete live nodes desired lacks.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Allow large deletes and writing into an empty tree.")
    ] = False,
    replan: Annotated[
        bool,
        typer.Option("--replan", help="When the stored plan is stale, plan afresh under the lock."),
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why: recorded in the audit.")] = "",
    author: Author = None,
    wait: Wait = DEFAULT_LOCK_WAIT,
    batch_ops: Annotated[
        int,
        typer.Option(
            "--batch-ops",
            min=1,
            help="Most ops per ZooKeeper transaction (each one commits whole or not at all).",
        ),
    ] = DEFAULT_BATCH_OPS,
    as_json: AsJson = False,
) -> None:
    """Make live equal desired under the tree's lock (dry run unless --yes).

    Stopped by SIGTERM, it lets the transaction in flight finish, sends
    nothing more, releases the lock and exits 143; the audit says which
    transactions were applied.
    """
    result = reconcile_lib.apply_tree(
        state.app,
        name,
        plan_id=plan_id,
        yes=yes,
        prune=prune,
        force=force,
        replan=replan,
        reason=reason,
        actor=author,
        wait=wait,
        batch_ops=batch_ops,
    )
    if as_json:
        emit_json(result.as_json(redactor()))
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
    raise typer.Exit(EXIT_OK if result.ok else EXIT_ERROR)


def adopt(
    name: TreeName,
    paths: PathGlobs = [],  # noqa: B006 - typer reads the default, never mutates it
    snapshot_id: Annotated[
        int | None,
        typer.Option("--snapshot", help="Adopt this recorded snapshot (default: read live now)."),
    ] = None,
    message: Message = None,
    author: Author = None,
    wait: Wait = DEFAULT_LOCK_WAIT,
    override: Override = False,
    as_json: AsJson = False,
) -> None:
    """Accept live values (or a recorded snapshot) as the desired state: a new revision."""
    result = reconcile_lib.adopt(
        state.app,
        name,
        paths=paths,
        snapshot_id=snapshot_id,
        message=message,
        actor=author,
        wait=wait,
        override=override,
    )
    if as_json:
        emit_json(result.as_json())
        return
    what = "live" if snapshot_id is None else f"snapshot {snapshot_id}"
    if result.revision is None:
        console.print(
            f"nothing to adopt: the desired state of {name} already equals {what}", markup=False
        )
    else:
        console.print(
            f"adopted {what} into desired-state revision [bold]{result.revision.revision}[/] of"
            f" {escape(name)}: +{result.added} -{result.removed} ~{result.modified}"
        )
    if result.applied_revision is not None:
        console.print(
            f"live equals revision {result.applied_revision}: recorded as applied", markup=False
        )
    else:
        console.print(
            "live differs from the new desired state: 'zkdrift plan "
            f"{name}' shows what an apply would change",
            markup=False,
        )


def _holder_text(holder: LockHolder) -> str:
    """Who holds (or waits for) a lock, with the time it started in UTC words."""
    if holder.host is None or holder.since is None:
        return holder.describe()
    try:
        since = utc_text(dt.datetime.fromisoformat(holder.since))
    except ValueError:
        return holder.describe()
    who = f"{holder.actor} " if holder.actor else ""
    run = f", run {holder.run}" if holder.run else ""
    return f"{who}on {holder.host} (pid {holder.pid}{run}) since {since}"


@lock_app.command("status")
def lock_status(name: TreeName, as_json: AsJson = False) -> None:
    """Who holds the tree's lock, and who waits for it."""
    state.read_only()
    status = reconcile_lib.tree_lock_status(state.app, name)
    if as_json:
        emit_json({"tree": name, **status.as_json()})
        return
    if status.holder is None:
        console.print(f"tree {name} is not locked ({status.path})")
        return
    holder = status.holder
    stale = " [red](its process is gone: stale)[/]" if holder.local_process_gone else ""
    console.print(f"tree {name} is locked by {escape(_holder_text(holder))}{stale}")
    console.print(f"  node {status.path}/{holder.node}, session {holder.session_id:#x}")
    for waiter in status.waiters:
        console.print(f"  waiting: {escape(_holder_text(waiter))}")


@lock_app.command("break")
def lock_break(
    name: TreeName,
    yes: Annotated[
        bool, typer.Option("--yes", help="Really remove the holder's lock node.")
    ] = False,
    everyone: Annotated[bool, typer.Option("--all", help="Remove every contender's node.")] = False,
) -> None:
    """Remove a stale lock (the holder must really be gone or stuck)."""
    state.read_only()
    if not yes:
        raise InvalidInputError(
            "breaking a lock lets another apply run alongside its holder; pass --yes"
            f" after checking 'zkdrift lock status {name}'"
        )
    removed = reconcile_lib.break_tree_lock(state.app, name, everyone=everyone)
    if not removed:
        console.print(f"tree {name} was not locked")
        return
    for holder in removed:
        console.print(f"removed lock node {holder.node} held by {escape(_holder_text(holder))}")


def audit(
    name: TreeName,
    apply_id: Annotated[
        int | None, typer.Option("--apply", help="Show one apply with its ops.")
    ] = None,
    limit: Limit = 50,
    dry_runs: Annotated[
        bool,
        typer.Option("--dry-runs", help="Also list dry runs (hidden by default)."),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """The tree's applies and adopts: who, why, what, and how each ended."""
    state.read_only()
    if apply_id is not None:
        entry, ops = reconcile_lib.audit_detail(state.app, name, apply_id)
        if as_json:
            emit_json({**entry.as_json(), "ops": [o.as_json() for o in ops]})
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
    entries = reconcile_lib.audit_log(state.app, name, limit=limit, include_dry_runs=dry_runs)
    if as_json:
        emit_json([e.as_json() for e in entries])
        return
    if not entries:
        console.print(f"no applies or adopts recorded for tree {name}")
        return
    _print_entries(entries)


def _print_entries(entries: list[AuditEntry]) -> None:
    """The audit table; an error too long for its cell follows the table in full."""
    table = Table("id", "started", "direction", "actor", "outcome", "ops", "plan", "reason")
    notes: list[tuple[int, str]] = []
    for e in entries:
        direction = e.direction + (" (dry run)" if e.dry_run else "")
        shown = e.reason
        if e.error and not e.reason:
            shown = shorten(e.error)
        if e.error and shown != e.error:
            notes.append((e.id, e.error))
        table.add_row(
            str(e.id),
            utc_text(e.started_at),
            direction,
            escape(e.actor),
            e.outcome,
            f"{e.ops_applied}/{e.ops_total}",
            str(e.plan_id or ""),
            escape(shown),
        )
    console.print(table)
    for apply_id, error in notes:
        console.print(f"apply {apply_id}: {error}", markup=False)
