"""``zkdrift promote`` and ``zkdrift restore``: desired state from another tree or from
a snapshot, planned, then applied under the tree's lock like any apply."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated

import typer
from rich.markup import escape

from zkdrift import reconcile as reconcile_lib
from zkdrift.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    AsJson,
    Author,
    Message,
    Override,
    PathGlobs,
    TreeName,
    console,
    emit_json,
    err_console,
    redactor,
    state,
)
from zkdrift.cli.reconcile import Wait, apply_command, print_plan
from zkdrift.desired import RevisionResult
from zkdrift.errors import InvalidInputError
from zkdrift.reconcile import DEFAULT_LOCK_WAIT, ApplyResult
from zkdrift.reconcile.promote import parse_side

Force = Annotated[
    bool, typer.Option("--force", help="Allow large deletes and writing into an empty tree.")
]
Reason = Annotated[str, typer.Option("--reason", help="Why: recorded in the audit.")]


def _revision_line(name: str, revision: RevisionResult | None, what: str) -> None:
    if revision is None:
        console.print(
            f"desired state of {name} already equals {what}; no revision written", markup=False
        )
    else:
        console.print(
            f"desired revision {revision.revision} of {name}: {revision.message}"
            f" (+{revision.added} -{revision.removed} ~{revision.modified})",
            markup=False,
        )


def _apply_line(result: ApplyResult) -> None:
    colour = {"applied": "green", "no-op": "green"}.get(result.outcome, "bold red")
    target = console if result.ok else err_console
    target.print(
        f"[{colour}]{result.outcome}[/] (apply {result.apply_id}): {escape(result.message)}"
    )
    for path in result.moved_paths:
        target.print(f"  moved: {escape(path)}")


def promote(
    source: Annotated[str, typer.Argument(help="The tree to promote from.", show_default=False)],
    target: Annotated[str, typer.Argument(help="The tree to promote to.", show_default=False)],
    paths: PathGlobs = [],  # noqa: B006 - typer reads the default, never mutates it
    from_side: Annotated[
        str,
        typer.Option(
            "--from", help="What of SOURCE: 'live' (read now) or 'desired' (its current revision)."
        ),
    ] = "live",
    with_secrets: Annotated[
        bool,
        typer.Option("--with-secrets", help="Promote secret paths too (left out by default)."),
    ] = False,
    do_apply: Annotated[
        bool, typer.Option("--apply", help="Apply the promoted state under TARGET's lock.")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete TARGET's live nodes the promoted state lacks.")
    ] = False,
    force: Force = False,
    reason: Reason = "",
    message: Message = None,
    author: Author = None,
    override: Override = False,
    wait: Wait = DEFAULT_LOCK_WAIT,
    as_json: AsJson = False,
) -> None:
    """Write SOURCE's values, mapped onto TARGET's root, as TARGET's desired state.

    --paths globs are SOURCE's paths. TARGET's excludes, protected paths and
    secret rules apply: its protected and secret paths keep TARGET's own
    desired values (--with-secrets promotes secrets too). Prints TARGET's
    plan; --apply applies it under TARGET's lock, audited as 'promote'.
    """
    side = parse_side(from_side, "--from")
    result = reconcile_lib.promote(
        state.app,
        source,
        target,
        side=side,
        paths=paths,
        with_secrets=with_secrets,
        apply=do_apply,
        prune=prune,
        force=force,
        reason=reason,
        message=message,
        actor=author,
        override=override,
        wait=wait,
    )
    if as_json:
        emit_json(result.as_json(redactor()))
        raise typer.Exit(EXIT_OK if result.ok else EXIT_ERROR)
    console.print(
        f"promoting {result.promoted:,} path(s) from tree {source} ({result.taken_from}) to"
        f" tree {target}",
        markup=False,
    )
    for what, kept in (
        ("secret, kept as TARGET has it (--with-secrets promotes it)", result.kept_secret),
        ("protected in TARGET, kept as it is", result.kept_protected),
        ("not managed by TARGET, left out", result.unmanaged),
    ):
        for path in kept:
            console.print(f"  {path}: {what}".replace("TARGET", target), markup=False)
    _revision_line(target, result.revision, f"{source}'s {result.taken_from}")
    if result.plan is not None:
        console.print()
        print_plan(result.plan)
    if result.apply is not None:
        console.print()
        _apply_line(result.apply)
        raise typer.Exit(EXIT_OK if result.ok else EXIT_ERROR)
    command = None if result.plan is None else apply_command(result.plan)
    if command is not None:
        console.print()
        console.print("To apply exactly this plan, run:")
        console.print(f"  {command}", markup=False)


def _when(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    # Imported here: the reports package pulls in pandas, which no other command needs.
    from zkdrift.reports.window import parse_when

    return parse_when(value)


def restore(
    name: TreeName,
    snapshot_id: Annotated[
        int | None, typer.Option("--snapshot", help="The snapshot to make live again.")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="Or a time (ISO 8601, UTC unless it says otherwise; or an age such as 2h):"
            " the snapshot in force then, the last one taken at or before it.",
        ),
    ] = None,
    paths: PathGlobs = [],  # noqa: B006 - typer reads the default, never mutates it
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Write and apply (without it: show the plan only).")
    ] = False,
    force: Force = False,
    reason: Reason = "",
    author: Author = None,
    override: Override = False,
    wait: Wait = DEFAULT_LOCK_WAIT,
    as_json: AsJson = False,
) -> None:
    """Make live what the tree held at a snapshot: a desired revision, then an apply.

    Shows the snapshot chosen and the plan first. Without --yes it asks on a
    terminal and otherwise stops there, writing nothing. With it, the
    revision is written and applied under the tree's lock (deleting nodes
    created since, under --paths only when given), audited as 'restore'.
    """
    when = _when(at)
    if snapshot_id is not None and when is not None:
        raise InvalidInputError("give --snapshot or --at, not both")
    app = state.app
    choice = reconcile_lib.choose_snapshot(app, name, snapshot_id=snapshot_id, at=when)
    shown = False
    if not yes:
        preview = reconcile_lib.restore(
            app, name, choice=choice, paths=paths, force=force, override=override
        )
        plan = preview.plan
        assert plan is not None
        if as_json:
            emit_json(preview.as_json(redactor()))
            raise typer.Exit(EXIT_ERROR if plan.refusals else EXIT_OK)
        console.print(f"restoring {choice.note}", markup=False)
        print_plan(plan)
        console.print()
        if plan.refusals:
            raise typer.Exit(EXIT_ERROR)
        if not sys.stdin.isatty():
            console.print("nothing was written; to restore, run again with --yes", markup=False)
            raise typer.Exit(EXIT_OK)
        if not typer.confirm(f"Restore tree {name} to snapshot {choice.snapshot_id}?"):
            console.print("nothing was written", markup=False)
            raise typer.Exit(EXIT_OK)
        shown = True
    result = reconcile_lib.restore(
        app,
        name,
        choice=choice,
        paths=paths,
        yes=True,
        force=force,
        reason=reason,
        actor=author,
        override=override,
        wait=wait,
    )
    if as_json:
        emit_json(result.as_json(redactor()))
        raise typer.Exit(EXIT_OK if result.ok else EXIT_ERROR)
    if not shown:
        console.print(f"restoring {choice.note}", markup=False)
    _revision_line(name, result.revision, f"snapshot {choice.snapshot_id}")
    if result.apply is not None:
        if result.plan is not None and not shown:
            console.print()
            print_plan(result.plan)
        console.print()
        _apply_line(result.apply)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_ERROR)
