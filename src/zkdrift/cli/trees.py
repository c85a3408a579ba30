"""``zkdrift tree``: register and list managed trees."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from zkdrift.cli import app
from zkdrift.cli._common import console, emit_json, state
from zkdrift.errors import InvalidInputError
from zkdrift.snapshot import TreeSpec, add_tree
from zkdrift.store import trees as tree_store
from zkdrift.store.models import Tree
from zkdrift.zk.client import validate_hosts

tree_app = typer.Typer(
    help="Register and list the ZooKeeper trees zkdrift manages.", no_args_is_help=True
)
app.add_typer(tree_app, name="tree")


def tree_json(tree: Tree) -> dict[str, Any]:
    return {
        "name": tree.name,
        "hosts": tree.hosts,
        "root": tree.root,
        "excludes": tree.excludes,
        "includes": tree.includes,
        "capture_acl": tree.capture_acl,
        "auth_env": tree.auth_env,
        "options": tree.options,
        "created_at": tree.created_at.isoformat(),
    }


@tree_app.command("add")
def add(
    name: str = typer.Argument(..., help="A short name for the tree, e.g. 'payments-prod'."),
    hosts: str = typer.Option(
        ..., "--hosts", help="Connect string: host:port\\[,host:port]\\[/chroot]."
    ),
    root: str = typer.Option(..., "--root", help="Absolute path of the subtree to manage."),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Glob of paths to ignore (repeatable)."
    ),
    include: list[str] = typer.Option(
        [], "--include", help="Only manage paths matching (repeatable)."
    ),
    acl: bool = typer.Option(False, "--acl", help="Capture ACLs too (one extra request per node)."),
    auth_env: str | None = typer.Option(
        None, "--auth-env", help="Environment variable holding 'scheme:credential' for this tree."
    ),
    check: bool = typer.Option(True, "--check/--no-check", help="Verify the root exists first."),
    as_json: bool = typer.Option(False, "--json", help="Print the registered tree as JSON."),
) -> None:
    """Register a ZooKeeper subtree under NAME."""
    spec = TreeSpec(
        name=name,
        hosts=hosts,
        root=root,
        excludes=tuple(exclude),
        includes=tuple(include),
        capture_acl=acl,
        auth_env=auth_env,
    )
    tree = add_tree(state.app, spec, check=check)
    if as_json:
        emit_json(tree_json(tree))
    else:
        console.print(f"registered tree [bold]{name}[/]: {hosts} {root}")


@tree_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """List registered trees."""
    with state.app.db.session() as session:
        trees = tree_store.list_trees(session)
        rows = [tree_json(t) for t in trees]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print(
            "no trees registered yet; add one with 'zkdrift tree add NAME --hosts ... --root ...'"
        )
        return
    table = Table("name", "hosts", "root", "excludes", "acl")
    for row in rows:
        table.add_row(
            row["name"],
            row["hosts"],
            row["root"],
            ", ".join(row["excludes"]) or "-",
            "yes" if row["capture_acl"] else "no",
        )
    console.print(table)


@tree_app.command("show")
def show_tree(
    name: str = typer.Argument(..., help="Registered tree name."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Show one tree's registration, policy and schedule."""
    with state.app.db.session() as session:
        row = tree_json(tree_store.get_tree(session, name))
    if as_json:
        emit_json(row)
        return
    for key, value in row.items():
        console.print(f"[bold]{key}[/]: {value}")


@tree_app.command("set")
def set_policy(
    name: str = typer.Argument(..., help="Registered tree name."),
    hosts: str | None = typer.Option(None, "--hosts", help="New connect string."),
    cron: str | None = typer.Option(None, "--cron", help="Schedule the pipeline with a cron line."),
    interval: int | None = typer.Option(
        None, "--interval", min=30, help="Schedule the pipeline every N seconds."
    ),
    no_schedule: bool = typer.Option(False, "--no-schedule", help="Remove the schedule."),
    reconcile: str | None = typer.Option(
        None, "--reconcile", help="What the pipeline does with drift: 'plan' (dry run) or 'apply'."
    ),
    protect: list[str] = typer.Option(
        [], "--protect", help="Glob apply must never touch (repeatable)."
    ),
    max_delete_fraction: float | None = typer.Option(
        None,
        "--max-delete-fraction",
        min=0.0,
        max=1.0,
        help="Refuse larger prunes without --force.",
    ),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Replace the exclude globs (repeatable)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the updated tree as JSON."),
) -> None:
    """Change a tree's connection, schedule and reconcile policy."""
    if cron and interval:
        raise InvalidInputError("give either --cron or --interval, not both")
    if reconcile is not None and reconcile not in ("plan", "apply"):
        raise InvalidInputError(f"--reconcile must be 'plan' or 'apply', not {reconcile!r}")
    if cron is not None:
        _validate_cron(cron)
    with state.app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        options = dict(tree.options or {})
        if hosts is not None:
            tree.hosts = validate_hosts(hosts)
        if no_schedule:
            options.pop("schedule", None)
        elif cron is not None:
            options["schedule"] = {"cron": cron}
        elif interval is not None:
            options["schedule"] = {"interval": interval}
        if reconcile is not None:
            options["reconcile"] = reconcile
        if protect:
            options["protected"] = list(protect)
        if max_delete_fraction is not None:
            options["max_delete_fraction"] = max_delete_fraction
        if exclude:
            tree.excludes = list(exclude)
        tree.options = options
        session.flush()
        row = tree_json(tree)
    if as_json:
        emit_json(row)
    else:
        console.print(f"updated tree [bold]{name}[/]: {row['options']}")


def _validate_cron(cron: str) -> None:
    fields = cron.split()
    if len(fields) not in (5, 6):
        raise InvalidInputError(
            f"--cron {cron!r} must have 5 fields (minute hour day month weekday)"
        )
    allowed = set("0123456789*/,-?LW#") | set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    )
    for f in fields:
        if not f or not set(f) <= allowed:
            raise InvalidInputError(f"--cron {cron!r}: invalid field {f!r}")


@tree_app.command("remove")
def remove(
    name: str = typer.Argument(..., help="Registered tree name."),
    yes: bool = typer.Option(False, "--yes", help="Really delete the tree and all its history."),
) -> None:
    """Unregister a tree and delete its snapshots, desired state and audit from the database."""
    if not yes:
        raise InvalidInputError(
            f"removing {name!r} deletes its whole history from the database; add --yes to confirm"
        )
    with state.app.db.session() as session:
        tree_store.remove_tree(session, name)
    console.print(f"removed tree [bold]{name}[/] (ZooKeeper was not touched)")
